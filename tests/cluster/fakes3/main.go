// Command fakes3 is the cluster harness's S3-compatible artifact
// repository: github.com/johannesboyne/gofakes3 with its bolt backend, so
// objects persist in one file across restarts. It is its own module so
// that regmigrate's module does not carry gofakes3's dependencies; the
// harness builds it with `go build` in this folder.
//
//	fakes3 -addr 10.88.0.1:9000 -db /state/s3.db -bucket argo-artifacts
package main

import (
	"bytes"
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	db := flag.String("db", "s3.db", "bolt database file (created if missing)")
	bucket := flag.String("bucket", "", "bucket to create if missing")
	flag.Parse()
	be, err := s3bolt.NewFile(*db)
	if err != nil {
		log.Fatal(err)
	}
	if *bucket != "" {
		if ok, err := be.BucketExists(*bucket); err != nil {
			log.Fatal(err)
		} else if !ok {
			if err := be.CreateBucket(*bucket); err != nil {
				log.Fatal(err)
			}
		}
	}
	log.Printf("fakes3 on %s, data in %s", *addr, *db)
	log.Fatal(http.ListenAndServe(*addr, withLength(gofakes3.New(be).Server())))
}

// withLength gives a PUT without a Content-Length header one. Argo's S3
// client (minio-go) sends an empty file over plain HTTP as a chunked
// aws-chunked stream (X-Amz-Decoded-Content-Length: 0) without
// Content-Length, which S3 accepts and gofakes3 refuses
// (MissingContentLength), failing the upload of a folder that holds an
// empty file (a shard's mirror.log when nothing was copied).
func withLength(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.Header.Get("Content-Length") == "" {
			log.Printf("PUT %s without Content-Length (Transfer-Encoding %v, X-Amz-Content-Sha256 %q, X-Amz-Decoded-Content-Length %q)",
				r.URL.Path, r.TransferEncoding, r.Header.Get("X-Amz-Content-Sha256"), r.Header.Get("X-Amz-Decoded-Content-Length"))
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		}
		h.ServeHTTP(w, r)
	})
}

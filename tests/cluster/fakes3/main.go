// Command fakes3 is the cluster harness's S3-compatible artifact
// repository: github.com/johannesboyne/gofakes3 with its bolt backend, so
// objects persist in one file across restarts. It is its own module so
// that regmigrate's module does not carry gofakes3's dependencies; the
// harness builds it with `go build` in this folder.
//
//	fakes3 -addr 10.88.0.1:9000 -db /state/s3.db -bucket argo-artifacts
//
// With -mem it keeps objects in memory (gofakes3's s3mem) instead of the
// bolt file: the bolt backend decodes an object without copying it out of
// bolt's memory map and reads it after the transaction, so a read (or a
// CopyObject, which a registry's S3 driver issues when it commits an
// upload) concurrent with writes that grow the file can fault
// (SIGSEGV). tests/regtest uses -mem.
//
// With -requests FILE it appends one line per request to FILE: the method,
// the scheme of the Authorization header ("-" if none; never its value),
// "presigned" if the query carries a SigV4 signature (else "-"), and the
// escaped path. tests/regtest reads it to check that no registry
// credentials (Basic, Bearer) reach the storage a registry redirects to.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	db := flag.String("db", "s3.db", "bolt database file (created if missing)")
	bucket := flag.String("bucket", "", "bucket to create if missing")
	requests := flag.String("requests", "", "append a line per request (method, auth scheme, presigned, path) to this file")
	mem := flag.Bool("mem", false, "keep objects in memory, not in the -db file")
	flag.Parse()
	var be interface {
		gofakes3.Backend
		BucketExists(string) (bool, error)
	}
	if *mem {
		be = s3mem.New()
		*db = "memory"
	} else {
		b, err := s3bolt.NewFile(*db)
		if err != nil {
			log.Fatal(err)
		}
		be = b
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
	h := withLength(gofakes3.New(be).Server())
	if *requests != "" {
		f, err := os.OpenFile(*requests, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		h = logRequests(f, h)
	}
	log.Fatal(http.ListenAndServe(*addr, h))
}

// logRequests writes a line per request to w: method, Authorization
// scheme, whether the URL is presigned, path.
func logRequests(w io.Writer, h http.Handler) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		scheme, _, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		if scheme == "" {
			scheme = "-"
		}
		presigned := "-"
		if r.URL.Query().Get("X-Amz-Signature") != "" || r.URL.Query().Get("Signature") != "" {
			presigned = "presigned"
		}
		mu.Lock()
		fmt.Fprintf(w, "%s %s %s %s\n", r.Method, scheme, presigned, r.URL.EscapedPath())
		mu.Unlock()
		h.ServeHTTP(rw, r)
	})
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

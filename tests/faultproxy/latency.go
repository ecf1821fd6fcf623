package faultproxy

import (
	"net/http"
	"regexp"
	"strings"
	"time"
)

// SetDelay makes every later request wait d before the proxy handles it, as
// a registry in another data centre does (d is the round trip a request
// costs there; 0 turns it off). The delay applies to requests of the second
// listener too, and a request whose client gives up stops waiting. It is
// safe to call while requests are in flight.
func (p *Proxy) SetDelay(d time.Duration) {
	p.delay.Store(int64(d))
}

// wait sleeps the delay SetDelay set; false if the client or Close ended the
// request first.
func (p *Proxy) wait(r *http.Request) bool {
	d := time.Duration(p.delay.Load())
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-p.done:
	}
	return false
}

// Request kinds, as Stats.ByKind counts them: what a registry client asked
// for, to compare how many requests of each kind two clients need for the
// same work.
const (
	KindPing          = "ping"            // GET/HEAD /v2/
	KindCatalog       = "catalog"         // GET /v2/_catalog
	KindTagList       = "tag-list"        // GET /v2/<name>/tags/list
	KindManifestHead  = "manifest-head"   // HEAD /v2/<name>/manifests/<ref>
	KindManifestGet   = "manifest-get"    // GET /v2/<name>/manifests/<ref>
	KindManifestPut   = "manifest-put"    // PUT /v2/<name>/manifests/<ref>
	KindBlobHead      = "blob-head"       // HEAD /v2/<name>/blobs/<digest>
	KindBlobGet       = "blob-get"        // GET /v2/<name>/blobs/<digest>
	KindMount         = "blob-mount"      // POST /v2/<name>/blobs/uploads/?mount= (asked; the answer may be an upload session)
	KindUploadStart   = "upload-start"    // POST /v2/<name>/blobs/uploads/ (no mount)
	KindUploadData    = "upload-data"     // PATCH and PUT of an upload session
	KindReferrers     = "referrers"       // GET /v2/<name>/referrers/<digest>
	KindOther         = "other"           // anything else (token endpoints, deletes)
	uploadSessionPart = "/blobs/uploads/" //
)

var (
	blobAnyPath    = regexp.MustCompile(`^/v2/.+/blobs/[^/]+$`)
	referrersPath  = regexp.MustCompile(`^/v2/.+/referrers/[^/]+$`)
	uploadSessions = regexp.MustCompile(`^/v2/.+/blobs/uploads/`)
)

// requestKind classifies a registry request for Stats.ByKind.
func requestKind(r *http.Request) string {
	path := r.URL.Path
	switch {
	case path == "/v2/" || path == "/v2":
		return KindPing
	case path == "/v2/_catalog":
		return KindCatalog
	case tagsListPath.MatchString(path):
		return KindTagList
	case referrersPath.MatchString(path):
		return KindReferrers
	case manifestPath.MatchString(path):
		switch r.Method {
		case http.MethodHead:
			return KindManifestHead
		case http.MethodGet:
			return KindManifestGet
		case http.MethodPut:
			return KindManifestPut
		}
	case uploadSessions.MatchString(path):
		if r.Method == http.MethodPost {
			if r.URL.Query().Get("mount") != "" {
				return KindMount
			}
			return KindUploadStart
		}
		if r.Method == http.MethodPatch || r.Method == http.MethodPut {
			return KindUploadData
		}
	case blobAnyPath.MatchString(path) && !strings.Contains(path, uploadSessionPart):
		switch r.Method {
		case http.MethodHead:
			return KindBlobHead
		case http.MethodGet:
			return KindBlobGet
		}
	}
	return KindOther
}

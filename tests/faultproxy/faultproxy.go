// Package faultproxy is an HTTP reverse proxy for tests that sits in front of
// a registry and makes it misbehave: it injects error statuses, connection
// resets and truncated bodies, stalls, endless listings, lying digests, odd
// names and redirects, on the requests a test chooses (by method and path),
// a chosen number of times. It also counts and records what passes through
// it.
//
// The kinds of fault, and the real-world registry behaviour each imitates:
//
//   - Status429, Status503, Status500: a rate limit (Docker Hub, GHCR), a
//     registry in maintenance or overloaded, a registry bug.
//   - Reset: a load balancer or a crashing registry cutting the connection.
//   - TruncateBody: a connection lost mid-download behind a proxy.
//   - StallHeaders: a registry (or a hung load balancer backend) that accepts
//     a request and never answers it.
//   - StallBody: a download that hangs half-way (a stuck storage backend, a
//     dead peer behind a proxy that keeps the connection open).
//   - EndlessList: a catalog or tag list of a registry with millions of
//     entries, or a buggy one that streams without end.
//   - EndlessPages: a registry whose pagination never ends (a Link rel=next
//     that keeps coming, as with a broken last= cursor).
//   - WrongDigestHeader: a caching proxy or mirror answering a stale
//     Docker-Content-Digest after a tag moved.
//   - InvalidDigestHeader: a registry or proxy sending a garbled or
//     non-sha256 digest header.
//   - AlteredBody: corruption in transit or in storage (bit rot, a broken
//     middlebox) under intact headers.
//   - NoDigestOnHead: registries (older Artifactory, Nexus, some proxies)
//     that omit Docker-Content-Digest, notably on HEAD.
//   - OddNames: registries that list names a client must not trust (Quay and
//     Harbor with unusual repository names, hostile or corrupt registries),
//     to catch clients that build URLs from them without escaping.
//   - Redirect: blob downloads redirected to object storage or a CDN
//     (Docker Hub to Cloudflare, GCR/Artifact Registry to GCS, ECR to S3),
//     relative Locations, redirect chains and loops.
//
// Each Fault selects requests by Method and PathRegex and applies to Times
// of them. Faults that answer on their own (statuses, Reset, StallHeaders,
// EndlessList, EndlessPages, Redirect) do not forward the request; the others
// forward it and change the upstream's response.
//
// The proxy records the raw URI of every request it receives (RequestURIs),
// so that a test can check how a client built its URLs, e.g. that no path
// carried an unescaped ? or a .. segment.
//
// The proxy keeps registry upload flows on itself: it forwards the client's
// Host header and sets X-Forwarded-Host/-Proto/-For, so a registry that
// builds absolute Location URLs from the request (the CNCF distribution
// registry) points them at the proxy; any absolute Location that still names
// the upstream is rewritten to the proxy.
//
// Besides its own port the proxy serves a second listener on another
// loopback address (OtherURL, on 127.0.0.2), a plain reverse proxy to the
// upstream that drops credentials, as the "other host" of redirects. It
// records whether each request it got carried an Authorization header.
//
// Close (run when the test ends) stops every stalled or streaming handler
// promptly.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Kind is a kind of fault.
type Kind int

// The faults a Proxy injects.
const (
	// Status429 answers 429 Too Many Requests (with Fault.RetryAfter as
	// Retry-After, if set) and a registry error body (TOOMANYREQUESTS).
	Status429 Kind = iota + 1
	// Status503 answers 503 Service Unavailable (UNAVAILABLE).
	Status503
	// Status500 answers 500 Internal Server Error (UNKNOWN).
	Status500
	// Reset cuts the client connection in the middle of the response
	// headers: the client reads the first bytes of a status line and then
	// the connection ends. The request is not forwarded. (A connection
	// closed before any byte of response would be retried silently by Go's
	// http.Transport for an idempotent request on a reused connection,
	// hiding the fault from the code under test.)
	Reset
	// TruncateBody forwards the request (its effect on the upstream
	// happens) and the upstream response headers, Content-Length included,
	// but only the first half of the body, and then closes the connection.
	TruncateBody

	// StallHeaders reads the request (its body included) and then sends
	// nothing at all, not even a status line, until the client gives up
	// (closes the connection) or the proxy is closed; then the connection
	// is closed without a response. The request is not forwarded.
	StallHeaders
	// StallBody forwards the request and sends the upstream's status and
	// headers (the real Content-Length included) and the first
	// Fault.StallAfter bytes of the body (DefaultStallAfter if 0, none if
	// negative; at most all but the last byte of a body of known length),
	// flushed, and then nothing more, without closing, until the client
	// gives up or the proxy is closed. A response without a body (HEAD,
	// 204) is sent whole and the connection then stays silent: the client
	// has its response, but a next request on that connection stalls.
	StallBody
	// EndlessList answers a catalog (/v2/_catalog) or tag list
	// (/v2/<name>/tags/list) request with a 200 whose JSON body never ends:
	// {"repositories":["r000000","r000001",... (for a tag list
	// {"name":"<name>","tags":["t000000",...), chunked, without
	// Content-Length, until the client stops reading or the proxy is
	// closed. Any other path gets the catalog form. Not forwarded.
	EndlessList
	// EndlessPages answers a catalog or tag list request with a small,
	// valid page of fresh names (Fault.PageSize of them, DefaultPageSize if
	// 0, or the request's n= up to 1000) and a Link: <...>; rel="next" to
	// the next page, forever. Once it fired on a path, the proxy answers
	// every request on that path whose last= is one of its names the same
	// way, whatever the Times left (and counts each as a fault), until
	// SetFaults. Not forwarded.
	EndlessPages
	// WrongDigestHeader forwards the request and replaces the
	// Docker-Content-Digest of a 2xx response (or adds one) with another,
	// well-formed sha256 digest (Fault.Digest if set).
	WrongDigestHeader
	// InvalidDigestHeader forwards the request and sets the
	// Docker-Content-Digest of a 2xx response to a malformed value:
	// Fault.Digest, or DefaultInvalidDigest.
	InvalidDigestHeader
	// AlteredBody forwards a GET and changes one byte of a 2xx response
	// body, keeping its length and every header (Docker-Content-Digest and
	// Content-Length included): in a JSON body (a manifest) one hex digit of
	// the last sha256 digest it holds, so that the document stays valid; in
	// any other body the middle byte, inverted.
	AlteredBody
	// NoDigestOnHead forwards a HEAD and removes Docker-Content-Digest from
	// its response. It matches GET requests only if Fault.AlsoGet is set
	// (they then lose the header too); other methods never.
	NoDigestOnHead
	// OddNames forwards a catalog or tag list request and adds names to the
	// list in its 2xx JSON response (Fault.Names, or DefaultOddNames()),
	// after the real ones; the response stays valid JSON with its other
	// fields and headers (a Link to the next page included). Names added to
	// the tag list of a repository are then served: a GET or HEAD of that
	// repository's manifest by such a name, whether the client escaped it
	// or not (x%3Fy=1 or x?y=1), answers the manifest of Fault.ServeAs (by
	// default "latest" if listed, else the first real tag). RequestURIs
	// shows how the client asked.
	OddNames
	// Redirect answers with a redirect (Fault.RedirectStatus, 307 if 0)
	// instead of forwarding. Fault.RedirectTo chooses where to: the same
	// path and query on the second listener (ToOtherHost, an absolute URL
	// on OtherURL), or a relative Location /_redirected/<path> on the proxy
	// itself (ToRelative). Fault.Hops > 1 makes a chain of that many
	// redirects on the proxy before the target; Hops < 0 an endless chain of
	// fresh relative URLs. Requests to /_redirected/ and chain URLs are
	// served without fault matching.
	Redirect
)

var kindNames = [...]string{
	Status429: "Status429", Status503: "Status503", Status500: "Status500",
	Reset: "Reset", TruncateBody: "TruncateBody",
	StallHeaders: "StallHeaders", StallBody: "StallBody",
	EndlessList: "EndlessList", EndlessPages: "EndlessPages",
	WrongDigestHeader: "WrongDigestHeader", InvalidDigestHeader: "InvalidDigestHeader",
	AlteredBody: "AlteredBody", NoDigestOnHead: "NoDigestOnHead",
	OddNames: "OddNames", Redirect: "Redirect",
}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Defaults of the Fault fields.
const (
	DefaultStallAfter     = 64            // StallBody: body bytes sent before the stall
	DefaultPageSize       = 10            // EndlessPages: names per page
	DefaultInvalidDigest  = "sha256:zzzz" // InvalidDigestHeader: the header value
	DefaultRedirectStatus = http.StatusTemporaryRedirect
)

// RedirectTarget is where a Redirect fault sends the client.
type RedirectTarget int

const (
	// ToOtherHost redirects to an absolute URL on the proxy's second
	// listener (OtherURL, another loopback address), which serves the
	// upstream's content without credentials.
	ToOtherHost RedirectTarget = iota
	// ToRelative redirects to the relative Location /_redirected/<path> on
	// the proxy itself, which serves the upstream's content.
	ToRelative
)

// Fault selects requests and what happens to them.
type Fault struct {
	Method    string         // request method; "" matches any
	PathRegex *regexp.Regexp // matched against the URL path; nil matches any
	Kind      Kind

	// Times is how many matching requests get the fault; later ones pass.
	// A negative value means every matching request, forever; 0 means one.
	Times int

	RetryAfter string // Retry-After header value for Status429; "" for none

	// StallAfter is the number of body bytes StallBody sends before it
	// stalls: 0 means DefaultStallAfter, a negative value none.
	StallAfter int

	// PageSize is the number of names per EndlessPages page when the
	// request has no n=; 0 means DefaultPageSize.
	PageSize int

	// Digest is the Docker-Content-Digest value of WrongDigestHeader
	// (default: a well-formed digest derived from the real one) and
	// InvalidDigestHeader (default: DefaultInvalidDigest).
	Digest string

	// AlsoGet makes NoDigestOnHead apply to GET requests too.
	AlsoGet bool

	// Names are the names OddNames adds; nil means DefaultOddNames().
	Names []string
	// ServeAs is the real tag whose manifest OddNames serves for the tags
	// it added; "" means "latest" if listed, else the first real tag.
	ServeAs string

	// RedirectStatus is the status of Redirect: 301, 302, 303, 307 or 308;
	// 0 means DefaultRedirectStatus (307).
	RedirectStatus int
	// RedirectTo is the final target of Redirect.
	RedirectTo RedirectTarget
	// Hops is the number of redirects Redirect answers before the target
	// is reached (0 or 1: one, straight to the target); negative: endless.
	Hops int
}

// Stats counts the traffic a Proxy has seen.
type Stats struct {
	Requests     map[string]int // requests received, by method (faulted ones included)
	Faults       int            // faults injected in all
	FaultsByKind map[Kind]int   // faults injected, by kind

	// BlobBytes is the number of blob body bytes sent to clients in answer
	// to GET /v2/<name>/blobs/<digest>, or its /_redirected/ form (truncated
	// bodies count what was sent; bodies served by the second listener are
	// not counted).
	BlobBytes int64
	// BlobGets counts blob GET requests per digest (faulted ones included).
	BlobGets map[string]int
	// ByKind counts requests by what they ask for (KindManifestHead,
	// KindBlobGet, KindMount, ...; faulted ones included, the second
	// listener's not).
	ByKind map[string]int
	// NotModified counts, by kind, the requests the registry answered 304
	// Not Modified (a conditional request whose ETag matched).
	NotModified map[string]int
}

// OtherRequest is a request the second listener received.
type OtherRequest struct {
	Method string
	URI    string // the raw request URI, as sent
	// Authorization tells whether the request carried an Authorization
	// header (its value is never kept).
	Authorization bool
}

// Proxy is a running fault-injecting reverse proxy.
type Proxy struct {
	URL  string // http://127.0.0.1:port
	Host string // 127.0.0.1:port, for image references

	// OtherURL (http://127.0.0.2:port) and OtherHost are the second
	// listener, the target of ToOtherHost redirects; "" if it could not be
	// started (another loopback address is not available).
	OtherURL, OtherHost string

	upstream *url.URL
	srv      *httptest.Server
	other    *httptest.Server
	tr       *http.Transport
	rp       *httputil.ReverseProxy
	otherRP  *httputil.ReverseProxy
	otherErr error

	done      chan struct{} // closed by Close: stalled handlers return
	delay     atomic.Int64  // time.Duration every request waits (SetDelay)
	closeOnce sync.Once

	mu        sync.Mutex
	faults    []*activeFault
	stats     Stats
	uris      []string
	otherReqs []OtherRequest
	oddTags   map[string]map[string]string // repository → added tag → real tag
	endless   map[string]int               // EndlessPages paths → page size
	closed    bool
	t         testing.TB
}

// activeFault is a Fault with what is left of its Times.
type activeFault struct {
	Fault
	left int // < 0: forever
}

// New starts a proxy in front of upstream (http://host:port) with the given
// faults, checked in order (the first one that matches and has Times left
// applies). The proxy serves plain HTTP on a loopback port, and its second
// listener on 127.0.0.2; an https upstream must have a certificate the
// system trusts. It is closed when the test ends.
func New(t testing.TB, upstream string, faults ...Fault) *Proxy {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		t.Fatalf("faultproxy: upstream %q is not an http(s)://host:port URL", upstream)
	}
	p := &Proxy{
		upstream: u, t: t, stats: newStats(), done: make(chan struct{}),
		oddTags: map[string]map[string]string{}, endless: map[string]int{},
	}
	p.SetFaults(faults...)
	// Bodies pass as they are (no transparent gzip), over enough pooled
	// connections for parallel copies.
	p.tr = http.DefaultTransport.(*http.Transport).Clone()
	p.tr.DisableCompression = true
	p.tr.MaxIdleConnsPerHost = 64
	errorLog := log.New(logWriter{p}, "faultproxy: ", 0)
	p.rp = &httputil.ReverseProxy{
		Transport:      p.tr,
		Rewrite:        p.rewrite,
		ModifyResponse: p.modifyResponse,
		ErrorLog:       errorLog,
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	p.Host = strings.TrimPrefix(p.srv.URL, "http://")
	p.startOther(errorLog)
	t.Cleanup(p.Close)
	return p
}

// Close stops the proxy and its second listener. Stalled and streaming
// handlers return at once (their connections are closed without a complete
// response); a handler blocked writing to a client that does not read is
// cut off after a short grace period. Close is idempotent; New registers
// it with t.Cleanup.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		close(p.done)
		for _, s := range []*httptest.Server{p.srv, p.other} {
			if s == nil {
				continue
			}
			cut := time.AfterFunc(250*time.Millisecond, s.CloseClientConnections)
			s.Close()
			cut.Stop()
		}
		p.tr.CloseIdleConnections()
	})
}

// SetFaults replaces the faults, with fresh counts, and ends the endless
// pagination EndlessPages started. It is safe to call while requests are
// in flight.
func (p *Proxy) SetFaults(faults ...Fault) {
	active := make([]*activeFault, len(faults))
	for i, f := range faults {
		left := f.Times
		if left == 0 {
			left = 1
		}
		active[i] = &activeFault{Fault: f, left: left}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = active
	clear(p.endless)
}

// Stats returns a copy of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := newStats()
	for k, v := range p.stats.Requests {
		s.Requests[k] = v
	}
	for k, v := range p.stats.FaultsByKind {
		s.FaultsByKind[k] = v
	}
	for k, v := range p.stats.BlobGets {
		s.BlobGets[k] = v
	}
	for k, v := range p.stats.ByKind {
		s.ByKind[k] = v
	}
	for k, v := range p.stats.NotModified {
		s.NotModified[k] = v
	}
	s.Faults, s.BlobBytes = p.stats.Faults, p.stats.BlobBytes
	return s
}

// RequestURIs returns the raw request URIs (path and query exactly as the
// client sent them) of every request the proxy received, in order of
// arrival, faulted ones and redirect follow-ups included (not those of the
// second listener: see OtherRequests).
func (p *Proxy) RequestURIs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.uris...)
}

// OtherRequests returns the requests the second listener received, in order
// of arrival.
func (p *Proxy) OtherRequests() []OtherRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]OtherRequest(nil), p.otherReqs...)
}

// ResetStats sets every counter back to zero and forgets the recorded
// requests (RequestURIs and OtherRequests).
func (p *Proxy) ResetStats() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats = newStats()
	p.uris = nil
	p.otherReqs = nil
}

func newStats() Stats {
	return Stats{Requests: map[string]int{}, FaultsByKind: map[Kind]int{}, BlobGets: map[string]int{}, ByKind: map[string]int{}, NotModified: map[string]int{}}
}

var (
	// blobPath matches blob GETs (not upload sessions) and captures the
	// digest.
	blobPath = regexp.MustCompile(`^/v2/.+/blobs/([a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)$`)
	// manifestPath captures the repository and reference of a manifest
	// request.
	manifestPath = regexp.MustCompile(`^/v2/(.+)/manifests/(.+)$`)
	// tagsListPath captures the repository of a tag list request.
	tagsListPath = regexp.MustCompile(`^/v2/(.+)/tags/list$`)
)

// serve counts and records the request, injects a fault if one applies and
// otherwise forwards it.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	if !p.wait(r) {
		return
	}
	st := &reqState{w: w}
	p.mu.Lock()
	p.stats.Requests[r.Method]++
	if !isInternal(r.URL.Path) {
		p.stats.ByKind[requestKind(r)]++
	}
	p.uris = append(p.uris, r.RequestURI)
	if isInternal(r.URL.Path) {
		p.mu.Unlock()
		p.serveInternal(w, r, st)
		return
	}
	if r.Method == http.MethodGet {
		if m := blobPath.FindStringSubmatch(r.URL.Path); m != nil {
			st.blobCounting = true
			p.stats.BlobGets[m[1]]++
		}
	}
	f := p.continuedPages(r)
	if f == nil {
		f = p.match(r)
	}
	if f != nil && f.Kind == EndlessPages {
		p.endless[r.URL.Path] = f.PageSize
	}
	odd := p.oddTarget(r)
	p.mu.Unlock()

	if odd != "" {
		// A manifest by a name OddNames invented: the real tag's.
		u := *r.URL
		u.Path, u.RawPath, u.RawQuery, u.ForceQuery = odd, "", "", false
		r = r.WithContext(r.Context())
		r.URL = &u
	}

	var kind Kind
	if f != nil {
		kind = f.Kind
	}
	switch kind {
	case 0:
		p.forward(w, r, st)
	case Status429, Status503, Status500:
		writeStatus(w, kind, f.RetryAfter)
	case Reset:
		reset(w)
	case StallHeaders:
		p.stallHeaders(r)
	case EndlessList:
		p.endlessList(w, r)
	case EndlessPages:
		endlessPage(w, r, f.PageSize)
	case Redirect:
		p.redirect(w, r, f)
	default:
		st.fault = f
		p.forward(w, r, st)
	}
}

// forward proxies r to the upstream, with st for modifyResponse.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, st *reqState) {
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
}

// match returns (a copy of) the fault to inject for r, or nil, and consumes
// one of its Times. p.mu is held.
func (p *Proxy) match(r *http.Request) *Fault {
	for _, f := range p.faults {
		if f.left == 0 {
			continue
		}
		if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
			continue
		}
		if f.Kind == NoDigestOnHead && r.Method != http.MethodHead && (!f.AlsoGet || r.Method != http.MethodGet) {
			continue
		}
		if f.PathRegex != nil && !f.PathRegex.MatchString(r.URL.Path) {
			continue
		}
		if f.left > 0 {
			f.left--
		}
		p.count(f.Kind)
		fault := f.Fault
		return &fault
	}
	return nil
}

// count records an injected fault. p.mu is held.
func (p *Proxy) count(k Kind) {
	p.stats.Faults++
	p.stats.FaultsByKind[k]++
}

// writeStatus answers a registry-style error.
func writeStatus(w http.ResponseWriter, k Kind, retryAfter string) {
	status, code := http.StatusInternalServerError, "UNKNOWN"
	switch k {
	case Status429:
		status, code = http.StatusTooManyRequests, "TOOMANYREQUESTS"
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
	case Status503:
		status, code = http.StatusServiceUnavailable, "UNAVAILABLE"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":"faultproxy: injected %s"}]}`+"\n", code, k)
}

// partialHeader is the beginning of a response Reset sends before it cuts
// the connection.
const partialHeader = "HTTP/1.1 200 OK\r\nContent-Type: appl"

// reset writes the beginning of a response header and closes the client
// connection.
func reset(w http.ResponseWriter) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (never the case for the HTTP/1 test server): abort
		// the response, which closes the connection too.
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	if _, err := buf.WriteString(partialHeader); err == nil {
		_ = buf.Flush()
	}
}

// abort ends a handler and its connection without completing the response.
func abort() { panic(http.ErrAbortHandler) }

// rewrite directs a request to the upstream, keeping the client's Host so
// that the registry builds URLs that point at the proxy.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.upstream)
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
	if st := state(pr.In.Context()); st != nil && st.fault != nil {
		switch st.fault.Kind {
		case AlteredBody, OddNames:
			// The body is to be edited: no gzip from the upstream.
			pr.Out.Header.Del("Accept-Encoding")
		}
	}
}

// modifyResponse points upstream Locations at the proxy, applies the
// response-changing faults and counts blob bytes.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil && u.IsAbs() && u.Host == p.upstream.Host {
			u.Scheme, u.Host = "http", p.Host
			resp.Header.Set("Location", u.String())
		}
	}
	if resp.StatusCode == http.StatusNotModified && !isInternal(resp.Request.URL.Path) {
		p.mu.Lock()
		p.stats.NotModified[requestKind(resp.Request)]++
		p.mu.Unlock()
	}
	st := state(resp.Request.Context())
	if st == nil {
		return nil
	}
	if f := st.fault; f != nil {
		if err := p.misbehave(resp, st.w, f); err != nil {
			return err
		}
	}
	if st.blobCounting && resp.StatusCode < 300 {
		resp.Body = &countingBody{ReadCloser: resp.Body, p: p}
	}
	return nil
}

// misbehave applies a response-changing fault to resp, for the client's w.
func (p *Proxy) misbehave(resp *http.Response, w http.ResponseWriter, f *Fault) error {
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	switch f.Kind {
	case TruncateBody:
		full, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		// The declared length stays the upstream's; the body stops halfway
		// with an error, on which ReverseProxy aborts the connection.
		if resp.Header.Get("Content-Length") == "" {
			resp.Header.Set("Content-Length", fmt.Sprint(len(full)))
		}
		resp.Body = &truncatedBody{data: full[:len(full)/2], flush: http.NewResponseController(w).Flush}
	case StallBody:
		n := int64(f.StallAfter)
		switch {
		case n == 0:
			n = DefaultStallAfter
		case n < 0:
			n = 0
		}
		if resp.ContentLength >= 0 && n >= resp.ContentLength {
			n = max(resp.ContentLength-1, 0)
		}
		resp.Body = &stalledBody{rc: resp.Body, left: n, flush: http.NewResponseController(w).Flush,
			ctx: resp.Request.Context(), done: p.done}
	case WrongDigestHeader:
		if ok {
			resp.Header.Set(digestHeader, wrongDigest(f.Digest, resp))
		}
	case InvalidDigestHeader:
		if ok {
			d := f.Digest
			if d == "" {
				d = DefaultInvalidDigest
			}
			resp.Header.Set(digestHeader, d)
		}
	case NoDigestOnHead:
		resp.Header.Del(digestHeader)
	case AlteredBody:
		if ok && resp.Request.Method == http.MethodGet {
			return alterBody(resp)
		}
	case OddNames:
		if ok && resp.Request.Method == http.MethodGet {
			return p.addNames(resp, f)
		}
	}
	return nil
}

// errTruncated ends a truncated body.
var errTruncated = errors.New("faultproxy: body truncated")

// truncatedBody yields data and then fails. Before failing it flushes the
// client's response, so that the headers and the data copied so far reach
// the client before ReverseProxy aborts the connection.
type truncatedBody struct {
	data  []byte
	flush func() error
}

func (b *truncatedBody) Read(buf []byte) (int, error) {
	if len(b.data) == 0 {
		_ = b.flush()
		return 0, errTruncated
	}
	n := copy(buf, b.data)
	b.data = b.data[n:]
	return n, nil
}

func (b *truncatedBody) Close() error { return nil }

// countingBody adds the bytes read from a blob body to the proxy's stats.
type countingBody struct {
	io.ReadCloser
	p *Proxy
}

func (b *countingBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	if n > 0 {
		b.p.mu.Lock()
		b.p.stats.BlobBytes += int64(n)
		b.p.mu.Unlock()
	}
	return n, err
}

// logWriter sends ReverseProxy's error log to the test log while the proxy
// runs.
type logWriter struct{ p *Proxy }

func (l logWriter) Write(b []byte) (int, error) {
	l.p.mu.Lock()
	closed := l.p.closed
	l.p.mu.Unlock()
	if !closed {
		l.p.t.Logf("%s", strings.TrimSuffix(string(b), "\n"))
	}
	return len(b), nil
}

// reqState is what serve tells modifyResponse about a forwarded request,
// through its context.
type reqState struct {
	w            http.ResponseWriter // the client's
	fault        *Fault              // a response-changing fault, or nil
	blobCounting bool                // count the body into Stats.BlobBytes
}

type stateKey struct{}

func state(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

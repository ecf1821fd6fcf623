// Package faultproxy is an HTTP reverse proxy for tests that sits in front of
// a registry and injects faults: error statuses, connection resets and
// truncated bodies, on the requests a test chooses, a chosen number of
// times. It also counts what passes through it.
//
// The proxy keeps registry upload flows on itself: it forwards the client's
// Host header and sets X-Forwarded-Host/-Proto/-For, so a registry that
// builds absolute Location URLs from the request (the CNCF distribution
// registry) points them at the proxy; any absolute Location that still names
// the upstream is rewritten to the proxy.
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
	"testing"
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
)

func (k Kind) String() string {
	switch k {
	case Status429:
		return "Status429"
	case Status503:
		return "Status503"
	case Status500:
		return "Status500"
	case Reset:
		return "Reset"
	case TruncateBody:
		return "TruncateBody"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Fault selects requests and what happens to them.
type Fault struct {
	Method    string         // request method; "" matches any
	PathRegex *regexp.Regexp // matched against the URL path; nil matches any
	Kind      Kind

	// Times is how many matching requests get the fault; later ones pass.
	// A negative value means every matching request, forever; 0 means one.
	Times int

	RetryAfter string // Retry-After header value for Status429; "" for none
}

// Stats counts the traffic a Proxy has seen.
type Stats struct {
	Requests     map[string]int // requests received, by method (faulted ones included)
	Faults       int            // faults injected in all
	FaultsByKind map[Kind]int   // faults injected, by kind

	// BlobBytes is the number of blob body bytes sent to clients in answer
	// to GET /v2/<name>/blobs/<digest> (truncated bodies count what was
	// sent).
	BlobBytes int64
	// BlobGets counts blob GET requests per digest (faulted ones included).
	BlobGets map[string]int
}

// Proxy is a running fault-injecting reverse proxy.
type Proxy struct {
	URL  string // http://127.0.0.1:port
	Host string // 127.0.0.1:port, for image references

	upstream *url.URL
	srv      *httptest.Server
	rp       *httputil.ReverseProxy

	mu     sync.Mutex
	faults []*activeFault
	stats  Stats
	closed bool
	t      testing.TB
}

// activeFault is a Fault with what is left of its Times.
type activeFault struct {
	Fault
	left int // < 0: forever
}

// New starts a proxy in front of upstream (http://host:port) with the given
// faults, checked in order (the first one that matches and has Times left
// applies). The proxy serves plain HTTP on a loopback port; an https
// upstream must have a certificate the system trusts. It is closed when the
// test ends.
func New(t testing.TB, upstream string, faults ...Fault) *Proxy {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		t.Fatalf("faultproxy: upstream %q is not an http(s)://host:port URL", upstream)
	}
	p := &Proxy{upstream: u, t: t, stats: newStats()}
	p.SetFaults(faults...)
	// Bodies pass as they are (no transparent gzip), over enough pooled
	// connections for parallel copies.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	tr.MaxIdleConnsPerHost = 64
	p.rp = &httputil.ReverseProxy{
		Transport:      tr,
		Rewrite:        p.rewrite,
		ModifyResponse: p.modifyResponse,
		ErrorLog:       log.New(logWriter{p}, "faultproxy: ", 0),
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	p.Host = strings.TrimPrefix(p.srv.URL, "http://")
	t.Cleanup(func() {
		p.srv.Close()
		tr.CloseIdleConnections()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
	})
	return p
}

// SetFaults replaces the faults, with fresh counts. It is safe to call while
// requests are in flight.
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
	s.Faults, s.BlobBytes = p.stats.Faults, p.stats.BlobBytes
	return s
}

// ResetStats sets every counter back to zero.
func (p *Proxy) ResetStats() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats = newStats()
}

func newStats() Stats {
	return Stats{Requests: map[string]int{}, FaultsByKind: map[Kind]int{}, BlobGets: map[string]int{}}
}

// blobPath matches blob GETs (not upload sessions) and captures the digest.
var blobPath = regexp.MustCompile(`^/v2/.+/blobs/([a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)$`)

// serve counts the request, injects a fault if one applies and otherwise
// forwards it.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	isBlobGet := false
	p.mu.Lock()
	p.stats.Requests[r.Method]++
	if r.Method == http.MethodGet {
		if m := blobPath.FindStringSubmatch(r.URL.Path); m != nil {
			isBlobGet = true
			p.stats.BlobGets[m[1]]++
		}
	}
	kind, retryAfter := p.match(r)
	p.mu.Unlock()

	if isBlobGet {
		// modifyResponse counts the body bytes actually read for the client.
		r = r.WithContext(withBlobCounting(r.Context()))
	}

	switch kind {
	case 0:
		p.rp.ServeHTTP(w, r)
	case Status429, Status503, Status500:
		writeStatus(w, kind, retryAfter)
	case Reset:
		reset(w)
	case TruncateBody:
		p.rp.ServeHTTP(w, r.WithContext(withTruncation(r.Context(), w)))
	}
}

// match returns the fault to inject for r, or 0, and consumes one of its
// Times. p.mu is held.
func (p *Proxy) match(r *http.Request) (Kind, string) {
	for _, f := range p.faults {
		if f.left == 0 {
			continue
		}
		if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
			continue
		}
		if f.PathRegex != nil && !f.PathRegex.MatchString(r.URL.Path) {
			continue
		}
		if f.left > 0 {
			f.left--
		}
		p.stats.Faults++
		p.stats.FaultsByKind[f.Kind]++
		return f.Kind, f.RetryAfter
	}
	return 0, ""
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

// rewrite directs a request to the upstream, keeping the client's Host so
// that the registry builds URLs that point at the proxy.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.upstream)
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
}

// modifyResponse points upstream Locations at the proxy and wraps blob and
// truncated bodies.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil && u.IsAbs() && u.Host == p.upstream.Host {
			u.Scheme, u.Host = "http", p.Host
			resp.Header.Set("Location", u.String())
		}
	}
	ctx := resp.Request.Context()
	if w, ok := truncating(ctx); ok {
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
	}
	if isBlobCounting(ctx) && resp.StatusCode < 300 {
		resp.Body = &countingBody{ReadCloser: resp.Body, p: p}
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

// logWriter sends ReverseProxy's error log to the test log while the test
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

// Request context markers, set by serve and read by modifyResponse.
type (
	blobCountingKey struct{}
	truncationKey   struct{}
)

func withBlobCounting(ctx context.Context) context.Context {
	return context.WithValue(ctx, blobCountingKey{}, true)
}

func isBlobCounting(ctx context.Context) bool {
	on, _ := ctx.Value(blobCountingKey{}).(bool)
	return on
}

// withTruncation marks a request whose response body is to be truncated,
// with the client's ResponseWriter.
func withTruncation(ctx context.Context, w http.ResponseWriter) context.Context {
	return context.WithValue(ctx, truncationKey{}, w)
}

func truncating(ctx context.Context) (http.ResponseWriter, bool) {
	w, ok := ctx.Value(truncationKey{}).(http.ResponseWriter)
	return w, ok
}

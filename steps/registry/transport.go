package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regmigrate/regmigrate/steps/throttle"
)

// newTransport is the base transport of one registry. It has no response
// header timeout of its own: every request carries a watchdog (see do).
func newTransport(tc *tls.Config, perHost int, idle time.Duration) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   min(30*time.Second, idle),
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   perHost * 4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   min(15*time.Second, idle),
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// call is one logical request to a registry.
type call struct {
	host   string   // the registry
	repo   string   // whose credentials apply ("" for the registry's)
	scopes []string // token scopes (bearer registries)
	method string
	// path is "/v2/..." on the registry, or an absolute URL a registry
	// handed out (an upload Location).
	path string
	hdr  http.Header
	// body: nil, replayable bytes, or a stream read once.
	body   []byte
	stream io.Reader
	size   int64
	// streamsInto: the response body is streamed into an upload to
	// another request, which takes a slot of its own; this request's slot
	// is freed once its headers are in, so that a copy never holds one slot
	// while waiting for another (a registry copying into itself would wait
	// for itself).
	streamsInto bool
}

// StallError is a request that made no progress for the idle timeout.
// It is retryable.
type StallError struct {
	Host string
	What string // "response", "response body", "upload"
	Idle time.Duration
}

func (e *StallError) Error() string {
	return fmt.Sprintf("%s: no %s for %s: the registry stalled (the idle timeout, --idle-timeout, ends such requests)", e.Host, e.What, e.Idle)
}

// RedirectError is a redirect the client refuses to follow.
type RedirectError struct {
	URL    string
	Reason string
}

func (e *RedirectError) Error() string { return fmt.Sprintf("redirect from %s: %s", e.URL, e.Reason) }

// do performs one logical request and returns the final response. It holds
// one of the registry's request slots until the response body is closed;
// callers must close it (and never start another request of the same
// registry before that, or they may wait for their own slot). It
// authenticates (refreshing an expired bearer token once), follows
// redirects (never sending the registry's Authorization to another host)
// and ends the request when it stalls for the idle timeout.
func (c *Client) do(ctx context.Context, k call) (*http.Response, error) {
	h, err := c.host(k.host)
	if err != nil {
		return nil, err
	}
	if err := c.ping(ctx, h); err != nil {
		return nil, err
	}
	u, err := c.requestURL(h, k.path)
	if err != nil {
		return nil, err
	}
	cr, err := c.credential(ctx, h, k.repo)
	if err != nil {
		return nil, err
	}
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancelCause(ctx)
	wd := newWatchdog(c.o.IdleTimeout, h.host, cancel)
	fail := func(err error) (*http.Response, error) {
		wd.stop()
		cancel(nil)
		h.release()
		return nil, err
	}
	method, scopes := k.method, k.scopes
	refreshed := false
	for hops := 0; ; {
		var body io.Reader
		switch {
		case k.body != nil:
			body = bytes.NewReader(k.body)
		case k.stream != nil:
			body = k.stream
		}
		if body != nil {
			body = &uploadReader{r: h.thr.Reader(rctx, body), wd: wd}
		}
		req, err := http.NewRequestWithContext(rctx, method, u.String(), body)
		if err != nil {
			return fail(err)
		}
		if body != nil {
			req.ContentLength = k.size
		} else if method == http.MethodPut || method == http.MethodPost {
			req.ContentLength = 0
		}
		for key, v := range k.hdr {
			req.Header[key] = v
		}
		req.Header.Set("User-Agent", c.o.UserAgent)
		own := u.Host == h.addr
		if own {
			authz, err := c.authorization(ctx, h, cr, scopes)
			if err != nil {
				return fail(err)
			}
			if authz != "" {
				req.Header.Set("Authorization", authz)
			}
		}
		if h.thr != nil {
			if err := h.thr.Request(rctx); err != nil {
				return fail(err)
			}
		}
		wd.arm("response")
		resp, err := h.base.RoundTrip(req)
		if err != nil {
			return fail(wd.explain(fmt.Errorf("%s %s: %w", method, shortURL(req), err)))
		}
		h.observeQuota(resp)
		// A bearer token the registry no longer takes (expired, or missing
		// a scope): get a new one and send the request again, once. A
		// registry whose /v2/ let us in anonymously may still challenge
		// here: learn its challenge then.
		// Credentials from a cloud keychain (ECR's, Google's, ACR's) may
		// lapse too, on a Basic registry as on a Bearer one: drop them and
		// resolve the repository again, once.
		if own && resp.StatusCode == http.StatusUnauthorized && !refreshed {
			learned := h.learnChallenge(resp)
			renewed := c.forgetCredential(h, k.repo, cr)
			if learned || renewed {
				refreshed = true
				more := challengeScopes(resp)
				drain(resp)
				c.forgetToken(h, cr, scopes)
				scopes = addScopes(scopes, more)
				if k.stream != nil {
					return fail(&StatusError{Method: method, URL: shortURL(req), Status: http.StatusUnauthorized, Code: "TOKEN_EXPIRED",
						Message: "the registry refused the credentials during a streamed upload; the next attempt fetches new ones", tokenExpired: true})
				}
				if renewed {
					if cr, err = c.credential(ctx, h, k.repo); err != nil {
						return fail(err)
					}
				}
				continue
			}
		}
		if isRedirect(resp.StatusCode) {
			next, nextMethod, err := c.redirect(h, resp, method, k.stream != nil)
			drain(resp)
			if err != nil {
				return fail(err)
			}
			if hops++; hops > c.o.MaxRedirects {
				return fail(&RedirectError{URL: shortURL(req), Reason: fmt.Sprintf("more than %d redirects", c.o.MaxRedirects)})
			}
			u, method = next, nextMethod
			if method == http.MethodGet && k.method != http.MethodGet {
				k.body, k.stream, k.size = nil, nil, 0
			}
			continue
		}
		wd.arm("response body")
		var once sync.Once
		free := func() { once.Do(h.release) }
		if k.streamsInto {
			free()
		}
		resp.Body = &responseBody{rc: resp.Body, wd: wd, thr: h.thr, ctx: rctx, done: func() {
			wd.stop()
			cancel(nil)
			free()
		}}
		return resp, nil
	}
}

// requestURL resolves a call's path on the registry.
func (c *Client) requestURL(h *hostState, path string) (*url.URL, error) {
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		u, err := url.Parse(path)
		if err != nil {
			return nil, fmt.Errorf("bad URL %q from %s: %w", path, h.host, err)
		}
		if u.Scheme == "http" && !h.insecure {
			return nil, fmt.Errorf("%s handed out a plain-HTTP URL (%s): refused, the registry is not marked insecure", h.host, shortURLOf(u))
		}
		return u, nil
	}
	return url.Parse(h.scheme + "://" + h.addr + path)
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// redirect resolves where a redirect leads and with which method (303, and
// 301/302 of a POST, become GET, as browsers and Go's client do). A streamed
// upload cannot be sent twice, and plain HTTP is refused unless the
// registry is marked insecure.
func (c *Client) redirect(h *hostState, resp *http.Response, method string, streamed bool) (*url.URL, string, error) {
	from := shortURL(resp.Request)
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, "", &RedirectError{URL: from, Reason: fmt.Sprintf("%d without a Location", resp.StatusCode)}
	}
	l, err := url.Parse(loc)
	if err != nil {
		return nil, "", &RedirectError{URL: from, Reason: fmt.Sprintf("bad Location: %v", err)}
	}
	next := resp.Request.URL.ResolveReference(l)
	switch next.Scheme {
	case "https":
	case "http":
		// Plain HTTP to the registry itself would carry its credentials:
		// only for an insecure registry. Another host (object storage
		// behind the registry) gets no credentials, and what it serves is
		// checked against its digest, as every client follows it.
		if !h.insecure && next.Host == h.addr {
			return nil, "", &RedirectError{URL: from, Reason: fmt.Sprintf("to plain HTTP on the registry itself (%s): refused, the registry %s is not marked insecure", shortURLOf(next), h.host)}
		}
	default:
		return nil, "", &RedirectError{URL: from, Reason: fmt.Sprintf("to %q: not HTTP(S)", next.Scheme)}
	}
	switch resp.StatusCode {
	case http.StatusSeeOther:
		if method != http.MethodHead {
			method = http.MethodGet
		}
	case http.StatusMovedPermanently, http.StatusFound:
		if method == http.MethodPost {
			method = http.MethodGet
		}
	}
	if streamed && method != http.MethodGet {
		return nil, "", &RedirectError{URL: from, Reason: "of a streamed upload: the body cannot be sent again"}
	}
	return next, method, nil
}

// watchdog cancels a request that makes no progress for idle.
type watchdog struct {
	idle   time.Duration
	host   string
	cancel context.CancelCauseFunc
	last   atomic.Int64 // unix nanos of the last progress (or a deadline extension)
	what   atomic.Value // string: what the request is waiting for
	once   sync.Once
	t      *time.Timer
	fired  atomic.Pointer[StallError]
}

func newWatchdog(idle time.Duration, host string, cancel context.CancelCauseFunc) *watchdog {
	w := &watchdog{idle: idle, host: host, cancel: cancel}
	w.last.Store(time.Now().UnixNano())
	w.what.Store("response")
	w.t = time.AfterFunc(idle, w.check)
	return w
}

func (w *watchdog) check() {
	rem := time.Until(time.Unix(0, w.last.Load()).Add(w.idle))
	if rem > 0 {
		w.t.Reset(rem)
		return
	}
	e := &StallError{Host: w.host, What: w.what.Load().(string), Idle: w.idle}
	w.fired.Store(e)
	w.cancel(e)
}

// touch records progress.
func (w *watchdog) touch() { w.last.Store(time.Now().UnixNano()) }

// arm starts a new phase (waiting for a response, reading a body).
func (w *watchdog) arm(what string) {
	w.what.Store(what)
	w.touch()
}

// extend gives the registry more time once, e.g. to hash and store an
// uploaded blob before it answers.
func (w *watchdog) extend(d time.Duration) {
	w.last.Store(time.Now().Add(d).UnixNano())
}

func (w *watchdog) stop() { w.t.Stop() }

// explain returns the stall behind err, if the watchdog ended the request.
func (w *watchdog) explain(err error) error {
	if s := w.fired.Load(); s != nil {
		return s
	}
	return err
}

// uploadReader feeds a request body and tells the watchdog it moves. When
// the body is sent, the registry gets extra time to store it (about a
// second per 16 MiB) before it must answer.
type uploadReader struct {
	r    io.Reader
	wd   *watchdog
	sent int64
}

func (u *uploadReader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	u.sent += int64(n)
	if n > 0 {
		u.wd.touch()
	}
	if err == io.EOF {
		u.wd.what.Store("response after the upload")
		u.wd.extend(time.Duration(u.sent>>24) * time.Second)
	}
	if err != nil && err != io.EOF {
		err = u.wd.explain(err)
	}
	return n, err
}

// responseBody releases the request's slot when closed and reports a
// stall as such.
type responseBody struct {
	rc   io.ReadCloser
	wd   *watchdog
	thr  *throttle.Limiter // nil: no bandwidth limit
	ctx  context.Context
	once sync.Once
	done func()
}

func (b *responseBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 && b.thr.LimitsBytes() {
		// The bandwidth limit: the bytes are paid for before they are
		// handed on; the wait is the client's, not a stalled registry.
		if werr := b.thr.Bytes(b.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	if n > 0 {
		b.wd.touch()
	}
	if err != nil && err != io.EOF {
		err = b.wd.explain(err)
	}
	return n, err
}

func (b *responseBody) Close() error {
	err := b.rc.Close()
	b.once.Do(b.done)
	return err
}

func shortURL(r *http.Request) string { return shortURLOf(r.URL) }

func shortURLOf(u *url.URL) string {
	v := *u
	v.RawQuery = ""
	v.User = nil
	return v.String()
}

// drain reads a little of what is left so the connection can be reused,
// and closes the body.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// isTLSError reports whether err is a failed TLS handshake or certificate
// check (never a reason to try plain HTTP on a secure registry).
func isTLSError(err error) bool {
	var (
		rec  tls.RecordHeaderError
		cert *tls.CertificateVerificationError
	)
	return errors.As(err, &rec) || errors.As(err, &cert) || strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:")
}

package faultproxy

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
)

// Paths the proxy serves itself, for redirects:
//
//	/_redirected/<path>                  the upstream's <path> (ToRelative)
//	/_hop/<status>/<target>/<k>/<path>   k more redirects before the target
//	/_loop/<status>/<i>/<path>           a redirect to /_loop/<status>/<i+1>/<path>
const (
	redirectedPrefix = "/_redirected"
	hopPrefix        = "/_hop/"
	loopPrefix       = "/_loop/"
)

// Targets in chain URLs.
const (
	targetOther    = "other"
	targetRelative = "rel"
)

func isInternal(path string) bool {
	return strings.HasPrefix(path, redirectedPrefix+"/") || strings.HasPrefix(path, hopPrefix) || strings.HasPrefix(path, loopPrefix)
}

// otherAddr is the loopback address of the second listener: another host
// for an HTTP client (Linux routes all of 127.0.0.0/8 to lo).
const otherAddr = "127.0.0.2"

// startOther starts the second listener: a plain reverse proxy to the
// upstream that records, and drops, Authorization headers. Failing to
// listen is not fatal (only ToOtherHost redirects need it).
func (p *Proxy) startOther(errorLog *log.Logger) {
	l, err := net.Listen("tcp", net.JoinHostPort(otherAddr, "0"))
	if err != nil {
		p.otherErr = err
		return
	}
	p.otherRP = &httputil.ReverseProxy{
		Transport: p.tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.upstream)
			pr.Out.Header.Del("Authorization")
		},
		ModifyResponse: func(resp *http.Response) error {
			if loc := resp.Header.Get("Location"); loc != "" {
				if u, err := url.Parse(loc); err == nil && u.IsAbs() && u.Host == p.upstream.Host {
					u.Scheme, u.Host = "http", p.OtherHost
					resp.Header.Set("Location", u.String())
				}
			}
			return nil
		},
		ErrorLog: errorLog,
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(p.serveOther))
	s.Listener.Close()
	s.Listener = l
	s.Start()
	p.other = s
	p.OtherURL = s.URL
	p.OtherHost = strings.TrimPrefix(s.URL, "http://")
}

// serveOther records a request to the second listener and forwards it.
func (p *Proxy) serveOther(w http.ResponseWriter, r *http.Request) {
	if !p.wait(r) {
		return
	}
	p.mu.Lock()
	p.otherReqs = append(p.otherReqs, OtherRequest{
		Method: r.Method, URI: r.RequestURI, Authorization: len(r.Header.Values("Authorization")) > 0,
	})
	p.mu.Unlock()
	p.otherRP.ServeHTTP(w, r)
}

// redirect answers a Redirect fault.
func (p *Proxy) redirect(w http.ResponseWriter, r *http.Request, f *Fault) {
	status := f.RedirectStatus
	if status == 0 {
		status = DefaultRedirectStatus
	}
	target := targetOther
	if f.RedirectTo == ToRelative {
		target = targetRelative
	}
	path, query := r.URL.EscapedPath(), rawQuery(r.URL)
	switch {
	case f.Hops < 0:
		p.sendRedirect(w, r, status, fmt.Sprintf("%s%d/1%s%s", loopPrefix, status, path, query))
	case f.Hops > 1:
		p.sendRedirect(w, r, status, fmt.Sprintf("%s%d/%s/%d%s%s", hopPrefix, status, target, f.Hops-1, path, query))
	default:
		p.redirectToTarget(w, r, status, target, path, query)
	}
}

// rawQuery returns "?" and the query of u, or "".
func rawQuery(u *url.URL) string {
	if u.RawQuery == "" && !u.ForceQuery {
		return ""
	}
	return "?" + u.RawQuery
}

// redirectToTarget answers the redirect to the final target of a Redirect.
func (p *Proxy) redirectToTarget(w http.ResponseWriter, r *http.Request, status int, target, path, query string) {
	if target == targetRelative {
		p.sendRedirect(w, r, status, redirectedPrefix+path+query)
		return
	}
	if p.OtherURL == "" {
		msg := fmt.Sprintf("faultproxy: no second listener on %s for a redirect: %v", otherAddr, p.otherErr)
		_, _ = logWriter{p}.Write([]byte(msg))
		http.Error(w, msg, http.StatusBadGateway)
		return
	}
	p.sendRedirect(w, r, status, p.OtherURL+path+query)
}

func (p *Proxy) sendRedirect(w http.ResponseWriter, r *http.Request, status int, loc string) {
	// Not http.Redirect: it would clean the path of a relative Location.
	w.Header().Set("Location", loc)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, "faultproxy: redirected to %s\n", loc)
	}
}

// serveInternal serves the proxy's own redirect paths.
func (p *Proxy) serveInternal(w http.ResponseWriter, r *http.Request, st *reqState) {
	esc := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(esc, redirectedPrefix+"/"):
		u := *r.URL
		u.Path = strings.TrimPrefix(u.Path, redirectedPrefix)
		u.RawPath = strings.TrimPrefix(u.RawPath, redirectedPrefix)
		r = r.WithContext(r.Context())
		r.URL = &u
		st.blobCounting = r.Method == http.MethodGet && blobPath.MatchString(u.Path)
		p.forward(w, r, st)
		return
	case strings.HasPrefix(esc, hopPrefix):
		// <status>/<target>/<k><path>
		parts := strings.SplitN(strings.TrimPrefix(esc, hopPrefix), "/", 4)
		if len(parts) == 4 {
			status, err1 := strconv.Atoi(parts[0])
			k, err2 := strconv.Atoi(parts[2])
			if err1 == nil && err2 == nil && k > 0 {
				p.countRedirect()
				path, query := "/"+parts[3], rawQuery(r.URL)
				if k == 1 {
					p.redirectToTarget(w, r, status, parts[1], path, query)
				} else {
					p.sendRedirect(w, r, status, fmt.Sprintf("%s%d/%s/%d%s%s", hopPrefix, status, parts[1], k-1, path, query))
				}
				return
			}
		}
	case strings.HasPrefix(esc, loopPrefix):
		// <status>/<i><path>
		parts := strings.SplitN(strings.TrimPrefix(esc, loopPrefix), "/", 3)
		if len(parts) == 3 {
			status, err1 := strconv.Atoi(parts[0])
			i, err2 := strconv.Atoi(parts[1])
			if err1 == nil && err2 == nil {
				p.countRedirect()
				p.sendRedirect(w, r, status, fmt.Sprintf("%s%d/%d/%s%s", loopPrefix, status, i+1, parts[2], rawQuery(r.URL)))
				return
			}
		}
	}
	http.NotFound(w, r)
}

// countRedirect counts a redirect answered on a chain URL as a fault.
func (p *Proxy) countRedirect() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count(Redirect)
}

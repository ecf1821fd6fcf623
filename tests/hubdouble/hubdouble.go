// Package hubdouble stands in for Docker Hub in tests: Hub's API (the
// repositories of an organisation or user, paginated with "next" links as
// Hub pages them, and the login that lists private ones) and, in front of
// a real registry, Hub's pull quota: manifest responses carry
// `ratelimit-limit: N;w=S` and `ratelimit-remaining: M;w=S`, each manifest
// GET counts (a HEAD does not, as Docker documents), and a GET over the
// quota gets 429 Too Many Requests until the window reopens.
//
// The repositories the API lists are the real registry's (its catalog,
// grouped by namespace), so what a client lists is what it can pull.
package hubdouble

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options of a double.
type Options struct {
	// Upstream is the real registry's base URL (http://127.0.0.1:PORT).
	Upstream string
	// Limit pulls (manifest GETs) per Window; 0: no quota.
	Limit  int
	Window time.Duration
	// RetryAfter adds Retry-After to a 429 (the seconds until the window
	// reopens); without it, the client has the w= of the headers.
	RetryAfter bool
	// QuietQuota leaves the ratelimit headers out of every answer but a
	// 429: the client learns of the quota when it is spent.
	QuietQuota bool
	// MaxPageSize is the largest page the API serves (Hub's is 100);
	// bigger requests are cut to it, as Hub does.
	MaxPageSize int
	// Extra are repositories (ORG/NAME) the API lists that the registry
	// does not hold (deleted since, say).
	Extra []string
	// Username and Password, when set, are the only login the API takes;
	// Private organisations are then listed only with its token.
	Username, Password string
	Private            []string
	// Denied are repositories (ORG/NAME) whose manifests the registry
	// refuses (403 DENIED, as Hub answers a pull without access).
	Denied []string
}

// Double is a running Hub double.
type Double struct {
	// API is the base URL of the Hub API double (REGMIGRATE_HUB_API).
	API string
	// Host is the registry front's host:port (the quota is enforced there).
	Host string

	o        Options
	upstream *url.URL

	mu          sync.Mutex
	windowStart time.Time
	used        int // GETs in the current window
	stats       Stats
	token       string
}

// Stats are what the double served.
type Stats struct {
	ManifestGETs  int // answered 200
	ManifestHEADs int
	TooMany       int // 429s
	Pages         int // API pages served
	// MaxInWindow is the most GETs served in one window (never more than
	// Limit: a 429 is not served).
	MaxInWindow int
	Logins      int
}

// Stats returns a copy of the counters.
func (d *Double) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Start serves the API and the registry front until the test ends.
func Start(t testing.TB, o Options) *Double {
	t.Helper()
	u, err := url.Parse(o.Upstream)
	if err != nil || u.Host == "" {
		t.Fatalf("hubdouble: upstream %q: want http://HOST:PORT", o.Upstream)
	}
	if o.MaxPageSize <= 0 {
		o.MaxPageSize = 100
	}
	d := &Double{o: o, upstream: u, token: "hub-jwt-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	api := httptest.NewServer(http.HandlerFunc(d.serveAPI))
	t.Cleanup(api.Close)
	front := httptest.NewServer(d.registryFront())
	t.Cleanup(front.Close)
	d.API = api.URL
	d.Host = strings.TrimPrefix(front.URL, "http://")
	return d
}

var manifestPath = regexp.MustCompile(`^/v2/(.+)/manifests/[^/]+$`)

func (d *Double) registryFront() http.Handler {
	proxy := httputil.NewSingleHostReverseProxy(d.upstream)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := manifestPath.FindStringSubmatch(r.URL.Path)
		if m == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			proxy.ServeHTTP(w, r)
			return
		}
		for _, denied := range d.o.Denied {
			if m[1] == denied {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				_, _ = io.WriteString(w, `{"errors":[{"code":"DENIED","message":"pull access denied"}]}`)
				return
			}
		}
		d.mu.Lock()
		now := time.Now()
		if d.o.Limit > 0 && (d.windowStart.IsZero() || now.Sub(d.windowStart) >= d.o.Window) {
			d.windowStart, d.used = now, 0
		}
		if r.Method == http.MethodHead {
			d.stats.ManifestHEADs++
			d.headers(w, false)
			d.mu.Unlock()
			proxy.ServeHTTP(w, r)
			return
		}
		if d.o.Limit > 0 && d.used >= d.o.Limit {
			d.stats.TooMany++
			d.headers(w, true)
			if d.o.RetryAfter {
				left := d.o.Window - now.Sub(d.windowStart)
				w.Header().Set("Retry-After", strconv.Itoa(int((left+time.Second-1)/time.Second)))
			}
			d.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"}]}`)
			return
		}
		d.used++
		d.stats.ManifestGETs++
		d.stats.MaxInWindow = max(d.stats.MaxInWindow, d.used)
		d.headers(w, false)
		d.mu.Unlock()
		proxy.ServeHTTP(w, r)
	})
}

// headers adds the quota headers (d.mu held).
func (d *Double) headers(w http.ResponseWriter, tooMany bool) {
	if d.o.Limit <= 0 || (d.o.QuietQuota && !tooMany) {
		return
	}
	ws := int(d.o.Window / time.Second)
	w.Header().Set("ratelimit-limit", fmt.Sprintf("%d;w=%d", d.o.Limit, ws))
	w.Header().Set("ratelimit-remaining", fmt.Sprintf("%d;w=%d", max(0, d.o.Limit-d.used), ws))
	w.Header().Set("docker-ratelimit-source", "127.0.0.1")
}

type repo struct {
	Name           string `json:"name"`
	Namespace      string `json:"namespace"`
	RepositoryType string `json:"repository_type"`
	IsPrivate      bool   `json:"is_private"`
}

var reposPath = regexp.MustCompile(`^/v2/repositories/([^/]+)/?$`)

func (d *Double) serveAPI(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v2/users/login" && r.Method == http.MethodPost {
		var in struct{ Username, Password string }
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in)
		d.mu.Lock()
		d.stats.Logins++
		d.mu.Unlock()
		if d.o.Username == "" || in.Username != d.o.Username || in.Password != d.o.Password {
			apiError(w, http.StatusUnauthorized, "Incorrect authentication credentials")
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"token": d.token})
		return
	}
	m := reposPath.FindStringSubmatch(r.URL.Path)
	if m == nil || r.Method != http.MethodGet {
		apiError(w, http.StatusNotFound, "not found")
		return
	}
	org := m[1]
	for _, p := range d.o.Private {
		if p == org && r.Header.Get("Authorization") != "Bearer "+d.token {
			apiError(w, http.StatusNotFound, "object not found") // Hub hides private organisations
			return
		}
	}
	all, err := d.repos(org)
	if err != nil {
		apiError(w, http.StatusBadGateway, err.Error())
		return
	}
	if len(all) == 0 {
		apiError(w, http.StatusNotFound, "object not found")
		return
	}
	size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
	if size <= 0 {
		size = 10 // Hub's default
	}
	size = min(size, d.o.MaxPageSize)
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page <= 0 {
		page = 1
	}
	from := min((page-1)*size, len(all))
	to := min(from+size, len(all))
	out := map[string]any{"count": len(all), "next": nil, "previous": nil, "results": all[from:to]}
	if to < len(all) {
		out["next"] = fmt.Sprintf("%s/v2/repositories/%s/?page=%d&page_size=%d", "http://"+r.Host, org, page+1, size)
	}
	if page > 1 {
		out["previous"] = fmt.Sprintf("%s/v2/repositories/%s/?page=%d&page_size=%d", "http://"+r.Host, org, page-1, size)
	}
	d.mu.Lock()
	d.stats.Pages++
	d.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// repos are the registry's repositories in org, and the Extra ones.
func (d *Double) repos(org string) ([]repo, error) {
	resp, err := http.Get(d.upstream.String() + "/v2/_catalog?n=1000")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the registry's catalog: %s", resp.Status)
	}
	var cat struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cat); err != nil {
		return nil, err
	}
	names := append(cat.Repositories, d.o.Extra...)
	sort.Strings(names)
	var out []repo
	for _, n := range names {
		ns, name, ok := strings.Cut(n, "/")
		if !ok || ns != org || strings.Contains(name, "/") {
			continue
		}
		out = append(out, repo{Name: name, Namespace: ns, RepositoryType: "image"})
	}
	return out, nil
}

func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"detail": msg})
}

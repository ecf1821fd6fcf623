package clouddouble

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// GoogleOptions configure the Google double.
type GoogleOptions struct {
	// Backend is the real registry behind the Artifact Registry front.
	Backend string
	// TokenTTL is the lifetime of the metadata server's access tokens
	// (Google: about an hour).
	TokenTTL time.Duration
}

// Google is a running double: MetadataHost is what GCE_METADATA_HOST
// names (the metadata server), Host the registry's host:port (plain HTTP:
// mark it insecure). The registry speaks Artifact Registry's token flow: a
// Bearer challenge whose realm takes the access token as the password of
// user _token and answers a registry token that lives as long.
type Google struct {
	MetadataHost string
	Host         string
	o            GoogleOptions

	mu       sync.Mutex
	access   map[string]time.Time // access token -> expiry
	registry map[string]time.Time // registry token -> expiry
	issued   int
	refused  int
	used     map[string]bool
}

// StartGoogle starts the metadata server and the registry front until the
// test ends.
func StartGoogle(t testing.TB, o GoogleOptions) *Google {
	t.Helper()
	if o.TokenTTL <= 0 {
		o.TokenTTL = time.Hour
	}
	g := &Google{o: o, access: map[string]time.Time{}, registry: map[string]time.Time{}, used: map[string]bool{}}
	md := httptest.NewServer(http.HandlerFunc(g.serveMetadata))
	t.Cleanup(md.Close)
	backend, err := url.Parse(o.Backend)
	if err != nil {
		t.Fatalf("clouddouble: backend %q: %v", o.Backend, err)
	}
	proxy := httputil.NewSingleHostReverseProxy(backend)
	reg := httptest.NewServer(g.front(proxy))
	t.Cleanup(reg.Close)
	g.MetadataHost, g.Host = strings.TrimPrefix(md.URL, "http://"), strings.TrimPrefix(reg.URL, "http://")
	return g
}

// Issued is how many access tokens the metadata server handed out.
func (g *Google) Issued() int { g.mu.Lock(); defer g.mu.Unlock(); return g.issued }

// Refused is how many requests came with an expired token.
func (g *Google) Refused() int { g.mu.Lock(); defer g.mu.Unlock(); return g.refused }

// AccessTokensUsed is how many distinct access tokens got a registry
// token.
func (g *Google) AccessTokensUsed() int { g.mu.Lock(); defer g.mu.Unlock(); return len(g.used) }

// serveMetadata answers what the metadata package of Google's Go libraries
// asks: the default service account's token (with Metadata-Flavor:
// Google, as the real server requires).
func (g *Google) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Metadata-Flavor") != "Google" {
		http.Error(w, "Missing required header: Metadata-Flavor", http.StatusForbidden)
		return
	}
	w.Header().Set("Metadata-Flavor", "Google")
	switch r.URL.Path {
	case "/computeMetadata/v1/instance/service-accounts/default/token":
		tok := "ya29." + randomToken(24)
		g.mu.Lock()
		g.access[tok] = time.Now().Add(g.o.TokenTTL)
		g.issued++
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": int(g.o.TokenTTL.Seconds()), "token_type": "Bearer"})
	case "/computeMetadata/v1/project/project-id":
		fmt.Fprint(w, "regmigrate-test")
	case "/computeMetadata/v1/universe/universe-domain", "/computeMetadata/v1/universe/universe_domain":
		fmt.Fprint(w, "googleapis.com")
	case "/computeMetadata/v1/instance/service-accounts/default/email":
		fmt.Fprint(w, "regmigrate@regmigrate-test.iam.gserviceaccount.com")
	default:
		http.NotFound(w, r)
	}
}

func (g *Google) front(proxy http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/token" {
			g.token(w, r)
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		g.mu.Lock()
		exp, known := g.registry[tok]
		valid := ok && known && time.Now().Before(exp)
		if ok && known && !valid {
			g.refused++
		}
		g.mu.Unlock()
		if !valid {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/v2/token",service="%s"`, g.Host, g.Host))
			registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
		r.Header.Del("Authorization")
		proxy.ServeHTTP(w, r)
	})
}

// token exchanges an access token (Basic _token:ACCESS) for a registry
// token living as long as it.
func (g *Google) token(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	g.mu.Lock()
	exp, known := g.access[pass]
	valid := ok && user == "_token" && known && time.Now().Before(exp)
	if ok && known && !valid {
		g.refused++
	}
	var tok string
	if valid {
		tok = randomToken(24)
		g.registry[tok] = exp
		g.used[pass] = true
	}
	g.mu.Unlock()
	if !valid {
		registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "failed to authenticate with the access token")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": int(time.Until(exp).Seconds())})
}

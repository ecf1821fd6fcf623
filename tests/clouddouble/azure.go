package clouddouble

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// AzureOptions configure the Azure double.
type AzureOptions struct {
	// Backend is the real registry behind the ACR front.
	Backend string
	// Tenant, ClientID and ClientSecret are what the Microsoft Entra
	// double takes (client credentials).
	Tenant, ClientID, ClientSecret string
	// RefreshTTL is the lifetime of the ACR refresh tokens the exchange
	// hands out (ACR: 3 h).
	RefreshTTL time.Duration
}

// Azure is a running double: AuthorityHost is what AZURE_AUTHORITY_HOST
// names (Microsoft Entra's token endpoint, HTTPS, its CA in CAFile), Host
// the ACR registry's host:port (plain HTTP: mark it insecure). The
// registry speaks ACR's flow: POST /oauth2/exchange trades an Entra access
// token for a refresh token, POST /oauth2/token a refresh token for an
// access token with a Bearer challenge's scopes.
type Azure struct {
	AuthorityHost string
	CAFile        string
	Host          string
	o             AzureOptions

	mu       sync.Mutex
	aad      map[string]bool
	refresh  map[string]time.Time
	access   map[string]time.Time
	aadCount int
	exchange int
}

// StartAzure starts the Entra double (TLS) and the ACR front until the
// test ends.
func StartAzure(t testing.TB, o AzureOptions) *Azure {
	t.Helper()
	if o.RefreshTTL <= 0 {
		o.RefreshTTL = 3 * time.Hour
	}
	a := &Azure{o: o, aad: map[string]bool{}, refresh: map[string]time.Time{}, access: map[string]time.Time{}}
	aad := httptest.NewTLSServer(http.HandlerFunc(a.serveEntra))
	t.Cleanup(aad.Close)
	a.AuthorityHost = aad.URL + "/"
	a.CAFile = filepath.Join(t.TempDir(), "entra-ca.pem")
	if err := os.WriteFile(a.CAFile, pemOf(aad.Certificate().Raw), 0o644); err != nil {
		t.Fatal(err)
	}
	backend, err := url.Parse(o.Backend)
	if err != nil {
		t.Fatalf("clouddouble: backend %q: %v", o.Backend, err)
	}
	reg := httptest.NewServer(a.front(httputil.NewSingleHostReverseProxy(backend)))
	t.Cleanup(reg.Close)
	a.Host = strings.TrimPrefix(reg.URL, "http://")
	return a
}

func pemOf(der []byte) []byte {
	return []byte("-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(der) + "\n-----END CERTIFICATE-----\n")
}

// EntraTokens is how many access tokens the Entra double issued;
// Exchanges how many refresh tokens ACR's exchange handed out.
func (a *Azure) EntraTokens() int { a.mu.Lock(); defer a.mu.Unlock(); return a.aadCount }
func (a *Azure) Exchanges() int   { a.mu.Lock(); defer a.mu.Unlock(); return a.exchange }

func (a *Azure) serveEntra(w http.ResponseWriter, r *http.Request) {
	base := "https://" + r.Host + "/" + a.o.Tenant
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/" + a.o.Tenant + "/v2.0/.well-known/openid-configuration":
		_ = json.NewEncoder(w).Encode(map[string]any{
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer":                 base + "/v2.0",
		})
	case "/" + a.o.Tenant + "/oauth2/v2.0/token":
		_ = r.ParseForm()
		if r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("client_id") != a.o.ClientID || r.PostForm.Get("client_secret") != a.o.ClientSecret {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
			return
		}
		tok := "aad." + randomToken(16)
		a.mu.Lock()
		a.aad[tok] = true
		a.aadCount++
		a.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
	default:
		http.NotFound(w, r)
	}
}

// jwtWithExp is an unsigned JWT whose only claim is exp (what a client
// reads of ACR's refresh tokens).
func jwtWithExp(exp time.Time) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(fmt.Sprintf(`{"exp":%d,"jti":%q}`, exp.Unix(), randomToken(8)))) + "." + enc.EncodeToString([]byte("sig"))
}

func (a *Azure) front(proxy http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth2/exchange":
			_ = r.ParseForm()
			a.mu.Lock()
			ok := r.PostForm.Get("grant_type") == "access_token" && r.PostForm.Get("service") == a.Host && a.aad[r.PostForm.Get("access_token")]
			var rt string
			if ok {
				rt = jwtWithExp(time.Now().Add(a.o.RefreshTTL))
				a.refresh[rt] = time.Now().Add(a.o.RefreshTTL)
				a.exchange++
			}
			a.mu.Unlock()
			if !ok {
				registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid AAD access token")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"refresh_token": rt})
			return
		case "/oauth2/token":
			_ = r.ParseForm()
			a.mu.Lock()
			exp, ok := a.refresh[r.PostForm.Get("refresh_token")]
			ok = ok && r.PostForm.Get("grant_type") == "refresh_token" && time.Now().Before(exp)
			var at string
			if ok {
				at = randomToken(16)
				a.access[at] = time.Now().Add(time.Minute)
			}
			a.mu.Unlock()
			if !ok {
				registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid or expired refresh token")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": at, "expires_in": 60})
			return
		}
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		a.mu.Lock()
		exp, ok := a.access[tok]
		a.mu.Unlock()
		if !ok || time.Now().After(exp) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/oauth2/token",service="%s"`, a.Host, a.Host))
			registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
		r.Header.Del("Authorization")
		proxy.ServeHTTP(w, r)
	})
}

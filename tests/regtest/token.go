package regtest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DistributionLeeway is the clock skew the CNCF distribution registry (2.x
// and 3.x) allows on a token's exp and nbf claims: it accepts a token until
// a minute after its exp.
const DistributionLeeway = 60 * time.Second

// TokenOptions configures a TokenIssuer.
type TokenOptions struct {
	// TTL is how long a token is good for: the expires_in the issuer
	// answers, and (see Leeway) how long a distribution registry accepts
	// it. Default 5 minutes; it may be as short as a second.
	TTL time.Duration

	// Leeway is subtracted from the exp claim so that a registry that
	// allows that much clock skew rejects a token TTL after it was issued
	// (rounded up to a whole second), not TTL plus a minute. Default
	// DistributionLeeway; a negative value subtracts nothing (exp is then
	// the issue time plus TTL and the registry accepts the token a minute
	// longer).
	Leeway time.Duration

	Username string // the one user; default Username
	Password string // its password; default random

	Service string // the audience, the registry's auth.token.service; default "regtest"
	Issuer  string // the iss claim, the registry's auth.token.issuer; default "regtest-token-issuer"

	// Actions are the repository actions granted to the user when it asks
	// for them; default pull, push and delete. registry:catalog:* is
	// always granted to the user; anonymous requests get tokens that grant
	// nothing.
	Actions []string

	Plain bool // serve plain HTTP; default HTTPS with a certificate from the issuer's CA

	// Host is the IP address to listen on and to name in the realm.
	// Default: listen on 127.0.0.1, name it localhost, because
	// go-containerregistry (v0.22.1, as go.mod requires) refuses a realm
	// on a loopback or private IP literal other than the registry's own
	// host:port (SSRF protection); host names pass.
	Host string

	// Dir receives the CA (ca.pem) and certs.d; NewTokenIssuer requires
	// it, StartTokenIssuer uses a t.TempDir().
	Dir string
}

// TokenIssuer is a token server implementing the Docker registry token
// specification (https://distribution.github.io/distribution/spec/auth/token/):
// GET <Realm>?service=..&scope=..&account=.. with HTTP Basic credentials
// (and offline_token=true for a refresh token), and the OAuth2 POST form
// (grant_type=password with access_type=offline, grant_type=refresh_token).
// It signs ES256 JWTs with a certificate of its CA (x5c header), which the
// registry trusts through auth.token.rootcertbundle.
//
// Its Registry describes the token server itself: Host, Scheme, CAFile and
// CertsDir to trust it, Username and Password the credentials it accepts.
// A distribution registry started with it (Options.Token,
// ProcOptions.Token) gets a TLS certificate from the same CA, so that one
// CAFile covers the registry and its token server, and the same Username
// and Password.
type TokenIssuer struct {
	*Registry

	Realm   string // the token endpoint, e.g. https://localhost:41234/token
	Service string
	Issuer  string
	TTL     time.Duration

	// RootCertBundle is the PEM file of the CA that signs the token signing
	// certificate (and the TLS certificates): auth.token.rootcertbundle.
	RootCertBundle string

	ca      *ca
	signer  *ecdsa.PrivateKey
	x5c     string // the signing certificate, standard base64 DER
	leeway  time.Duration
	actions []string
	srv     *httptest.Server

	mu      sync.Mutex
	issued  int
	refresh map[string]string // refresh token -> user
}

// StartTokenIssuer starts a TokenIssuer until the test ends.
func StartTokenIssuer(t testing.TB, o TokenOptions) *TokenIssuer {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	ti, err := NewTokenIssuer(o)
	if err != nil {
		t.Fatalf("regtest: start token issuer: %v", err)
	}
	t.Cleanup(ti.Close)
	return ti
}

// NewTokenIssuer starts a TokenIssuer; Close stops it.
func NewTokenIssuer(o TokenOptions) (*TokenIssuer, error) {
	if o.Dir == "" {
		return nil, errors.New("regtest: TokenOptions.Dir is required")
	}
	if o.TTL <= 0 {
		o.TTL = 5 * time.Minute
	}
	switch {
	case o.Leeway == 0:
		o.Leeway = DistributionLeeway
	case o.Leeway < 0:
		o.Leeway = 0
	}
	if o.Username == "" {
		o.Username = Username
	}
	if o.Password == "" {
		o.Password = randomHex(16)
	}
	if o.Service == "" {
		o.Service = "regtest"
	}
	if o.Issuer == "" {
		o.Issuer = "regtest-token-issuer"
	}
	if o.Actions == nil {
		o.Actions = []string{"pull", "push", "delete"}
	}
	name := o.Host
	if o.Host == "" {
		o.Host, name = "127.0.0.1", "localhost"
	}
	ip := net.ParseIP(o.Host)
	if ip == nil {
		return nil, fmt.Errorf("regtest: TokenOptions.Host %q is not an IP address", o.Host)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}

	c, err := newCA()
	if err != nil {
		return nil, err
	}
	signCert, signKey, err := c.issue("regtest token signer")
	if err != nil {
		return nil, err
	}
	ti := &TokenIssuer{
		Registry: &Registry{Scheme: "https", Username: o.Username, Password: o.Password},
		Service:  o.Service,
		Issuer:   o.Issuer,
		TTL:      o.TTL,
		ca:       c,
		signer:   signKey,
		x5c:      base64.StdEncoding.EncodeToString(signCert.Raw),
		leeway:   o.Leeway,
		actions:  o.Actions,
		refresh:  map[string]string{},
	}
	ti.RootCertBundle = filepath.Join(o.Dir, "ca.pem")
	if err := os.WriteFile(ti.RootCertBundle, c.pem, 0o644); err != nil {
		return nil, err
	}

	l, err := net.Listen("tcp", net.JoinHostPort(o.Host, "0"))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", ti.serveToken)
	ti.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	ti.Host = net.JoinHostPort(name, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	if o.Plain {
		ti.Scheme = "http"
		ti.srv.Start()
	} else {
		_, certFile, keyFile, err := c.writeServer(filepath.Join(o.Dir, "tls"), ip)
		if err != nil {
			l.Close()
			return nil, err
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			l.Close()
			return nil, err
		}
		ti.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ti.srv.StartTLS()
		ti.CAFile = ti.RootCertBundle
		ti.CertsDir = filepath.Join(o.Dir, "certs.d")
		if err := copyFile(ti.CAFile, filepath.Join(ti.CertsDir, ti.Host, "ca.crt")); err != nil {
			ti.srv.Close()
			return nil, err
		}
	}
	ti.Realm = ti.URL() + "/token"
	return ti, nil
}

// Close stops the token server.
func (ti *TokenIssuer) Close() { ti.srv.Close() }

// Issued returns how many access tokens the issuer has handed out,
// anonymous ones included.
func (ti *TokenIssuer) Issued() int {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return ti.issued
}

// tokenResponse is the token endpoint's answer: token for the Docker
// flow, access_token for OAuth2 clients (both are set).
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

func (ti *TokenIssuer) serveToken(w http.ResponseWriter, r *http.Request) {
	var (
		user, service, refresh string
		scopes                 []string
		offline                bool
	)
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		service = q.Get("service")
		for _, s := range q["scope"] {
			scopes = append(scopes, strings.Fields(s)...)
		}
		if u, p, ok := r.BasicAuth(); ok {
			if !ti.valid(u, p) {
				w.Header().Set("WWW-Authenticate", `Basic realm="regtest token issuer"`)
				tokenError(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid username or password")
				return
			}
			user = u
			offline = q.Get("offline_token") == "true"
		} else if r.Header.Get("Authorization") != "" {
			tokenError(w, http.StatusUnauthorized, "UNAUTHORIZED", "only Basic credentials are accepted")
			return
		}
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		f := r.PostForm
		service = f.Get("service")
		scopes = strings.Fields(f.Get("scope"))
		if f.Get("client_id") == "" {
			tokenError(w, http.StatusBadRequest, "invalid_request", "client_id is required")
			return
		}
		switch f.Get("grant_type") {
		case "password":
			if !ti.valid(f.Get("username"), f.Get("password")) {
				tokenError(w, http.StatusUnauthorized, "invalid_grant", "invalid username or password")
				return
			}
			user = f.Get("username")
			offline = f.Get("access_type") == "offline"
		case "refresh_token":
			refresh = f.Get("refresh_token")
			ti.mu.Lock()
			user = ti.refresh[refresh]
			ti.mu.Unlock()
			if user == "" {
				tokenError(w, http.StatusUnauthorized, "invalid_grant", "unknown refresh token")
				return
			}
		default:
			tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be password or refresh_token")
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		tokenError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", r.Method+" is not allowed")
		return
	}
	if service != "" && service != ti.Service {
		tokenError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("service %q, this issuer serves %q", service, ti.Service))
		return
	}

	now := time.Now()
	tok, err := ti.sign(user, ti.grant(user, scopes), now)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	resp := tokenResponse{
		Token:       tok,
		AccessToken: tok,
		ExpiresIn:   int(math.Ceil(ti.TTL.Seconds())),
		IssuedAt:    now.UTC().Format(time.RFC3339),
		Scope:       strings.Join(scopes, " "),
	}
	ti.mu.Lock()
	ti.issued++
	switch {
	case refresh != "":
		resp.RefreshToken = refresh
	case offline:
		resp.RefreshToken = randomHex(24)
		ti.refresh[resp.RefreshToken] = user
	}
	ti.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

func (ti *TokenIssuer) valid(user, password string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(ti.Username))
	p := subtle.ConstantTimeCompare([]byte(password), []byte(ti.Password))
	return u&p == 1
}

func tokenError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error":             code,
		"error_description": msg,
		"errors":            []map[string]string{{"code": code, "message": msg}},
	})
}

// resourceActions is an entry of the access claim.
type resourceActions struct {
	Type    string   `json:"type"`
	Class   string   `json:"class,omitempty"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// grant returns the access the user gets for the requested scopes
// ("type[(class)]:name:action,action"): the requested repository actions
// that TokenOptions.Actions allows, and registry:catalog:*. Anonymous
// requests get nothing.
func (ti *TokenIssuer) grant(user string, scopes []string) []resourceActions {
	access := []resourceActions{}
	if user == "" {
		return access
	}
	for _, s := range scopes {
		typ, rest, ok := strings.Cut(s, ":")
		i := strings.LastIndexByte(rest, ':')
		if !ok || i < 0 {
			continue
		}
		name, actions := rest[:i], strings.Split(rest[i+1:], ",")
		var class string
		if j := strings.IndexByte(typ, '('); j >= 0 && strings.HasSuffix(typ, ")") {
			typ, class = typ[:j], typ[j+1:len(typ)-1]
		}
		var granted []string
		switch {
		case typ == "repository":
			for _, a := range actions {
				if slices.Contains(ti.actions, a) {
					granted = append(granted, a)
				}
			}
		case typ == "registry" && name == "catalog" && slices.Contains(actions, "*"):
			granted = []string{"*"}
		}
		if len(granted) > 0 {
			access = append(access, resourceActions{Type: typ, Class: class, Name: name, Actions: granted})
		}
	}
	return access
}

// sign makes the JWT: ES256 with the signing certificate in x5c, which
// distribution verifies against its rootcertbundle (v3 also accepts a kid
// naming a key of the bundle or of a JWKS; 2.x a libtrust key ID). The
// audience is one string: distribution 2.x accepts nothing else, 3.x
// either form. The registry checks iss, aud, exp and nbf (each with
// DistributionLeeway) and the access claim; iat and jti are informative.
func (ti *TokenIssuer) sign(user string, access []resourceActions, now time.Time) (string, error) {
	header, err := json.Marshal(map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{ti.x5c}})
	if err != nil {
		return "", err
	}
	// The registry accepts the token until exp+leeway: put that TTL after
	// now, rounded up to a whole second.
	exp := int64(math.Ceil(float64(now.Add(ti.TTL).UnixNano())/1e9)) - int64(ti.leeway/time.Second)
	claims, err := json.Marshal(map[string]any{
		"iss":    ti.Issuer,
		"sub":    user,
		"aud":    ti.Service,
		"exp":    exp,
		"nbf":    now.Unix(),
		"iat":    now.Unix(),
		"jti":    randomHex(12),
		"access": access,
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	h := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, ti.signer, h[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64) // JWS ES256: r and s, 32 bytes each, big-endian
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig), nil
}

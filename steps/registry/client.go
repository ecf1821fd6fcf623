// Package registry is regmigrate's one way to talk to an OCI distribution
// registry: authentication (basic, and bearer tokens that are refreshed
// when they expire), TLS per registry, plain HTTP only for registries marked
// insecure, redirects to object storage followed without credentials, a
// request limit per registry, an idle timeout on every request, size caps on
// everything a registry sends, and retries with exponential backoff and
// jitter. Every step uses it.
//
// The client speaks the distribution API directly (HEAD/GET/PUT manifests,
// HEAD/GET blobs, monolithic and mounted uploads, catalog and tag listing,
// referrers) so that the copy engine controls exactly which bytes move.
// Credentials come from a go-containerregistry keychain.
//
// Files: client.go (options, per-registry state), transport.go (one
// request: slot, auth, redirects, idle timeout), auth.go (ping, challenges,
// tokens), manifest.go, blob.go, list.go, referrers.go, names.go (what
// goes into a request path), retry.go (errors and retries).
package registry

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/regmigrate/regmigrate/steps/throttle"
)

// Defaults, set here and nowhere else.
const (
	DefaultMaxPerRegistry = 6 // concurrent requests per registry (oc image mirror's default)
	DefaultRetryAttempts  = 5
	DefaultRetryBase      = 200 * time.Millisecond
	DefaultRetryMax       = 20 * time.Second
	DefaultPageSize       = 1000 // catalog and tag pages: ECR refuses n > 1000
	DefaultUserAgent      = "regmigrate"
	// DefaultIdleTimeout ends a request whose response headers or body
	// bytes stop arriving (or whose upload stops being read) for this long.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxRedirects bounds the redirects followed for one request
	// (the Go client's and containerd's limit).
	DefaultMaxRedirects = 10
)

// Options configure a Client. The zero value works for anonymous HTTPS.
type Options struct {
	// Keychain resolves credentials per repository; nil means anonymous.
	Keychain authn.Keychain
	// TLSConfig returns the TLS configuration for a registry host; nil means
	// system roots.
	TLSConfig func(host string) (*tls.Config, error)
	// Insecure reports whether a registry may be reached over plain HTTP or
	// with unverified TLS. Every other registry is spoken to over verified
	// HTTPS only, whatever its address (loopback and private addresses
	// included), and a TLS failure never falls back to HTTP.
	Insecure func(host string) bool
	// MaxPerRegistry bounds concurrent requests to one registry.
	MaxPerRegistry int
	// Retry policy for transient failures.
	RetryAttempts int
	RetryBase     time.Duration
	RetryMax      time.Duration
	// IdleTimeout ends a request that makes no progress for this long (no
	// response headers, no body bytes, upload not read); the failure is
	// retryable. Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxRedirects bounds the redirects followed per request (default
	// DefaultMaxRedirects).
	MaxRedirects int
	UserAgent    string
	// Logger receives retries and warnings; nil discards.
	Logger *slog.Logger
	// PageSize is n for catalog and tag listing (at most 1000: ECR refuses more).
	PageSize int
	// MaxListEntries bounds one catalog or tag listing (default
	// DefaultMaxListEntries): a registry listing without end is refused.
	MaxListEntries int
	// Transport overrides the base transport (tests); TLSConfig is then ignored.
	Transport http.RoundTripper
	// Throttle returns a registry's limiter (requests/s, bytes/s), one per
	// host, shared by every request to it; nil or a nil limiter: none
	// (throttle.go).
	Throttle func(host string) *throttle.Limiter
	// OnWait is told when requests to a registry pause for its pull quota
	// (a 429, or a quota spent) and when they resume (quota.go).
	OnWait func(Wait)
}

// InsecureHosts returns an Options.Insecure that allows exactly the given
// hosts (host[:port]).
func InsecureHosts(hosts ...string) func(string) bool {
	set := map[string]bool{}
	for _, h := range hosts {
		set[h] = true
	}
	return func(h string) bool { return set[h] }
}

func (o *Options) setDefaults() {
	if o.MaxPerRegistry <= 0 {
		o.MaxPerRegistry = DefaultMaxPerRegistry
	}
	if o.RetryAttempts <= 0 {
		o.RetryAttempts = DefaultRetryAttempts
	}
	if o.RetryBase <= 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxRedirects <= 0 {
		o.MaxRedirects = DefaultMaxRedirects
	}
	if o.PageSize <= 0 || o.PageSize > DefaultPageSize {
		o.PageSize = DefaultPageSize
	}
	if o.MaxListEntries <= 0 {
		o.MaxListEntries = DefaultMaxListEntries
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Keychain == nil {
		o.Keychain = authn.NewMultiKeychain()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Insecure == nil {
		o.Insecure = func(string) bool { return false }
	}
}

// Client talks to any number of registries.
type Client struct {
	o      Options
	mu     sync.Mutex
	regs   map[string]*hostState
	stores map[string]Store // hosts served from a layout or archive (Attach)
}

// New returns a Client.
func New(o Options) *Client {
	o.setDefaults()
	return &Client{o: o, regs: map[string]*hostState{}}
}

// hostState is what the client keeps per registry host.
type hostState struct {
	host     string
	addr     string // where its API is: host, or Docker Hub's endpoint (dockerhub.go)
	insecure bool
	base     http.RoundTripper
	sem      chan struct{}
	thr      *throttle.Limiter // nil: no throttle
	quota    quotaState

	pingMu sync.Mutex
	pinged bool
	scheme string    // https, or http for an insecure registry that speaks no TLS
	ch     challenge // what /v2/ asked for

	credMu sync.Mutex
	creds  map[string]*credential // by repository ("" for the registry)

	tokMu  sync.Mutex
	tokens map[string]*token // by credential identity and scopes

	refMu     sync.Mutex
	referrers int // 0 unknown, 1 supported, -1 not supported
	// refProbe is closed when the first referrers request, under way,
	// has found out whether the registry has the API; nil when none is.
	refProbe chan struct{}
}

func (c *Client) host(host string) (*hostState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.regs[host]; ok {
		return h, nil
	}
	if !validHost(host) {
		return nil, fmt.Errorf("registry %q: not a host[:port]", host)
	}
	insecure := c.o.Insecure(host)
	base := c.o.Transport
	if base == nil {
		var tc *tls.Config
		var err error
		if c.o.TLSConfig != nil {
			if tc, err = c.o.TLSConfig(host); err != nil {
				return nil, fmt.Errorf("TLS for %s: %w", host, err)
			}
		}
		if tc == nil {
			tc = &tls.Config{}
		}
		if insecure {
			tc = tc.Clone()
			tc.InsecureSkipVerify = true
		}
		base = newTransport(tc, c.o.MaxPerRegistry, c.o.IdleTimeout)
	}
	h := &hostState{
		host: host, addr: endpoint(host), insecure: insecure, base: base,
		sem:    make(chan struct{}, c.o.MaxPerRegistry),
		thr:    c.throttleOf(host),
		creds:  map[string]*credential{},
		tokens: map[string]*token{},
	}
	c.regs[host] = h
	return h, nil
}

// BasicLogin is the username and password the keychain holds for a registry
// (for docker.io: the login Docker Hub's API takes too). ok is false when
// it holds none, or only a token.
func (c *Client) BasicLogin(ctx context.Context, host string) (username, password string, ok bool, err error) {
	h, err := c.host(host)
	if err != nil {
		return "", "", false, err
	}
	cr, err := c.credential(ctx, h, "")
	if err != nil {
		return "", "", false, err
	}
	u, p := cr.cfg.Username, cr.cfg.Password
	if u == "" && p == "" && cr.cfg.Auth != "" {
		if b, err := base64.StdEncoding.DecodeString(cr.cfg.Auth); err == nil {
			u, p, _ = strings.Cut(string(b), ":")
		}
	}
	return u, p, u != "" && p != "", nil
}

// credential is what the keychain answered for a repository, resolved
// once, or until its lifetime ends when the authenticator says it has one.
type credential struct {
	cfg authn.AuthConfig
	id  string // a hash of the credential, in memory only: keys tokens
	// expires: when to stop using cfg (zero: never); from an Expiring
	// authenticator.
	expires time.Time
	auth    authn.Authenticator
}

// Expiring is an authenticator whose credentials lapse (a cloud registry's
// token: ECR's last 12 h). The client stops using what it answered at
// ExpiresAt (the authenticator keeps its own margin before the real
// expiry) and resolves the repository again.
type Expiring interface {
	ExpiresAt() time.Time
}

// Invalidator is an authenticator whose keychain caches what it answered:
// after a registry refused those credentials (401), the client calls
// Invalidate and resolves again, once, so a credential that lapsed early
// (revoked, clock skew) is renewed instead of failing the copy.
type Invalidator interface {
	Invalidate()
}

func (c *Client) credential(ctx context.Context, h *hostState, repo string) (*credential, error) {
	h.credMu.Lock()
	cr, ok := h.creds[repo]
	h.credMu.Unlock()
	if ok && !cr.lapsed() {
		return cr, nil
	}
	var res authn.Resource
	reg, err := name.NewRegistry(h.host, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", h.host, err)
	}
	res = reg
	if repo != "" {
		if r, err := name.NewRepository(h.host + "/" + repo); err == nil {
			res = r
		}
	}
	auth, err := authn.Resolve(ctx, c.o.Keychain, res)
	if err != nil {
		return nil, fmt.Errorf("resolving credentials for %s: %w", res.String(), err)
	}
	cr = &credential{id: "anonymous", auth: auth}
	if auth != authn.Anonymous {
		cfg, err := authn.Authorization(ctx, auth)
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", res.String(), err)
		}
		if e, ok := auth.(Expiring); ok {
			cr.expires = e.ExpiresAt()
		}
		cr.cfg = *cfg
		if !cr.anonymous() {
			sum := sha256.Sum256([]byte(cfg.Username + "\x00" + cfg.Password + "\x00" + cfg.Auth + "\x00" + cfg.IdentityToken + "\x00" + cfg.RegistryToken))
			cr.id = hex.EncodeToString(sum[:8])
		}
	}
	h.credMu.Lock()
	if prev, ok := h.creds[repo]; ok && !prev.lapsed() {
		cr = prev
	} else {
		h.creds[repo] = cr
	}
	h.credMu.Unlock()
	return cr, nil
}

// lapsed reports whether an expiring credential is past its lifetime.
func (cr *credential) lapsed() bool {
	return !cr.expires.IsZero() && !time.Now().Before(cr.expires)
}

// renewable reports whether resolving again may give other credentials:
// the keychain said they expire or can be invalidated.
func (cr *credential) renewable() bool {
	if _, ok := cr.auth.(Invalidator); ok {
		return true
	}
	return !cr.expires.IsZero()
}

// forgetCredential drops a credential a registry refused (401), so the
// next request resolves the repository again, and tells its keychain. It
// reports whether that may help (the credential is renewable).
func (c *Client) forgetCredential(h *hostState, repo string, cr *credential) bool {
	if !cr.renewable() {
		return false
	}
	if inv, ok := cr.auth.(Invalidator); ok {
		inv.Invalidate()
	}
	h.credMu.Lock()
	if h.creds[repo] == cr {
		delete(h.creds, repo)
	}
	h.credMu.Unlock()
	return true
}

func (cr *credential) anonymous() bool {
	c := cr.cfg
	return c.Username == "" && c.Password == "" && c.Auth == "" && c.IdentityToken == "" && c.RegistryToken == ""
}

// acquire takes a request slot for the registry, watching ctx.
func (h *hostState) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *hostState) release() { <-h.sem }

// Scopes.
func pullScope(repo string) string { return "repository:" + repo + ":pull" }
func pushScope(repo string) string { return "repository:" + repo + ":pull,push" }

// catalogScope is the scope for listing the catalog.
const catalogScope = "registry:catalog:*"

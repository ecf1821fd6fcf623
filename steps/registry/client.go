// Package registry is regmigrate's one way to talk to an OCI distribution
// registry: go-containerregistry's authentication transports (basic and
// bearer token exchange), TLS per registry, a request limit per registry,
// and retries with exponential backoff and jitter. Every step uses it.
//
// The client speaks the distribution API directly (HEAD/GET/PUT manifests,
// HEAD/GET blobs, monolithic and mounted uploads, catalog and tag listing,
// referrers) so that the copy engine controls exactly which bytes move.
package registry

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Defaults, set here and nowhere else.
const (
	DefaultMaxPerRegistry = 6 // concurrent requests per registry (oc image mirror's default)
	DefaultRetryAttempts  = 5
	DefaultRetryBase      = 200 * time.Millisecond
	DefaultRetryMax       = 20 * time.Second
	DefaultPageSize       = 1000 // catalog and tag pages: ECR refuses n > 1000
	DefaultUserAgent      = "regmigrate"
)

// Options configure a Client. The zero value works for anonymous HTTPS.
type Options struct {
	// Keychain resolves credentials per repository; nil means anonymous.
	Keychain authn.Keychain
	// TLSConfig returns the TLS configuration for a registry host; nil means
	// system roots.
	TLSConfig func(host string) (*tls.Config, error)
	// Insecure reports whether a registry may be reached over plain HTTP or
	// with unverified TLS.
	Insecure func(host string) bool
	// MaxPerRegistry bounds concurrent requests to one registry.
	MaxPerRegistry int
	// Retry policy for transient failures.
	RetryAttempts int
	RetryBase     time.Duration
	RetryMax      time.Duration
	UserAgent     string
	// Logger receives retries and warnings; nil discards.
	Logger *slog.Logger
	// PageSize is n for catalog and tag listing (at most 1000: ECR refuses more).
	PageSize int
	// Transport overrides the base transport (tests); TLSConfig is then ignored.
	Transport http.RoundTripper
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
	if o.PageSize <= 0 || o.PageSize > DefaultPageSize {
		o.PageSize = DefaultPageSize
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
	o    Options
	mu   sync.Mutex
	regs map[string]*hostState
}

// New returns a Client.
func New(o Options) *Client {
	o.setDefaults()
	return &Client{o: o, regs: map[string]*hostState{}}
}

// hostState is what the client keeps per registry host.
type hostState struct {
	host   string
	reg    name.Registry
	base   http.RoundTripper
	sem    chan struct{}
	once   sync.Once
	scheme string
	ch     *transport.Challenge
	chErr  error

	mu  sync.Mutex
	rts map[string]http.RoundTripper // by scope key

	refMu     sync.Mutex
	referrers int // 0 unknown, 1 supported, -1 not supported
}

func (c *Client) host(host string) (*hostState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.regs[host]; ok {
		return h, nil
	}
	insecure := c.o.Insecure(host)
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", host, err)
	}
	base := c.o.Transport
	if base == nil {
		var tc *tls.Config
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
		base = newTransport(tc, c.o.MaxPerRegistry)
	}
	base = transport.NewUserAgent(base, c.o.UserAgent)
	h := &hostState{
		host: host, reg: reg, base: base,
		sem: make(chan struct{}, c.o.MaxPerRegistry),
		rts: map[string]http.RoundTripper{},
	}
	c.regs[host] = h
	return h, nil
}

func newTransport(tc *tls.Config, perHost int) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   perHost * 4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
		DisableCompression:    true,
	}
}

// ping finds the scheme and the auth challenge once per registry.
func (h *hostState) ping(ctx context.Context) error {
	h.once.Do(func() {
		ch, err := transport.Ping(ctx, h.reg, h.base)
		if err != nil {
			h.chErr = fmt.Errorf("reaching registry %s: %w", h.host, err)
			return
		}
		h.ch = ch
		h.scheme = "https"
		if ch.Insecure {
			h.scheme = "http"
		}
	})
	return h.chErr
}

// roundTripper returns an authenticated transport for the given scopes.
// The registry is pinged once; anonymous and basic-auth registries share
// one transport per credential, bearer registries get one per scope set
// (the token carries the scopes).
func (c *Client) roundTripper(ctx context.Context, h *hostState, repo string, scopes ...string) (http.RoundTripper, error) {
	if err := h.ping(ctx); err != nil {
		return nil, err
	}
	var res authn.Resource = h.reg
	if repo != "" {
		if r, err := name.NewRepository(h.host+"/"+repo, nameOpts(h)...); err == nil {
			res = r
		}
	}
	auth, err := authn.Resolve(ctx, c.o.Keychain, res)
	if err != nil {
		return nil, fmt.Errorf("resolving credentials for %s: %w", res.String(), err)
	}
	who, err := identity(ctx, auth)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", res.String(), err)
	}
	bearer := strings.EqualFold(h.ch.Scheme, "bearer")
	key := who
	if bearer {
		sort.Strings(scopes)
		key += " " + strings.Join(scopes, " ")
	}
	h.mu.Lock()
	rt, ok := h.rts[key]
	h.mu.Unlock()
	if ok {
		return rt, nil
	}
	if bearer {
		rt, err = transport.NewWithContext(ctx, h.reg, auth, h.base, scopes)
	} else {
		rt, err = transport.FromToken(h.reg, auth, h.base, h.ch, &transport.Token{})
	}
	if err != nil {
		return nil, fmt.Errorf("authenticating to %s: %w", h.host, err)
	}
	h.mu.Lock()
	if prev, ok := h.rts[key]; ok {
		rt = prev
	} else {
		h.rts[key] = rt
	}
	h.mu.Unlock()
	return rt, nil
}

// identity keys transports by credential without keeping the secret: a
// hash of the resolved auth configuration, in memory only.
func identity(ctx context.Context, auth authn.Authenticator) (string, error) {
	if auth == authn.Anonymous {
		return "anonymous", nil
	}
	cfg, err := authn.Authorization(ctx, auth)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(cfg.Username + "\x00" + cfg.Password + "\x00" + cfg.Auth + "\x00" + cfg.IdentityToken + "\x00" + cfg.RegistryToken))
	return hex.EncodeToString(sum[:8]), nil
}

func nameOpts(h *hostState) []name.Option {
	if h.reg.Scheme() == "http" {
		return []name.Option{name.Insecure}
	}
	return nil
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

// CatalogScope is the scope for listing the catalog.
const catalogScope = "registry:catalog:*"

package cloudauth

import (
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// MaxMargin bounds how long before its expiry a credential is renewed.
const MaxMargin = 5 * time.Minute

// margin is how long before its expiry a credential of that lifetime is
// renewed: a quarter of it, at most MaxMargin (ECR's 12 h tokens: 5 min
// before; a 4 s token of a test: 1 s before).
func margin(lifetime time.Duration) time.Duration { return min(lifetime/4, MaxMargin) }

// cached is one credential with its lifetime, shared by every repository
// of an account (ECR), a registry (ACR) or the process (Google).
type cached struct {
	mu      sync.Mutex
	cfg     authn.AuthConfig
	renewAt time.Time // expiry minus the margin; zero: none held
}

// get returns the credential while it is fresh, else fetches a new one.
// Concurrent callers share one fetch.
func (c *cached) get(now func() time.Time, fetch func() (authn.AuthConfig, time.Time, error)) (*expiring, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.renewAt.IsZero() && now().Before(c.renewAt) {
		return &expiring{cfg: c.cfg, renewAt: c.renewAt, drop: c.drop}, nil
	}
	cfg, expires, err := fetch()
	if err != nil {
		return nil, err
	}
	t := now()
	c.cfg, c.renewAt = cfg, expires.Add(-margin(expires.Sub(t)))
	if !c.renewAt.After(t) { // already (nearly) expired: use it once
		c.renewAt = t
	}
	return &expiring{cfg: c.cfg, renewAt: c.renewAt, drop: c.drop}, nil
}

// drop forgets the credential if it is still the one given out.
func (c *cached) drop(renewAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.renewAt.Equal(renewAt) {
		c.renewAt = time.Time{}
	}
}

// expiring is an authenticator with a lifetime (registry.Expiring,
// registry.Invalidator).
type expiring struct {
	cfg     authn.AuthConfig
	renewAt time.Time
	drop    func(time.Time)
}

// Authorization implements authn.Authenticator.
func (e *expiring) Authorization() (*authn.AuthConfig, error) {
	cfg := e.cfg
	return &cfg, nil
}

// ExpiresAt is when to stop using the credential (a margin before its
// real expiry).
func (e *expiring) ExpiresAt() time.Time { return e.renewAt }

// Invalidate forgets the credential: a registry refused it.
func (e *expiring) Invalidate() { e.drop(e.renewAt) }

// String never shows the credential.
func (e *expiring) String() string { return "cloud credentials (redacted)" }

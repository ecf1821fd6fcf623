package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
)

// LoginError is why Login failed: the registry could not be reached (its
// TLS included), or it refused the credentials, or their absence.
type LoginError struct {
	Host string
	// Denied: the registry or its token server refused (401, 403).
	Denied bool
	// Anonymous: no credentials are configured for the registry.
	Anonymous bool
	// Account is the user name of the credentials, when they have one
	// (never the secret).
	Account string
	Err     error
}

func (e *LoginError) Error() string {
	switch {
	case e.Denied && e.Anonymous:
		return fmt.Sprintf("registry %s requires credentials and none are configured for it (%v)", e.Host, e.Err)
	case e.Denied && e.Account != "":
		return fmt.Sprintf("registry %s refused the credentials of %s (%v)", e.Host, e.Account, e.Err)
	case e.Denied:
		return fmt.Sprintf("registry %s refused the configured credentials (%v)", e.Host, e.Err)
	}
	what := "cannot be reached"
	var rec tls.RecordHeaderError
	switch {
	case IsRetryable(e.Err):
	case errors.As(e.Err, &rec):
		what = "does not speak TLS"
	case isTLSError(e.Err):
		what = "failed TLS verification"
	}
	var pe *pingError
	if errors.As(e.Err, &pe) {
		return fmt.Sprintf("registry %s %s: %s%s", e.Host, what, pe.attemptsText(), pe.hint)
	}
	return fmt.Sprintf("registry %s %s: %v", e.Host, what, e.Err)
}

func (e *LoginError) Unwrap() error { return e.Err }

// Login reaches a registry once and checks the credentials configured for
// repo (a repository or namespace whose credentials apply; "" for the
// registry's) as `docker login` does: GET /v2/ with them (on a bearer
// registry, with a token for no scope) must succeed. Without credentials,
// a registry that answers /v2/ only to authenticated clients is a
// LoginError too (Denied, Anonymous). Transient failures are retried as
// any request; the error is a *LoginError, retryable (IsRetryable) when
// the registry was unreachable for a transient reason.
func (c *Client) Login(ctx context.Context, host, repo string) error {
	if s := c.StoreOf(host); s != nil {
		if _, err := s.Catalog(ctx); err != nil {
			return fmt.Errorf("reading %s: %w", s.Describe(), err)
		}
		return nil
	}
	h, err := c.host(host)
	if err != nil {
		return &LoginError{Host: host, Err: err}
	}
	if repo != "" {
		if err := checkRepo(repo); err != nil {
			return err
		}
	}
	cr, err := c.credential(ctx, h, repo)
	if err != nil {
		return &LoginError{Host: host, Err: err}
	}
	err = c.retry(ctx, "login", func() error {
		if err := c.ping(ctx, h); err != nil {
			return err
		}
		if h.challenge().scheme == "" {
			return nil // /v2/ is open: nothing to authenticate
		}
		resp, err := c.do(ctx, call{host: host, repo: repo, method: http.MethodGet, path: "/v2/"})
		if err != nil {
			return err
		}
		defer drain(resp)
		return checkResponse(resp, http.StatusOK)
	})
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	return &LoginError{Host: host, Denied: errors.Is(err, ErrDenied), Anonymous: cr.anonymous(), Account: cr.cfg.Username, Err: err}
}

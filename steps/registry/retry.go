package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// StatusError is a registry's answer that was not what the call wanted.
type StatusError struct {
	Method     string
	URL        string // without query (upload URLs carry state, never secrets, but stay short)
	Status     int
	Code       string // distribution error code, e.g. MANIFEST_UNKNOWN
	Message    string
	RetryAfter time.Duration
	// Host that answered (for a 429's pause of its requests).
	Host string
	// quotaWindow: the pull-quota window a 429 states (quota.go).
	quotaWindow time.Duration
	// tokenExpired: a bearer token refused mid-upload; a new one is
	// fetched on the next attempt.
	tokenExpired bool
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Sentinel errors callers branch on.
var (
	// ErrNotFound: the manifest, blob or repository does not exist.
	ErrNotFound = errors.New("not found")
	// ErrDenied: the credentials do not allow the operation.
	ErrDenied = errors.New("access denied")
	// ErrUnsupported: the registry does not implement the API (e.g. referrers).
	ErrUnsupported = errors.New("not supported by the registry")
)

// Is maps HTTP statuses to the sentinels.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrDenied:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	}
	return false
}

// IsRetryable reports whether err is transient: throttling (429), server
// errors (500, 502, 503, 504, 408), connection refusals and resets, stalls,
// timeouts and truncated bodies. A retry of the whole image (a rerun) may
// succeed where the client's own retries ran out. Final: content that does
// not match its digest, invalid names and digests, oversized answers, TLS
// verification failures, refused redirects, other 4xx (401, 403, 404...), a
// host name that does not exist, and a cancelled context.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, ErrInvalidDigest) || errors.Is(err, ErrInvalidName) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrIncompleteBlob) {
		return false // the registry would send the same again
	}
	// A registry marked insecure is tried over HTTPS, then HTTP: the
	// failure is transient when either attempt's is (a plain-HTTP registry
	// that is down answers the HTTPS attempt with a TLS error).
	var pe *pingError
	if errors.As(err, &pe) && len(pe.attempts) > 1 {
		for _, a := range pe.attempts {
			if IsRetryable(a) {
				return true
			}
		}
		return false
	}
	var stall *StallError
	if errors.As(err, &stall) {
		return true
	}
	var re *RedirectError
	if errors.As(err, &re) {
		return false // configuration: a retry meets the same
	}
	// The registry's own answer decides, before any reading of the text
	// (an error body may well mention TLS).
	var se *StatusError
	if errors.As(err, &se) {
		if se.tokenExpired {
			return true
		}
		switch se.Status {
		case http.StatusRequestTimeout, http.StatusTooManyRequests,
			http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	if isTLSError(err) {
		return false // an untrusted or invalid certificate stays so until someone acts
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return false // no such host: a typo, not an outage
	}
	var te *truncatedError
	if errors.As(err, &te) {
		return true
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// truncatedError: a body shorter than announced, or with the wrong digest.
type truncatedError struct{ msg string }

func (e *truncatedError) Error() string { return e.msg }

// retry runs op until it succeeds, fails for good, or attempts run out.
// The backoff is exponential with full jitter; a Retry-After from the
// registry is honoured (capped by RetryMax).
func (c *Client) retry(ctx context.Context, what string, op func() error) error {
	var err error
	pauses := 0
	for attempt := 1; ; attempt++ {
		err = op()
		var se *StatusError
		// A 429 that says how long (Retry-After, or a pull-quota window):
		// the registry's requests pause that long, and the attempt does
		// not count (quota.go).
		if errors.As(err, &se) && pauses < DefaultMaxQuotaPauses && ctx.Err() == nil {
			if host, d, why := c.quotaPause(se); d > 0 {
				pauses++
				attempt--
				if perr := c.pause(ctx, host, c.pauseHost(host, d, why), why); perr != nil {
					return err
				}
				continue
			}
		}
		if err == nil || !IsRetryable(err) || attempt >= c.o.RetryAttempts || ctx.Err() != nil {
			return err
		}
		wait := c.backoff(attempt)
		if errors.As(err, &se) && se.RetryAfter > 0 {
			wait = min(se.RetryAfter, c.o.RetryMax)
		}
		c.o.Logger.Debug("retrying", "op", what, "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.o.RetryBase << (attempt - 1)
	if d > c.o.RetryMax || d <= 0 {
		d = c.o.RetryMax
	}
	// full jitter in [d/2, d)
	return d/2 + rand.N(d/2+1)
}

// checkResponse turns a non-wanted status into a StatusError, draining a
// small body for the distribution error code.
func checkResponse(resp *http.Response, want ...int) error {
	for _, w := range want {
		if resp.StatusCode == w {
			return nil
		}
	}
	se := &StatusError{Method: resp.Request.Method, URL: shortURL(resp.Request), Status: resp.StatusCode, Host: resp.Request.URL.Host}
	if resp.StatusCode == http.StatusTooManyRequests {
		for _, k := range []string{"Ratelimit-Remaining", "Ratelimit-Limit"} {
			if _, w, ok := parseRateLimit(resp.Header.Get(k)); ok && w > 0 {
				se.quotaWindow = w
				break
			}
		}
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil {
			se.RetryAfter = time.Duration(s) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			se.RetryAfter = time.Until(t)
		}
	}
	if resp.Request.Method != http.MethodHead {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
		var env struct {
			Errors []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"errors"`
		}
		if json.Unmarshal(body, &env) == nil && len(env.Errors) > 0 {
			se.Code = env.Errors[0].Code
			se.Message = env.Errors[0].Message
		}
	}
	return se
}

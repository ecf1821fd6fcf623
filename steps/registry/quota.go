package registry

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A registry's pull quota, as Docker Hub states it on manifest responses
// (https://docs.docker.com/docker-hub/usage/pulls/): `ratelimit-limit:
// 100;w=21600` (pulls per window of w seconds) and `ratelimit-remaining:
// 76;w=21600`. A HEAD on a manifest reports them without counting; each
// manifest GET counts. The client reads them from every response, spends
// what remains, then pauses the registry's manifest GETs until the window
// reopens instead of drawing 429s; a 429 pauses them until its Retry-After
// (else the window) has passed. A pause is reported through Options.OnWait
// (the progress says why the run waits) and ends with the context: an
// interrupted run resumes with the same --out.

// Quota is a registry's pull quota as it last reported it.
type Quota struct {
	Limit     int           `json:"limit"`
	Remaining int           `json:"remaining"`
	Window    time.Duration `json:"window"`
	Seen      time.Time     `json:"seen"`
}

// String: "76 of 100 pulls left per 6h0m0s".
func (q Quota) String() string {
	return fmt.Sprintf("%d of %d pulls left per %s", q.Remaining, q.Limit, q.Window)
}

// Wait is a pause of a registry's requests, or its end (Done).
type Wait struct {
	Host   string
	Until  time.Time
	Reason string
	Done   bool
}

// DefaultMaxQuotaPauses bounds how often one request waits for a quota
// window after a 429 before it fails (retryable: a rerun resumes).
const DefaultMaxQuotaPauses = 4

// maxQuotaWait bounds one pause (Docker Hub's window is 6 h).
const maxQuotaWait = 24 * time.Hour

type quotaState struct {
	mu    sync.Mutex
	known bool
	q     Quota
	// inflight: manifest GETs sent and not yet answered; what is left to
	// spend is q.Remaining (the registry's last word) less these.
	inflight int
	until    time.Time // requests wait until then
	why      string
}

// parseRateLimit reads "100;w=21600" (the count, and the window when
// given).
func parseRateLimit(v string) (int, time.Duration, bool) {
	parts := strings.Split(v, ";")
	n, err := strconv.Atoi(strings.TrimSpace(parts[0]))
	if err != nil || n < 0 {
		return 0, 0, false
	}
	var w time.Duration
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(k, "w") {
			if s, err := strconv.Atoi(val); err == nil && s > 0 {
				w = time.Duration(s) * time.Second
			}
		}
	}
	return n, w, true
}

// observeQuota records the quota a registry's response states.
func (h *hostState) observeQuota(resp *http.Response) {
	lv, rv := resp.Header.Get("Ratelimit-Limit"), resp.Header.Get("Ratelimit-Remaining")
	if lv == "" || rv == "" || resp.Request == nil || resp.Request.URL.Host != h.addr {
		return
	}
	limit, w1, ok1 := parseRateLimit(lv)
	rem, w2, ok2 := parseRateLimit(rv)
	if !ok1 || !ok2 {
		return
	}
	w := max(w1, w2)
	now := time.Now()
	qs := &h.quota
	qs.mu.Lock()
	defer qs.mu.Unlock()
	// Answers arrive out of order: within a window, what is left only
	// goes down (a rise is the window reopening, believed once a window
	// has passed since the last word).
	if qs.known && rem > qs.q.Remaining && limit == qs.q.Limit && now.Sub(qs.q.Seen) < qs.q.Window {
		return
	}
	qs.known = true
	qs.q = Quota{Limit: limit, Remaining: rem, Window: w, Seen: now}
}

// Quota returns the pull quota host last reported, if it has.
func (c *Client) Quota(host string) (Quota, bool) {
	c.mu.Lock()
	h, ok := c.regs[host]
	c.mu.Unlock()
	if !ok {
		return Quota{}, false
	}
	h.quota.mu.Lock()
	defer h.quota.mu.Unlock()
	return h.quota.q, h.quota.known
}

// CheckQuota asks host for its pull quota with a HEAD on a manifest (which
// Docker Hub does not count). ok is false when the registry states none.
func (c *Client) CheckQuota(ctx context.Context, host, repo, ref string) (Quota, bool, error) {
	if c.StoreOf(host) != nil {
		return Quota{}, false, nil
	}
	if _, err := c.HeadManifest(ctx, host, repo, ref); err != nil {
		if q, ok := c.Quota(host); ok {
			return q, true, nil
		}
		return Quota{}, false, err
	}
	q, ok := c.Quota(host)
	return q, ok, nil
}

// spendPull is called before each manifest GET: it waits while host's
// requests are paused, and pauses them when the quota the registry stated
// is spent, until its window reopens. release is called once the GET is
// answered (or failed).
func (c *Client) spendPull(ctx context.Context, host string) (release func(), err error) {
	h, err := c.host(host)
	if err != nil {
		return nil, err
	}
	qs := &h.quota
	counted := func() {
		qs.mu.Lock()
		qs.inflight--
		qs.mu.Unlock()
	}
	for {
		qs.mu.Lock()
		now := time.Now()
		if now.Before(qs.until) {
			until, why := qs.until, qs.why
			qs.mu.Unlock()
			if err := c.pause(ctx, host, until, why); err != nil {
				return nil, err
			}
			continue
		}
		if !qs.known || qs.q.Limit <= 0 || qs.q.Window <= 0 {
			qs.inflight++
			qs.mu.Unlock()
			return counted, nil
		}
		if qs.q.Remaining-qs.inflight > 0 {
			qs.inflight++
			qs.mu.Unlock()
			return counted, nil
		}
		reopen := qs.q.Seen.Add(qs.q.Window)
		if !now.Before(reopen) {
			// A window has passed since the registry last said it was
			// spent: assume it is whole again until it says otherwise.
			qs.q.Remaining, qs.q.Seen = qs.q.Limit, now
			qs.inflight++
			qs.mu.Unlock()
			return counted, nil
		}
		qs.until = reopen
		qs.why = fmt.Sprintf("the pull quota of %s is spent (%d per %s): waiting for its window to reopen", host, qs.q.Limit, qs.q.Window)
		qs.mu.Unlock()
	}
}

// quotaPause is how long a 429 asks to wait: its Retry-After, else the
// quota window it states (else 0: an ordinary retry).
func (c *Client) quotaPause(se *StatusError) (string, time.Duration, string) {
	if se.Status != http.StatusTooManyRequests || se.Host == "" {
		return "", 0, ""
	}
	switch {
	case se.RetryAfter > 0:
		return se.Host, min(se.RetryAfter, maxQuotaWait), fmt.Sprintf("%s answered 429 Too Many Requests: waiting %s as its Retry-After asks", se.Host, se.RetryAfter.Round(time.Second))
	case se.quotaWindow > 0:
		return se.Host, min(se.quotaWindow, maxQuotaWait), fmt.Sprintf("%s answered 429 Too Many Requests, its pull quota spent: waiting %s for its window to reopen", se.Host, se.quotaWindow.Round(time.Second))
	}
	return "", 0, ""
}

// pauseHost makes every manifest GET of host wait until d from now.
func (c *Client) pauseHost(host string, d time.Duration, why string) time.Time {
	until := time.Now().Add(d)
	h, err := c.host(host)
	if err != nil {
		return until
	}
	h.quota.mu.Lock()
	if until.After(h.quota.until) {
		h.quota.until, h.quota.why = until, why
	}
	until = h.quota.until
	h.quota.mu.Unlock()
	return until
}

// pause waits until until, telling OnWait and the log why; ctx ends it.
func (c *Client) pause(ctx context.Context, host string, until time.Time, why string) error {
	d := time.Until(until)
	if d <= 0 {
		return nil
	}
	c.o.Logger.Info("waiting", "registry", host, "until", until.Format(time.RFC3339), "reason", why)
	if c.o.OnWait != nil {
		c.o.OnWait(Wait{Host: host, Until: until, Reason: why})
		defer c.o.OnWait(Wait{Host: host, Until: until, Reason: why, Done: true})
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopped while %s: %w", why, context.Cause(ctx))
	}
}

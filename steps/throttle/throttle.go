// Package throttle limits what regmigrate asks of a registry: requests per
// second (--rate-limit N/s) and bytes per second in both directions
// (--bandwidth RATE), per registry host. One Limiter per host is shared by
// every request a client makes to it, so the limit holds across all the
// shards of a local run; an Argo pod gets its share (Limits.Divide).
//
// Both are token buckets that may go into debt: a request or a chunk of
// bytes takes its tokens at once and waits until the bucket has paid them
// back, so a large read is never refused, and the long-run rate is exact.
// The bucket holds at most a tenth of a second of tokens (at least one
// request, at least 64 KiB), so a pause is never followed by a burst of
// more than that.
package throttle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of one registry; zero means no limit.
type Limits struct {
	// Requests per second (every HTTP request to the registry: HEAD, GET,
	// PUT, POST, PATCH, redirects followed included).
	Requests float64 `json:"requests,omitempty"`
	// Bytes per second, request and response bodies together.
	Bytes float64 `json:"bytes,omitempty"`
}

// IsZero reports whether there is no limit at all.
func (l Limits) IsZero() bool { return l.Requests <= 0 && l.Bytes <= 0 }

// Divide returns each of n equal parts' share (an Argo pod's, when n
// shards run at once).
func (l Limits) Divide(n int) Limits {
	if n <= 1 {
		return l
	}
	return Limits{Requests: l.Requests / float64(n), Bytes: l.Bytes / float64(n)}
}

// String is the limits as the flags take them ("20/s, 50MiB/s").
func (l Limits) String() string {
	var parts []string
	if l.Requests > 0 {
		parts = append(parts, FormatRequests(l.Requests))
	}
	if l.Bytes > 0 {
		parts = append(parts, FormatBandwidth(l.Bytes))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// RequestsHelp and BandwidthHelp say what ParseRequests and ParseBandwidth
// accept (for flag help and errors).
const (
	RequestsHelp  = "N/s (requests per second; also N/m, N/h; N may have a fraction: 0.5/s)"
	BandwidthHelp = "a rate in bytes (B, KB, MB, GB = 1000s; KiB, MiB, GiB = 1024s) or bits (kbit, Mbit, Gbit = 1000s of bits) per second, e.g. 50MiB/s or 100Mbit/s"
)

// ParseRequests reads "20/s", "1200/m", "3600/h" (a bare number is per
// second).
func ParseRequests(s string) (float64, error) {
	t := strings.TrimSpace(s)
	num, per, _ := strings.Cut(t, "/")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("rate %q: want %s", s, RequestsHelp)
	}
	d, ok := perUnit(per)
	if !ok {
		return 0, fmt.Errorf("rate %q: unknown unit %q: want %s", s, per, RequestsHelp)
	}
	return v / d, nil
}

// ParseBandwidth reads a byte rate: "50MiB/s", "100Mbit/s", "2GB/s",
// "500KiB/s" (a bare unit, "50MiB", is per second).
func ParseBandwidth(s string) (float64, error) {
	t := strings.TrimSpace(s)
	amount, per, _ := strings.Cut(t, "/")
	i := 0
	for i < len(amount) && (amount[i] >= '0' && amount[i] <= '9' || amount[i] == '.') {
		i++
	}
	v, err := strconv.ParseFloat(amount[:i], 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("bandwidth %q: want %s", s, BandwidthHelp)
	}
	unit := strings.TrimSpace(amount[i:])
	mult, ok := byteUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("bandwidth %q: unknown unit %q: want %s", s, unit, BandwidthHelp)
	}
	if unit == "" && per == "" {
		return 0, fmt.Errorf("bandwidth %q: say the unit: %s", s, BandwidthHelp)
	}
	d, ok := perUnit(per)
	if !ok {
		return 0, fmt.Errorf("bandwidth %q: unknown unit %q: want %s", s, per, BandwidthHelp)
	}
	bps := v * mult / d
	if bps < 1024 {
		return 0, fmt.Errorf("bandwidth %q: %.0f bytes/s is too little to move an image; give at least 1KiB/s", s, bps)
	}
	return bps, nil
}

var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
	"kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8,
	"kbps": 1e3 / 8, "mbps": 1e6 / 8, "gbps": 1e9 / 8,
}

func perUnit(p string) (float64, bool) {
	switch strings.ToLower(strings.TrimSpace(p)) {
	case "", "s", "sec", "second":
		return 1, true
	case "m", "min", "minute":
		return 60, true
	case "h", "hour":
		return 3600, true
	}
	return 0, false
}

// FormatRequests writes a request rate as ParseRequests reads it.
func FormatRequests(r float64) string {
	return strconv.FormatFloat(r, 'f', -1, 64) + "/s"
}

// FormatBandwidth writes a byte rate as ParseBandwidth reads it, in the
// largest binary unit that keeps it readable ("12.5MiB/s").
func FormatBandwidth(b float64) string {
	for _, u := range []struct {
		name string
		size float64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b >= u.size {
			return strconv.FormatFloat(math.Round(b/u.size*1000)/1000, 'f', -1, 64) + u.name + "/s"
		}
	}
	return strconv.FormatFloat(math.Round(b), 'f', -1, 64) + "B/s"
}

// Limiter enforces one registry's Limits. A nil *Limiter limits nothing
// and costs a nil check.
type Limiter struct {
	req, bw *bucket
	// what has been paid for, for reports and tests
	requests, bytes atomic.Int64
}

// Counts returns the requests and bytes the limiter has paced so far.
func (l *Limiter) Counts() (requests, bytes int64) {
	if l == nil {
		return 0, 0
	}
	return l.requests.Load(), l.bytes.Load()
}

// New returns the limiter of l, or nil when l limits nothing.
func New(l Limits) *Limiter {
	if l.IsZero() {
		return nil
	}
	lim := &Limiter{}
	if l.Requests > 0 {
		lim.req = newBucket(l.Requests, max(1, l.Requests/10))
	}
	if l.Bytes > 0 {
		lim.bw = newBucket(l.Bytes, max(64<<10, l.Bytes/10))
	}
	return lim
}

// Request waits for the right to send one request.
func (l *Limiter) Request(ctx context.Context) error {
	if l == nil || l.req == nil {
		return nil
	}
	l.requests.Add(1)
	return l.req.take(ctx, 1)
}

// Bytes waits until n more bytes may have moved.
func (l *Limiter) Bytes(ctx context.Context, n int) error {
	if l == nil || l.bw == nil || n <= 0 {
		return nil
	}
	l.bytes.Add(int64(n))
	return l.bw.take(ctx, float64(n))
}

// LimitsBytes reports whether l has a bandwidth limit.
func (l *Limiter) LimitsBytes() bool { return l != nil && l.bw != nil }

// Reader paces r: every byte read is paid for before Read returns it is
// handed on. ctx ends a wait.
func (l *Limiter) Reader(ctx context.Context, r io.Reader) io.Reader {
	if !l.LimitsBytes() {
		return r
	}
	return &reader{r: r, l: l, ctx: ctx}
}

type reader struct {
	r   io.Reader
	l   *Limiter
	ctx context.Context
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		if werr := r.l.Bytes(r.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

// bucket is a token bucket that may go into debt.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate, burst float64) *bucket {
	// It starts empty: the first second moves at the rate, not at the
	// rate plus a burst.
	return &bucket{rate: rate, burst: burst, last: time.Now()}
}

// ErrStopped: a wait ended because the context did.
var ErrStopped = errors.New("throttle: stopped while waiting")

func (b *bucket) take(ctx context.Context, n float64) error {
	b.mu.Lock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= n
	debt := -b.tokens
	b.mu.Unlock()
	if debt <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(debt / b.rate * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrStopped, context.Cause(ctx))
	}
}

// Set holds one Limiter per registry host, made on first use, so that
// every request to a host shares its limits.
type Set struct {
	limits  map[string]Limits
	all     Limits // every host without its own entry
	mu      sync.Mutex
	byHost  map[string]*Limiter
	created map[string]bool
}

// NewSet returns the limiters of each host's limits; all applies to every
// other host. Nil when nothing is limited.
func NewSet(perHost map[string]Limits, all Limits) *Set {
	if all.IsZero() {
		empty := true
		for _, l := range perHost {
			if !l.IsZero() {
				empty = false
			}
		}
		if empty {
			return nil
		}
	}
	return &Set{limits: perHost, all: all, byHost: map[string]*Limiter{}, created: map[string]bool{}}
}

// For returns host's limiter (nil when the host is not limited).
func (s *Set) For(host string) *Limiter {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.created[host] {
		return s.byHost[host]
	}
	l, ok := s.limits[host]
	if !ok {
		l = s.all
	}
	lim := New(l)
	s.byHost[host], s.created[host] = lim, true
	return lim
}

// ParseHostValue reads a flag value "[HOST=]RATE": the registry it applies
// to ("" for every one) and the rate, with parse (ParseRequests or
// ParseBandwidth).
func ParseHostValue(v string, parse func(string) (float64, error)) (string, float64, error) {
	host, rate, ok := strings.Cut(v, "=")
	if !ok {
		host, rate = "", v
	}
	r, err := parse(rate)
	if err != nil {
		return "", 0, err
	}
	if ok && (host == "" || strings.ContainsAny(host, "/ ")) {
		return "", 0, fmt.Errorf("%q: want HOST[:PORT]=RATE, or RATE for every registry", v)
	}
	return host, r, nil
}

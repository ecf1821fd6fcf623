package registry_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/steps/throttle"
)

// countingRegistry is go-containerregistry's in-memory registry that
// counts the requests it answers and the body bytes it reads and writes.
type countingRegistry struct {
	host              string
	requests, in, out atomic.Int64
	counting          atomic.Bool
	firstAt, lastAt   atomic.Int64 // unix nanos of the first request and the last response's end
	inflight          sync.WaitGroup
}

func startCounting(t testing.TB) *countingRegistry {
	t.Helper()
	c := &countingRegistry{}
	h := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.counting.Load() {
			h.ServeHTTP(w, r)
			return
		}
		c.inflight.Add(1)
		defer c.inflight.Done()
		c.requests.Add(1)
		c.firstAt.CompareAndSwap(0, time.Now().UnixNano())
		r.Body = &countReader{r: r.Body, n: &c.in}
		h.ServeHTTP(&countWriter{ResponseWriter: w, n: &c.out}, r)
		c.lastAt.Store(time.Now().UnixNano())
	}))
	t.Cleanup(s.Close)
	c.host = strings.TrimPrefix(s.URL, "http://")
	return c
}

func (c *countingRegistry) start() {
	c.requests.Store(0)
	c.in.Store(0)
	c.out.Store(0)
	c.firstAt.Store(0)
	c.lastAt.Store(0)
	c.counting.Store(true)
}

type countReader struct {
	r io.ReadCloser
	n *atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
func (c *countReader) Close() error { return c.r.Close() }

type countWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// copyImage copies one image's manifest, config and layers with the client.
func copyImage(t testing.TB, c *registry.Client, src, dst, repo, tag string) int64 {
	t.Helper()
	ctx := context.Background()
	body, mt, err := c.GetManifest(ctx, src, repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	m, err := registry.ParseManifest(body, mt)
	if err != nil {
		t.Fatal(err)
	}
	var moved int64
	for _, d := range append([]registry.Descriptor{*m.Config}, m.Layers...) {
		n, err := c.CopyBlob(ctx, src, repo, dst, repo, d)
		if err != nil {
			t.Fatal(err)
		}
		moved += n
	}
	if err := c.PutManifest(ctx, dst, repo, tag, mt, body); err != nil {
		t.Fatal(err)
	}
	return moved
}

// Every request to a throttled registry, and every body byte both ways,
// goes through its limiter: the limiter's counts are what the registries
// themselves saw (the source's downloads, the target's uploads).
func TestThrottleCountsEveryRequestAndEveryByteBothWays(t *testing.T) {
	t.Parallel()
	src, dst := startCounting(t), startCounting(t)
	img, err := random.Image(300<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(src.host + "/ns/app:v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	// Rates so high nothing waits: this test counts, it does not time.
	set := throttle.NewSet(nil, throttle.Limits{Requests: 1e9, Bytes: 1e15})
	c := registry.New(registry.Options{Insecure: anyHost, Throttle: set.For})
	src.start()
	dst.start()
	moved := copyImage(t, c, src.host, dst.host, "ns/app", "v1")
	// A handler's last Write may return after the client has read its
	// bytes: wait for the handlers before comparing counts.
	src.inflight.Wait()
	dst.inflight.Wait()
	if moved < 900<<10 {
		t.Fatalf("moved %d bytes, want the three 300 KiB layers", moved)
	}
	for _, r := range []struct {
		name string
		reg  *countingRegistry
	}{{"source", src}, {"target", dst}} {
		reqs, bytes := set.For(r.reg.host).Counts()
		// +1: the ping of a registry marked insecure tries HTTPS first
		// (paced too; the plain-HTTP server never sees it as a request).
		if got := r.reg.requests.Load(); reqs != got+1 {
			t.Errorf("%s: the limiter paced %d requests, the registry answered %d (and one HTTPS attempt)", r.name, reqs, got)
		}
		if got := r.reg.in.Load() + r.reg.out.Load(); bytes != got {
			t.Errorf("%s: the limiter paced %d bytes, the registry read %d and wrote %d", r.name, bytes, r.reg.in.Load(), r.reg.out.Load())
		}
	}
	if _, b := set.For(src.host).Counts(); b < moved {
		t.Errorf("source: %d bytes paced, %d downloaded", b, moved)
	}
	if _, b := set.For(dst.host).Counts(); b < moved {
		t.Errorf("target: %d bytes paced, %d uploaded", b, moved)
	}
}

// BenchmarkThrottle measures how closely the throttles hold their rate
// against a real (in-process) registry: rate/set is the achieved rate
// over the set one, measured by the registry (first request to last
// response). The issue asks for it within 10% (0.90–1.10).
//
//	go test -run '^$' -bench Throttle -benchtime 3x ./steps/registry
func BenchmarkThrottle(b *testing.B) {
	b.Run("requests-50/s-8-at-once", func(b *testing.B) {
		reg := startCounting(b)
		img, _ := random.Image(1024, 1)
		ref, _ := name.ParseReference(reg.host + "/ns/app:v1")
		if err := remote.Write(ref, img); err != nil {
			b.Fatal(err)
		}
		const rate, n = 50.0, 100
		var ratios []float64
		for b.Loop() {
			set := throttle.NewSet(nil, throttle.Limits{Requests: rate})
			c := registry.New(registry.Options{Insecure: anyHost, Throttle: set.For})
			reg.start()
			var wg sync.WaitGroup
			sem := make(chan struct{}, 8)
			for range n {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					if _, err := c.HeadManifest(context.Background(), reg.host, "ns/app", "v1"); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
			ratios = append(ratios, reg.rate(float64(reg.requests.Load()))/rate)
		}
		report(b, ratios)
	})
	for _, dir := range []string{"download", "upload"} {
		b.Run("bandwidth-16MiB/s-"+dir, func(b *testing.B) {
			src := startCounting(b)
			img, _ := random.Image(8<<20, 8) // 64 MiB of layers: 4 s at the rate
			ref, _ := name.ParseReference(src.host + "/ns/app:v1")
			if err := remote.Write(ref, img); err != nil {
				b.Fatal(err)
			}
			const rate = 16 << 20
			var ratios, client []float64
			for b.Loop() {
				b.StopTimer()
				dst := startCounting(b) // empty: every blob is uploaded
				b.StartTimer()
				limited := src
				if dir == "upload" {
					limited = dst
				}
				set := throttle.NewSet(map[string]throttle.Limits{limited.host: {Bytes: rate}}, throttle.Limits{})
				c := registry.New(registry.Options{Insecure: anyHost, Throttle: set.For})
				src.start()
				dst.start()
				began := time.Now()
				copyImage(b, c, src.host, dst.host, "ns/app", "v1")
				took := time.Since(began)
				moved := float64(limited.in.Load() + limited.out.Load())
				ratios = append(ratios, limited.rate(moved)/rate)
				client = append(client, moved/took.Seconds()/rate)
			}
			report(b, ratios)
			// The client's view (bytes over the copy's wall time): the
			// registry's counts end early by what the sockets buffer.
			b.ReportMetric(mean(client), "client-rate/set")
		})
	}
}

// rate is what the registry saw per second between its first request and
// its last response.
func (c *countingRegistry) rate(amount float64) float64 {
	d := time.Duration(c.lastAt.Load() - c.firstAt.Load())
	if d <= 0 {
		return 0
	}
	return amount / d.Seconds()
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func report(b *testing.B, ratios []float64) {
	lo, hi, sum := ratios[0], ratios[0], 0.0
	for _, r := range ratios {
		lo, hi, sum = min(lo, r), max(hi, r), sum+r
	}
	b.ReportMetric(sum/float64(len(ratios)), "rate/set")
	b.ReportMetric(lo, "min-rate/set")
	b.ReportMetric(hi, "max-rate/set")
}

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regclient/regclient"
	"github.com/regclient/regclient/config"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/ref"

	"github.com/regmigrate/regmigrate/generator/runner"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/inputs"
	"github.com/regmigrate/regmigrate/steps/mirror"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// The far-away benchmarks copy between two real distribution registries
// that sit behind proxies adding a fixed delay to every request, as
// registries in another data centre do: on loopback a request costs nothing,
// across data centres every sequential request costs a round trip, and the
// number of requests and how many are in flight decide a client's speed.
// regmigrate's engine runs beside regclient (the library regsync is built
// on), driven the way regsync drives it: per tag, a manifest HEAD on the
// source and on the target, and an image copy unless the digests match,
// with regsync's parallelism of the shared bench harness (4 tags at once)
// and regclient's default of 3 requests in flight per registry.
//
//	go test -run '^$' -bench FarAway -benchtime 1x -count 3 ./tests/e2e | tee far.txt
//
// FARAWAY_DELAY (default 20ms) sets the delay; FARAWAY_CONCURRENCY (a
// comma-separated list, default "6") the --max-per-registry values of the
// regmigrate runs, and FARAWAY_JOBS (default mirror.DefaultJobs) their
// images in flight, to choose the defaults from the measurement. Each run
// reports tags/s and the requests it sent per tag to each side, by kind.

type farCorpus struct {
	name   string
	corpus regtest.Corpus
}

var farCorpora = []farCorpus{
	// W2-shaped: many small single-platform tags.
	{"tags", regtest.Corpus{Namespaces: []string{"a", "b", "c", "d", "e"}, ReposPerNS: 10, TagsPerRepo: 10, LayerSize: 2 << 10}},
	// W1-shaped: fewer tags with megabytes of layers.
	{"bytes", regtest.Corpus{Namespaces: []string{"a", "b"}, ReposPerNS: 3, TagsPerRepo: 3, LayerSize: 8 << 20, MultiArch: true}},
}

func farDelay(b *testing.B) time.Duration {
	d := 20 * time.Millisecond
	if v := os.Getenv("FARAWAY_DELAY"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			b.Fatalf("FARAWAY_DELAY=%q: %v", v, err)
		}
	}
	return d
}

func farConcurrency(b *testing.B) []int {
	return farList(b, "FARAWAY_CONCURRENCY", registry.DefaultMaxPerRegistry)
}

// farJobs is FARAWAY_JOBS: the images in flight (--jobs) of the regmigrate
// runs; default the run's default.
func farJobs(b *testing.B) []int { return farList(b, "FARAWAY_JOBS", mirror.DefaultJobs) }

func farList(b *testing.B, env string, def int) []int {
	v := os.Getenv(env)
	if v == "" {
		return []int{def}
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want numbers > 0", env, v)
		}
		out = append(out, n)
	}
	return out
}

type farPeer struct {
	name string
	copy func(b *testing.B, src, dst string, refs []string)
}

func farPeers(b *testing.B) []farPeer {
	var peers []farPeer
	for _, c := range farConcurrency(b) {
		for _, j := range farJobs(b) {
			peers = append(peers, farPeer{fmt.Sprintf("regmigrate-c%d-j%d", c, j), func(b *testing.B, src, dst string, refs []string) {
				regmigrateCopyWith(b, src, dst, refs, c, j)
			}})
		}
	}
	return append(peers, farPeer{"regclient-p4", regclientCopy})
}

// farSource seeds the corpus onto a real registry and puts a delaying proxy
// in front of it.
func farSource(b *testing.B, c regtest.Corpus, delay time.Duration) (*faultproxy.Proxy, []string) {
	b.Helper()
	src := regtest.StartDistribution(b, regtest.Options{})
	s, err := regtest.Seed(context.Background(), src.Host, nil, c)
	if err != nil {
		b.Fatal(err)
	}
	refs := make([]string, 0, len(s.Tags))
	for r := range s.Tags {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	p := faultproxy.New(b, "http://"+src.Host)
	p.SetDelay(delay)
	return p, refs
}

func farTarget(b *testing.B, delay time.Duration) *faultproxy.Proxy {
	b.Helper()
	dst := regtest.StartDistribution(b, regtest.Options{})
	p := faultproxy.New(b, "http://"+dst.Host)
	p.SetDelay(delay)
	return p
}

// report sets tags/s and each side's requests per tag, by kind.
func farReport(b *testing.B, src, dst *faultproxy.Proxy, tags int, elapsed time.Duration) {
	b.ReportMetric(float64(tags*b.N)/elapsed.Seconds(), "tags/s")
	for side, p := range map[string]*faultproxy.Proxy{"src": src, "dst": dst} {
		total := 0
		for k, n := range p.Stats().ByKind {
			total += n
			if float64(n)/float64(tags*b.N) >= 0.01 {
				b.ReportMetric(float64(n)/float64(tags*b.N), side+"-"+k+"/tag")
			}
		}
		b.ReportMetric(float64(total)/float64(tags*b.N), side+"-req/tag")
	}
}

func BenchmarkFarAwayCold(b *testing.B) {
	delay := farDelay(b)
	for _, fc := range farCorpora {
		b.Run(fc.name, func(b *testing.B) {
			src, refs := farSource(b, fc.corpus, delay)
			for _, peer := range farPeers(b) {
				b.Run(peer.name, func(b *testing.B) {
					var elapsed time.Duration
					src.ResetStats()
					var dsts []*faultproxy.Proxy
					for b.Loop() {
						b.StopTimer()
						dst := farTarget(b, delay)
						dsts = append(dsts, dst)
						b.StartTimer()
						t0 := time.Now()
						peer.copy(b, src.Host, dst.Host, refs)
						elapsed += time.Since(t0)
					}
					farReport(b, src, dsts[len(dsts)-1], len(refs), elapsed)
				})
			}
		})
	}
}

func BenchmarkFarAwayNoop(b *testing.B) {
	delay := farDelay(b)
	for _, fc := range farCorpora {
		b.Run(fc.name, func(b *testing.B) {
			src, refs := farSource(b, fc.corpus, delay)
			dst := farTarget(b, 0)
			regmigrateCopyWith(b, src.Host, dst.Host, refs, registry.DefaultMaxPerRegistry, 0)
			for _, peer := range farPeers(b) {
				b.Run(peer.name, func(b *testing.B) {
					var elapsed time.Duration
					src.ResetStats()
					dst.ResetStats()
					dst.SetDelay(delay)
					for b.Loop() {
						t0 := time.Now()
						peer.copy(b, src.Host, dst.Host, refs)
						elapsed += time.Since(t0)
					}
					farReport(b, src, dst, len(refs), elapsed)
				})
			}
		})
	}
}

func regmigrateCopyWith(b *testing.B, src, dst string, refs []string, perRegistry, jobs int) {
	b.Helper()
	entries := make([]inputs.Entry, 0, len(refs))
	for _, r := range refs {
		ref, err := imageref.Parse(r)
		if err != nil {
			b.Fatal(err)
		}
		entries = append(entries, inputs.Entry{Source: ref})
	}
	rep, err := runner.Run(context.Background(), runner.Options{
		Client: registry.New(registry.Options{Insecure: anyHost, MaxPerRegistry: perRegistry}),
		Export: export.Options{From: imageref.Location{Registry: src}, To: imageref.Location{Registry: dst}, Entries: entries},
		Out:    filepath.Join(b.TempDir(), "run"),
		Jobs:   jobs,
	})
	if err != nil || rep.Failed != 0 {
		b.Fatalf("regmigrate: %v (%d failed)", err, rep.Failed)
	}
}

// regclientCopy does what regsync does for each tag of its sync list
// (cmd/regsync's process: HEAD source, HEAD target with a digest required,
// skip when equal, else ImageCopy), 4 tags at a time.
func regclientCopy(b *testing.B, src, dst string, refs []string) {
	b.Helper()
	rc := regclient.New(regclient.WithConfigHost(
		config.Host{Name: src, TLS: config.TLSDisabled},
		config.Host{Name: dst, TLS: config.TLSDisabled},
	))
	ctx := context.Background()
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	var failed []string
	for _, r := range refs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := regsyncOne(ctx, rc, src+"/"+r, dst+"/"+r); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", r, err))
				failed = append(failed, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) == 0 {
		return
	}
	// distribution 2.8 may answer 400 DIGEST_INVALID to two concurrent
	// uploads of one blob into one repository. regsync would copy those
	// tags at its next interval; here they are copied again at once, one
	// at a time, and the time it takes counts.
	b.ReportMetric(float64(len(failed)), "regclient-retried")
	b.Logf("regclient: %d of %d tags failed (first: %v); copying them again, one at a time", len(errs), len(refs), errs[0])
	for _, r := range failed {
		if err := regsyncOne(ctx, rc, src+"/"+r, dst+"/"+r); err != nil {
			b.Fatalf("regclient: %s failed again: %v", r, err)
		}
	}
}

func regsyncOne(ctx context.Context, rc *regclient.RegClient, src, dst string) error {
	rs, err := ref.New(src)
	if err != nil {
		return err
	}
	rt, err := ref.New(dst)
	if err != nil {
		return err
	}
	ms, err := rc.ManifestHead(ctx, rs, regclient.WithManifestRequireDigest())
	if err != nil {
		return err
	}
	if mt, err := rc.ManifestHead(ctx, rt, regclient.WithManifestRequireDigest()); err == nil &&
		manifest.GetDigest(ms) == manifest.GetDigest(mt) {
		return nil
	}
	return rc.ImageCopy(ctx, rs, rt)
}

package registry_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

func pushRandom(t *testing.T, ref string) string {
	t.Helper()
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	reg := regtest.StartInProcess(t)
	d := pushRandom(t, reg.Host+"/ns/app:v1")
	px := faultproxy.New(t, "http://"+reg.Host, faultproxy.Fault{Method: "HEAD", PathRegex: regexp.MustCompile(`/manifests/`), Kind: faultproxy.Status429, Times: 1, RetryAfter: "1"})
	c := registry.New(registry.Options{Insecure: anyHost, RetryBase: time.Millisecond})
	start := time.Now()
	got, err := c.HeadManifest(context.Background(), px.Host, "ns/app", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != d {
		t.Errorf("digest %s, want %s", got.Digest, d)
	}
	// The registry asked for one second; a 1 ms backoff must not override it.
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried after %v, the registry said Retry-After: 1", waited)
	}
}

func TestRetriesTransientFailuresButNotFinalOnes(t *testing.T) {
	t.Parallel()
	reg := regtest.StartInProcess(t)
	d := pushRandom(t, reg.Host+"/ns/app:v1")
	manifests := regexp.MustCompile(`/manifests/`)
	for _, tc := range []struct {
		name      string
		fault     faultproxy.Fault
		wantErr   bool
		retryable bool
	}{
		{"503 twice", faultproxy.Fault{PathRegex: manifests, Kind: faultproxy.Status503, Times: 2}, false, false},
		{"reset twice", faultproxy.Fault{PathRegex: manifests, Kind: faultproxy.Reset, Times: 2}, false, false},
		{"truncated body twice", faultproxy.Fault{PathRegex: manifests, Kind: faultproxy.TruncateBody, Times: 2}, false, false},
		{"500 for good", faultproxy.Fault{PathRegex: manifests, Kind: faultproxy.Status500, Times: -1}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			px := faultproxy.New(t, "http://"+reg.Host, tc.fault)
			c := registry.New(registry.Options{Insecure: anyHost, RetryBase: time.Millisecond, RetryAttempts: 3})
			body, _, err := c.GetManifest(context.Background(), px.Host, "ns/app", d)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error: %v", err, tc.wantErr)
			}
			if err == nil && registry.Digest(body) != d {
				t.Errorf("body digest %s, want %s", registry.Digest(body), d)
			}
			if err != nil && registry.IsRetryable(err) != tc.retryable {
				t.Errorf("IsRetryable(%v) = %v, want %v", err, !tc.retryable, tc.retryable)
			}
		})
	}
}

func TestNotFoundIsFinalAndNamed(t *testing.T) {
	t.Parallel()
	reg := regtest.StartInProcess(t)
	c := registry.New(registry.Options{Insecure: anyHost})
	_, err := c.HeadManifest(context.Background(), reg.Host, "ns/absent", "v1")
	if !errors.Is(err, registry.ErrNotFound) || registry.IsRetryable(err) {
		t.Fatalf("err %v: want ErrNotFound, not retryable", err)
	}
	if !strings.Contains(err.Error(), "ns/absent") {
		t.Errorf("error %q does not name the repository", err)
	}
}

func TestReferrersUnsupportedIsDetectedOnce(t *testing.T) {
	t.Parallel()
	reg := regtest.StartDistribution(t, regtest.Options{}) // distribution 2.8 has no referrers API
	d := pushRandom(t, reg.Host+"/ns/app:v1")
	px := faultproxy.New(t, "http://"+reg.Host)
	c := registry.New(registry.Options{Insecure: anyHost})
	for range 3 {
		if _, err := c.Referrers(context.Background(), px.Host, "ns/app", d); !errors.Is(err, registry.ErrUnsupported) {
			t.Fatalf("err %v, want ErrUnsupported", err)
		}
	}
	if n := px.Stats().Requests["GET"]; n > 2 {
		t.Errorf("%d GETs for 3 referrer lookups: the registry should be asked once (plus the ping)", n)
	}
}

// anyHost marks every registry insecure: the test registries speak plain
// HTTP on loopback, which the client uses only when told.
func anyHost(string) bool { return true }

// watcher adds up what a blob copy reports.
type watcher struct {
	mu              sync.Mutex
	expected, moved int64
	backs           int // negative MovedBytes: attempts taken back
}

func (w *watcher) ExpectBytes(n int64) { w.mu.Lock(); w.expected += n; w.mu.Unlock() }
func (w *watcher) MovedBytes(n int64) {
	w.mu.Lock()
	w.moved += n
	if n < 0 {
		w.backs++
	}
	w.mu.Unlock()
}

// A blob copy reports its size before it starts and its bytes as they
// stream; an attempt cut short is taken back before the retry sends the
// blob again, and a blob that fails for good leaves the totals as they were.
func TestCopyBlobReportsItsBytes(t *testing.T) {
	t.Parallel()
	reg := regtest.StartInProcess(t)
	img, err := random.Image(64<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(reg.Host + "/ns/app:v1")
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	size, _ := layers[0].Size()
	d := registry.Descriptor{Digest: ld.String(), Size: size}
	blobs := regexp.MustCompile(`/blobs/sha256:`)
	for _, tc := range []struct {
		name  string
		times int
		want  int64 // expected and moved at the end
		err   bool
	}{
		{"cut once", 1, size, false},
		{"cut every time", -1, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			px := faultproxy.New(t, "http://"+reg.Host, faultproxy.Fault{Method: "GET", PathRegex: blobs, Kind: faultproxy.TruncateBody, Times: tc.times})
			dst := regtest.StartInProcess(t)
			c := registry.New(registry.Options{Insecure: anyHost, RetryBase: time.Millisecond, RetryAttempts: 3})
			w := &watcher{}
			n, err := c.CopyBlob(registry.WithByteWatcher(context.Background(), w), px.Host, "ns/app", dst.Host, "ns/app", d)
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want error: %v", err, tc.err)
			}
			if err == nil && n != size {
				t.Errorf("copied %d bytes, want %d", n, size)
			}
			if w.expected != tc.want || w.moved != tc.want || w.backs == 0 {
				t.Errorf("watcher: %d expected, %d moved, %d attempts taken back; want %d, %d and at least one", w.expected, w.moved, w.backs, tc.want, tc.want)
			}
		})
	}
}

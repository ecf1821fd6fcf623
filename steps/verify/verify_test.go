package verify_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/steps/verify"
	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

func TestVerifyFindsWhatIsWrong(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "http://")

	pushRandom := func(ref string) (string, v1.Image) {
		img, err := random.Image(1024, 2)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := name.ParseReference(host + "/" + ref)
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return d.String(), img
	}
	good, _ := pushRandom("ns/good:v1")
	moved, _ := pushRandom("ns/moved:v1")
	broken, img := pushRandom("ns/broken:v1")
	// Remove one layer of "broken" behind the registry's back.
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	req, _ := http.NewRequest(http.MethodDelete, s.URL+"/v2/ns/broken/blobs/"+ld.String(), nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode >= 300 {
		t.Fatalf("deleting a blob: %v %v", err, resp)
	}
	other, _ := random.Image(10, 1)
	od, _ := other.Digest()

	ref := func(s string) imageref.Ref {
		r, err := imageref.Parse(host + "/" + s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	res, err := verify.Run(context.Background(), verify.Options{
		Client: registry.New(registry.Options{Insecure: anyHost}),
		Mode:   verify.ModeFull,
		Expects: []verify.Expect{
			{Target: ref("ns/good:v1"), Digest: good},
			{Target: ref("ns/moved:v1"), Digest: od.String()},
			{Target: ref("ns/broken:v1"), Digest: broken},
			{Target: ref("ns/absent:v1"), Digest: good},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed != 1 || res.Failed != 3 || res.OK() {
		t.Fatalf("passed %d failed %d, want 1 and 3: %+v", res.Passed, res.Failed, res.Images)
	}
	byTarget := map[string]verify.Check{}
	for _, c := range res.Images {
		byTarget[strings.TrimPrefix(c.Target, host+"/")] = c
	}
	if c := byTarget["ns/moved:v1"]; c.Got != moved || !strings.Contains(c.Error, "expected") {
		t.Errorf("moved tag: %+v, want got=%s and a mismatch error", c, moved)
	}
	if c := byTarget["ns/broken:v1"]; len(c.Missing) != 1 || c.Missing[0] != "blob "+ld.String() {
		t.Errorf("broken image: missing %v, want [blob %s]", c.Missing, ld)
	}
	if c := byTarget["ns/absent:v1"]; !strings.Contains(c.Error, "not found") {
		t.Errorf("absent tag: %+v, want not found", c)
	}
}

func TestVerifyAutoModeDeepChecksWhatWasCopied(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "http://")
	img, _ := random.Image(1024, 1)
	r, _ := name.ParseReference(host + "/ns/app:v1")
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	req, _ := http.NewRequest(http.MethodDelete, s.URL+"/v2/ns/app/blobs/"+ld.String(), nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode >= 300 {
		t.Fatalf("deleting a blob: %v %v", err, resp)
	}
	target, _ := imageref.Parse(host + "/ns/app:v1")
	for _, tc := range []struct {
		name       string
		mode       string
		copied     bool
		wantPassed bool
	}{
		{"auto checks a copied image deeply", verify.ModeAuto, true, false},
		{"auto trusts the digest of an image the run did not write", verify.ModeAuto, false, true},
		{"full checks everything deeply", verify.ModeFull, false, false},
		{"digest never looks at blobs", verify.ModeDigest, true, true},
	} {
		res, err := verify.Run(context.Background(), verify.Options{
			Client: registry.New(registry.Options{Insecure: anyHost}), Mode: tc.mode,
			Expects: []verify.Expect{{Target: target, Digest: d.String(), Copied: tc.copied}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.OK() != tc.wantPassed {
			t.Errorf("%s: passed=%v, want %v (%+v)", tc.name, res.OK(), tc.wantPassed, res.Images)
		}
	}
}

// anyHost marks every registry insecure: the test registries speak plain
// HTTP on loopback, which the client uses only when told.
func anyHost(string) bool { return true }

// blobFile is where a filesystem distribution registry keeps a blob's bytes.
func blobFile(r *regtest.Registry, digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(r.DataDir, "docker/registry/v2/blobs/sha256", hex[:2], hex, "data")
}

// push writes img to the registry as ref (ns/repo:tag) and returns its digest.
func push(t *testing.T, host, ref string, img v1.Image) string {
	t.Helper()
	r, err := name.ParseReference(host+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// --verify full reads every blob and hashes it: a layer corrupted in place
// in the registry's storage (HEAD still answers 200) fails the images that
// use it, naming the blob and the image; each blob is read once however
// many repositories link it.
func TestFullVerifyReadsAndHashesEveryBlob(t *testing.T) {
	t.Parallel()
	reg := regtest.StartDistribution(t, regtest.Options{})
	img, err := random.Image(32<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	other, err := random.Image(32<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	d1 := push(t, reg.Host, "ns/app:v1", img)
	d2 := push(t, reg.Host, "ns/copy:v1", img) // the same blobs in another repository
	d3 := push(t, reg.Host, "ns/other:v1", other)
	layers, _ := img.Layers()
	bad, _ := layers[1].Digest()
	b, err := os.ReadFile(blobFile(reg, bad.String()))
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(blobFile(reg, bad.String()), b, 0o644); err != nil {
		t.Fatal(err)
	}
	px := faultproxy.New(t, "http://"+reg.Host)
	ref := func(s string) imageref.Ref {
		r, err := imageref.Parse(px.Host + "/" + s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	expects := []verify.Expect{
		{Target: ref("ns/app:v1"), Digest: d1, Copied: true},
		{Target: ref("ns/copy:v1"), Digest: d2, Copied: true, Repaired: true, Reuploaded: []string{bad.String()}},
		{Target: ref("ns/other:v1"), Digest: d3, Copied: true},
	}
	client := registry.New(registry.Options{Insecure: anyHost})

	// auto asks whether the blobs are there: they are.
	res, err := verify.Run(context.Background(), verify.Options{Client: client, Mode: verify.ModeAuto, Expects: expects[:1]})
	if err != nil || !res.OK() {
		t.Fatalf("auto: %+v %v; HEAD says every blob is there", res.Images, err)
	}
	px.ResetStats()
	res, err = verify.Run(context.Background(), verify.Options{Client: client, Mode: verify.ModeFull, Expects: expects})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed != 1 || res.Failed != 2 || res.ExitCode() != contract.ExitFailed {
		t.Fatalf("full: passed %d failed %d exit %d, want 1, 2 and %d: %+v", res.Passed, res.Failed, res.ExitCode(), contract.ExitFailed, res.Images)
	}
	for _, c := range res.Images {
		if c.Status == verify.Passed {
			if !strings.HasSuffix(c.Target, "ns/other:v1") {
				t.Errorf("%s passed", c.Target)
			}
			continue
		}
		if len(c.Corrupt) != 1 || c.Corrupt[0] != "blob "+bad.String() || c.Retryable {
			t.Errorf("%s: corrupt %v retryable %v, want [blob %s], final", c.Target, c.Corrupt, c.Retryable, bad)
		}
		if !strings.Contains(c.Error, c.Target) || !strings.Contains(c.Error, bad.String()) || !strings.Contains(c.Error, "corrupt") {
			t.Errorf("%s: error %q does not name the image and the blob", c.Target, c.Error)
		}
		if kept := strings.Contains(c.Error, "still serves the corrupt copy") && strings.Contains(c.Error, "/docker/registry/v2/blobs/"); kept != strings.HasSuffix(c.Target, "ns/copy:v1") {
			t.Errorf("%s: %q: only the image whose blob was uploaded again is told the registry kept the corrupt copy, and where to delete it", c.Target, c.Error)
		}
	}
	// Every blob read once, the corrupt one included: a registry stores a
	// blob once, whatever the repositories that link it, so its verdict
	// holds for each of them.
	st := px.Stats()
	for _, im := range []v1.Image{img, other} {
		ls, _ := im.Layers()
		cfg, _ := im.ConfigName()
		for _, l := range ls {
			d, _ := l.Digest()
			if n := st.BlobGets[d.String()]; n != 1 {
				t.Errorf("blob %s read %d times, want once", d, n)
			}
		}
		if n := st.BlobGets[cfg.String()]; n != 1 {
			t.Errorf("config %s read %d times, want once", cfg, n)
		}
	}
}

// A verification that cannot be made (the target unreachable, 5xx) is a
// retryable failure: exit 75, not 1. A tag missing on the target is final.
func TestVerifyTellsTransientFailuresFromFinalOnes(t *testing.T) {
	t.Parallel()
	reg := regtest.StartDistribution(t, regtest.Options{})
	img, _ := random.Image(1024, 1)
	d := push(t, reg.Host, "ns/app:v1", img)
	port, err := regtest.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	down := "127.0.0.1:" + strconv.Itoa(port)
	failing := faultproxy.New(t, "http://"+reg.Host, faultproxy.Fault{PathRegex: regexp.MustCompile(`/blobs/`), Kind: faultproxy.Status503, Times: -1})
	for _, tc := range []struct {
		name      string
		host, tag string
		mode      string
		retryable bool
	}{
		{"connection refused", down, "v1", verify.ModeAuto, true},
		{"503 on every blob read", failing.Host, "v1", verify.ModeFull, true},
		{"tag missing", reg.Host, "v2", verify.ModeAuto, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target, _ := imageref.Parse(tc.host + "/ns/app:" + tc.tag)
			res, err := verify.Run(context.Background(), verify.Options{
				Client: registry.New(registry.Options{Insecure: anyHost, RetryAttempts: 2, RetryBase: time.Millisecond}), Mode: tc.mode,
				Expects: []verify.Expect{{Target: target, Digest: d, Copied: true}},
			})
			if err != nil {
				t.Fatal(err)
			}
			want := contract.ExitFailed
			if tc.retryable {
				want = contract.ExitRetryable
			}
			if res.OK() || res.Images[0].Retryable != tc.retryable || res.ExitCode() != want {
				t.Fatalf("%+v: exit %d, want a failure, retryable %v, exit %d", res.Images, res.ExitCode(), tc.retryable, want)
			}
		})
	}
}

// A registry whose blob descriptor cache outlives a blob's data answers
// HEAD, and GET with headers but no body: --verify full says the blob is
// missing (final), auto (HEAD) cannot tell.
func TestFullVerifyFindsABlobWhoseDataIsGoneBehindACache(t *testing.T) {
	t.Parallel()
	reg := regtest.StartDistribution(t, regtest.Options{BlobDescriptorCache: true})
	img, _ := random.Image(16<<10, 2)
	d := push(t, reg.Host, "ns/app:v1", img)
	layers, _ := img.Layers()
	gone, _ := layers[0].Digest()
	client := registry.New(registry.Options{Insecure: anyHost, RetryAttempts: 2, RetryBase: time.Millisecond})
	target, _ := imageref.Parse(reg.Host + "/ns/app:v1")
	exp := []verify.Expect{{Target: target, Digest: d, Copied: true}}
	if res, err := verify.Run(context.Background(), verify.Options{Client: client, Mode: verify.ModeAuto, Expects: exp}); err != nil || !res.OK() {
		t.Fatalf("before: %+v %v", res.Images, err) // fills the cache
	}
	if err := os.Remove(blobFile(reg, gone.String())); err != nil {
		t.Fatal(err)
	}
	if res, err := verify.Run(context.Background(), verify.Options{Client: client, Mode: verify.ModeAuto, Expects: exp}); err != nil || !res.OK() {
		t.Fatalf("auto: %+v %v; the cache answers HEAD", res.Images, err)
	}
	res, err := verify.Run(context.Background(), verify.Options{Client: client, Mode: verify.ModeFull, Expects: exp})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Images[0]
	if c.Status != verify.Failed || c.Retryable || len(c.Missing) != 1 || c.Missing[0] != "blob "+gone.String() || !strings.Contains(c.Error, "incomplete") {
		t.Fatalf("full: %+v, want the blob missing (served incomplete), final", c)
	}
}

package mirror_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/mirror"
	"github.com/regmigrate/regmigrate/steps/progress"
	"github.com/regmigrate/regmigrate/steps/registry"
)

func newRegistry(t *testing.T, opts ...ggcrregistry.Option) string {
	t.Helper()
	s := httptest.NewServer(ggcrregistry.New(append(opts, ggcrregistry.Logger(log.New(io.Discard, "", 0)))...))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func push(t *testing.T, ref string, img v1.Image) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, _ := img.Digest()
	return d.String()
}

func pushIndex(t *testing.T, ref string, idx v1.ImageIndex) string {
	t.Helper()
	r, _ := name.ParseReference(ref)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, _ := idx.Digest()
	return d.String()
}

// image builds an image on a shared base layer plus one layer of its own.
func image(t *testing.T, base v1.Layer) v1.Image {
	t.Helper()
	own, err := random.Layer(2048, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, base, own)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func multiArch(t *testing.T, base v1.Layer) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		adds = append(adds, mutate.IndexAddendum{Add: image(t, base), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	return mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.DockerManifestList)
}

func item(t *testing.T, src, dst, digest string) artifacts.Item {
	t.Helper()
	s, err := imageref.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	s.Digest = digest
	d, err := imageref.Parse(dst)
	if err != nil {
		t.Fatal(err)
	}
	return artifacts.Item{Source: s, Target: d}
}

func targetDigest(t *testing.T, ref string) string {
	t.Helper()
	r, _ := name.ParseReference(ref)
	d, err := remote.Head(r)
	if err != nil {
		t.Fatalf("target %s: %v", ref, err)
	}
	return d.Digest.String()
}

func TestMirrorCopiesDigestsExactlyAndSkipsOnRerun(t *testing.T) {
	t.Parallel()
	src, dst := newRegistry(t), newRegistry(t)
	base, _ := random.Layer(64<<10, types.DockerLayer)
	var items []artifacts.Item
	want := map[string]string{}
	for _, repo := range []string{"team-a/api", "team-a/web", "team-b/api"} {
		d := push(t, src+"/"+repo+":v1", image(t, base))
		items = append(items, item(t, src+"/"+repo+":v1", dst+"/"+repo+":v1", d))
		want[dst+"/"+repo+":v1"] = d
	}
	d := pushIndex(t, src+"/team-b/multi:v2", multiArch(t, base))
	items = append(items, item(t, src+"/team-b/multi:v2", dst+"/team-b/multi:v2", d))
	want[dst+"/team-b/multi:v2"] = d

	c := registry.New(registry.Options{Insecure: anyHost})
	res, err := mirror.Run(context.Background(), mirror.Options{Client: c, Items: items})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != 4 || res.Failed != 0 || res.Skipped != 0 {
		t.Fatalf("first run: copied %d skipped %d failed %d, want 4/0/0: %+v", res.Copied, res.Skipped, res.Failed, res.Images)
	}
	for ref, d := range want {
		if got := targetDigest(t, ref); got != d {
			t.Errorf("%s: digest %s, want %s (digests must be preserved)", ref, got, d)
		}
	}
	// Each unique blob moves once: the shared base layer, and per image its
	// own layer and config (3 images + 2 in the index). ggcr's registry
	// stores blobs globally, so the base is "present" for later repositories
	// (the distribution registry test checks mounts).
	if want := int64(1 + 2*5); res.BlobsUploaded != want {
		t.Errorf("blobs uploaded %d, want %d (each unique blob once)", res.BlobsUploaded, want)
	}
	if res.ExitCode() != contract.ExitOK {
		t.Errorf("exit code %d, want 0", res.ExitCode())
	}

	again, err := mirror.Run(context.Background(), mirror.Options{Client: c, Items: items})
	if err != nil {
		t.Fatal(err)
	}
	if again.Skipped != 4 || again.Copied != 0 || again.Bytes != 0 {
		t.Fatalf("rerun: copied %d skipped %d bytes %d, want everything skipped and nothing moved", again.Copied, again.Skipped, again.Bytes)
	}
}

func TestMirrorFailedImageDoesNotStopOthers(t *testing.T) {
	t.Parallel()
	src, dst := newRegistry(t), newRegistry(t)
	base, _ := random.Layer(1024, types.DockerLayer)
	d := push(t, src+"/ns/ok:v1", image(t, base))
	items := []artifacts.Item{
		item(t, src+"/ns/missing:v1", dst+"/ns/missing:v1", ""),
		item(t, src+"/ns/ok:v1", dst+"/ns/ok:v1", d),
	}
	res, err := mirror.Run(context.Background(), mirror.Options{Client: registry.New(registry.Options{Insecure: anyHost}), Items: items})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != 1 || res.Failed != 1 {
		t.Fatalf("copied %d failed %d, want 1 and 1", res.Copied, res.Failed)
	}
	if got := targetDigest(t, dst+"/ns/ok:v1"); got != d {
		t.Errorf("ok image digest %s, want %s", got, d)
	}
	var failed mirror.ImageResult
	for _, im := range res.Images {
		if im.Status == contract.StatusFailed {
			failed = im
		}
	}
	if !strings.Contains(failed.Error, "ns/missing") || failed.Retryable {
		t.Errorf("failure %+v: want an error naming the image, not retryable", failed)
	}
	if res.ExitCode() != contract.ExitFailed {
		t.Errorf("exit code %d, want %d (final failure)", res.ExitCode(), contract.ExitFailed)
	}
}

func TestMirrorNestedIndexAndArtifact(t *testing.T) {
	t.Parallel()
	src, dst := newRegistry(t), newRegistry(t)
	base, _ := random.Layer(1024, types.OCILayer)
	inner := mutate.IndexMediaType(multiArch(t, base), types.OCIImageIndex)
	outer := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{Add: inner})
	d1 := pushIndex(t, src+"/ns/nested:v1", outer)

	// A Helm chart: OCI artifact with its own config and layer media types.
	chart := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	chart = mutate.ConfigMediaType(chart, "application/vnd.cncf.helm.config.v1+json")
	chart, _ = mutate.Append(chart, mutate.Addendum{Layer: static.NewLayer([]byte("chart-tgz"), "application/vnd.cncf.helm.chart.content.v1.tar+gzip")})
	d2 := push(t, src+"/ns/charts/mychart:0.1.0", chart)

	items := []artifacts.Item{
		item(t, src+"/ns/nested:v1", dst+"/ns/nested:v1", d1),
		item(t, src+"/ns/charts/mychart:0.1.0", dst+"/ns/charts/mychart:0.1.0", d2),
	}
	res, err := mirror.Run(context.Background(), mirror.Options{Client: registry.New(registry.Options{Insecure: anyHost}), Items: items})
	if err != nil || res.Copied != 2 {
		t.Fatalf("copied %d (err %v), want 2: %+v", res.Copied, err, res.Images)
	}
	if got := targetDigest(t, dst+"/ns/nested:v1"); got != d1 {
		t.Errorf("nested index digest %s, want %s", got, d1)
	}
	if got := targetDigest(t, dst+"/ns/charts/mychart:0.1.0"); got != d2 {
		t.Errorf("chart digest %s, want %s", got, d2)
	}
}

func TestMirrorPlatformFilterWarnsAndChangesDigest(t *testing.T) {
	t.Parallel()
	src, dst := newRegistry(t), newRegistry(t)
	base, _ := random.Layer(1024, types.DockerLayer)
	d := pushIndex(t, src+"/ns/multi:v1", multiArch(t, base))
	res, err := mirror.Run(context.Background(), mirror.Options{
		Client: registry.New(registry.Options{Insecure: anyHost}), Platforms: []string{"linux/arm64"},
		Items: []artifacts.Item{item(t, src+"/ns/multi:v1", dst+"/ns/multi:v1", d)},
	})
	if err != nil || res.Copied != 1 {
		t.Fatalf("copied %d err %v", res.Copied, err)
	}
	if len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "digest") {
		t.Errorf("warnings %q: want one about changed digests", res.Warnings)
	}
	got := targetDigest(t, dst+"/ns/multi:v1")
	if got == d || got != res.Images[0].Digest {
		t.Errorf("target digest %s: want the filtered index's digest %s (not the source's %s)", got, res.Images[0].Digest, d)
	}
	r, _ := name.ParseReference(dst + "/ns/multi:v1")
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := idx.IndexManifest()
	if len(m.Manifests) != 1 || m.Manifests[0].Platform.Architecture != "arm64" {
		t.Errorf("filtered index has %d children, want only linux/arm64", len(m.Manifests))
	}
}

func TestMirrorCopiesReferrers(t *testing.T) {
	t.Parallel()
	src := newRegistry(t, ggcrregistry.WithReferrersSupport(true))
	dst := newRegistry(t, ggcrregistry.WithReferrersSupport(true))
	base, _ := random.Layer(1024, types.OCILayer)
	img := mutate.MediaType(image(t, base), types.OCIManifestSchema1)
	d := push(t, src+"/ns/app:v1", img)
	desc, _ := remote.Head(mustRef(t, src+"/ns/app:v1"))

	sbom := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	sbom = mutate.ConfigMediaType(sbom, "application/vnd.example.sbom")
	sbom, _ = mutate.Append(sbom, mutate.Addendum{Layer: static.NewLayer([]byte(`{"sbom":true}`), "application/json")})
	sbom = mutate.Subject(sbom, *desc).(v1.Image)
	sd, _ := sbom.Digest()
	push(t, src+"/ns/app@"+sd.String(), sbom)

	res, err := mirror.Run(context.Background(), mirror.Options{
		Client: registry.New(registry.Options{Insecure: anyHost}),
		Items:  []artifacts.Item{item(t, src+"/ns/app:v1", dst+"/ns/app:v1", d)},
	})
	if err != nil || res.Copied != 1 {
		t.Fatalf("copied %d err %v: %+v", res.Copied, err, res.Images)
	}
	if res.Images[0].Referrers != 1 {
		t.Errorf("referrers copied %d, want 1", res.Images[0].Referrers)
	}
	// The image's bytes are its blobs and its referrer's, uploaded.
	if want := blobBytes(t, img) + blobBytes(t, sbom); res.Images[0].Bytes != want {
		t.Errorf("image bytes %d, want %d (its blobs and its referrer's)", res.Images[0].Bytes, want)
	}
	dd, _ := name.NewDigest(dst + "/ns/app@" + d)
	idx, err := remote.Referrers(dd)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := idx.IndexManifest()
	if len(m.Manifests) != 1 || m.Manifests[0].Digest != sd {
		t.Errorf("target referrers %+v, want the SBOM %s", m.Manifests, sd)
	}
}

// blobBytes is the size of an image's config and layers.
func blobBytes(t *testing.T, img v1.Image) int64 {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// The copy phase counts the plan's images against a total that never
// moves, a signature tag found on the way apart, and the bytes as they
// stream: at the end, the bytes the images report.
func TestMirrorReportsProgress(t *testing.T) {
	t.Parallel()
	src, dst := newRegistry(t), newRegistry(t)
	base, _ := random.Layer(256<<10, types.DockerLayer)
	var items []artifacts.Item
	for _, repo := range []string{"team-a/api", "team-a/web"} {
		d := push(t, src+"/"+repo+":v1", image(t, base))
		items = append(items, item(t, src+"/"+repo+":v1", dst+"/"+repo+":v1", d))
	}
	sig := image(t, base)
	push(t, src+"/team-a/api:"+strings.Replace(items[0].Source.Digest, ":", "-", 1)+".sig", sig)

	ph := progress.New(progress.Options{Mode: progress.Off}).StartBytes("copy", len(items))
	res, err := mirror.Run(context.Background(), mirror.Options{Client: registry.New(registry.Options{Insecure: anyHost}), Items: items, Progress: ph})
	ph.Finish()
	if err != nil || res.Copied != 3 {
		t.Fatalf("copied %d err %v: %+v", res.Copied, err, res.Images)
	}
	s := ph.Snapshot()
	if s.Done != 2 || s.Total != 2 || s.Extra != 1 || s.Counts["copied"] != 3 {
		t.Errorf("progress %d/%d images, %d found on the way, counts %v; want 2/2, 1, copied 3", s.Done, s.Total, s.Extra, s.Counts)
	}
	if s.BytesDone != res.Bytes || s.BytesTotal != res.Bytes || res.Bytes < 256<<10 {
		t.Errorf("progress bytes %d of %d, want the %d the images report", s.BytesDone, s.BytesTotal, res.Bytes)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// anyHost marks every registry insecure: the test registries speak plain
// HTTP on loopback, which the client uses only when told.
func anyHost(string) bool { return true }

// everyBlob is a blob store that has every blob (a target that already
// holds all layers): HEAD answers 200 for any digest.
type everyBlob struct{}

func (everyBlob) Get(context.Context, string, v1.Hash) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("x")), nil
}
func (everyBlob) Stat(context.Context, string, v1.Hash) (int64, error) { return 1, nil }

// A manifest with tens of thousands of layers is copied with a bounded
// number of goroutines: the blobs of one image are handled a few at a
// time, not one goroutine each.
// Not parallel: it counts the process's goroutines.
func TestMirrorManyLayersUseBoundedGoroutines(t *testing.T) {
	const layers = 20_000
	src, dst := newRegistry(t), newRegistry(t, ggcrregistry.WithBlobHandler(everyBlob{}))
	// Blobs declared larger than UploadWithoutAsking, so the copy asks the
	// target (which has them all) instead of uploading.
	const size = mirror.UploadWithoutAsking + 1
	m := map[string]any{
		"schemaVersion": 2, "mediaType": registry.MediaOCIManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": fakeDigest(-1), "size": size},
	}
	ls := make([]map[string]any, layers)
	for i := range ls {
		ls[i] = map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": fakeDigest(i), "size": size}
	}
	m["layers"] = ls
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	c := registry.New(registry.Options{Insecure: anyHost})
	if err := c.PutManifest(context.Background(), src, "big/layers", "v1", registry.MediaOCIManifest, body); err != nil {
		t.Fatal(err)
	}
	d := registry.Digest(body)

	base := runtime.NumGoroutine()
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if n := int64(runtime.NumGoroutine()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	res, err := mirror.Run(context.Background(), mirror.Options{Client: c, Items: []artifacts.Item{item(t, src+"/big/layers:v1", dst+"/big/layers:v1", d)}})
	close(stop)
	<-sampled
	if err != nil || res.Copied != 1 {
		t.Fatalf("copy of a %d-layer image: %v %+v", layers, err, res.Images)
	}
	if res.BlobsPresent != layers+1 {
		t.Errorf("%d blobs found present, want %d", res.BlobsPresent, layers+1)
	}
	// The run itself may use its workers, the HTTP connections (a few
	// goroutines each) and a bounded number of blobs in flight.
	if grew := peak.Load() - int64(base); grew > 200 {
		t.Fatalf("copying a %d-layer image took %d more goroutines: one per layer is not bounded", layers, grew)
	}
}

// fakeDigest is a well-formed digest for test i.
func fakeDigest(i int) string {
	return fmt.Sprintf("sha256:%064x", i+1)
}

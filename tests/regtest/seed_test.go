package regtest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// walker reads back what Seed pushed.
type walker struct {
	t     *testing.T
	host  string
	opt   []remote.Option
	blobs map[v1.Hash]int64
	types map[types.MediaType]int // media types of the manifests met
}

func newWalker(t *testing.T, r *Registry) *walker {
	return &walker{t: t, host: r.Host, opt: r.RemoteOptions(), blobs: map[v1.Hash]int64{}, types: map[types.MediaType]int{}}
}

// get fetches "ns/repo:tag" or "ns/repo@digest".
func (w *walker) get(ref string) *remote.Descriptor {
	w.t.Helper()
	r, err := name.ParseReference(w.host + "/" + ref)
	if err != nil {
		w.t.Fatal(err)
	}
	d, err := remote.Get(r, w.opt...)
	if err != nil {
		w.t.Fatalf("get %s: %v", ref, err)
	}
	return d
}

// walk records the manifest at ref, its children and its blobs.
func (w *walker) walk(repo string, d *remote.Descriptor) {
	w.t.Helper()
	w.types[d.MediaType]++
	if d.MediaType.IsIndex() {
		var im v1.IndexManifest
		if err := json.Unmarshal(d.Manifest, &im); err != nil {
			w.t.Fatal(err)
		}
		for _, c := range im.Manifests {
			w.walk(repo, w.get(repo+"@"+c.Digest.String()))
		}
		return
	}
	var m v1.Manifest
	if err := json.Unmarshal(d.Manifest, &m); err != nil {
		w.t.Fatal(err)
	}
	w.blobs[m.Config.Digest] = m.Config.Size
	for _, l := range m.Layers {
		w.blobs[l.Digest] = l.Size
	}
}

func (w *walker) bytes() int64 {
	var n int64
	for _, s := range w.blobs {
		n += s
	}
	return n
}

func repoOf(ref string) string {
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		return ref[:i]
	}
	return ref[:strings.LastIndex(ref, ":")]
}

// checkSeeded reads every tag and untagged manifest back, compares digests
// and blob bytes, and returns the walker for further checks.
func checkSeeded(t *testing.T, r *Registry, s Seeded) *walker {
	t.Helper()
	w := newWalker(t, r)
	for ref, want := range s.Tags {
		d := w.get(ref)
		if d.Digest.String() != want {
			t.Errorf("%s: digest %s, Seed said %s", ref, d.Digest, want)
		}
		w.walk(repoOf(ref), d)
	}
	for _, ref := range s.Untagged {
		w.walk(repoOf(ref), w.get(ref))
	}
	if got := w.bytes(); got != s.Bytes {
		t.Errorf("the registry holds %d bytes of distinct blobs, Seed said %d", got, s.Bytes)
	}
	return w
}

func keys(m map[string]string) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	slices.Sort(k)
	return k
}

func TestSeedDistributionFullCorpus(t *testing.T) {
	t.Parallel()
	r := StartDistribution(t, Options{})
	c := Corpus{
		Namespaces: []string{"ns-a", "ns-b"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 2048,
		MultiArch: true, Signature: true, HelmChart: true, Referrer: true, Nested: true,
	}
	s, err := Seed(context.Background(), r.Host, r.RemoteOptions(), c)
	if err != nil {
		t.Fatal(err)
	}

	// The layout is deterministic but for the digests in the tag-schema tags.
	want := []string{"ns-a/app0:nested", "ns-a/charts/mychart:0.1.0"}
	for _, ns := range c.Namespaces {
		for i := range 2 {
			for j := range 2 {
				want = append(want, fmt.Sprintf("%s/app%d:v%d", ns, i, j))
			}
		}
	}
	sig := "ns-a/app0:" + strings.Replace(s.Tags["ns-a/app0:v0"], ":", "-", 1) + ".sig"
	fallback := "ns-a/app0:" + strings.Replace(s.Tags["ns-a/app0:v1"], ":", "-", 1)
	want = append(want, sig, fallback)
	slices.Sort(want)
	if got := keys(s.Tags); !slices.Equal(got, want) {
		t.Errorf("tags\n%v\nwant\n%v", got, want)
	}
	if len(s.Untagged) != 1 || !strings.HasPrefix(s.Untagged[0], "ns-a/app0@sha256:") {
		t.Errorf("untagged %v, want the referrer in ns-a/app0", s.Untagged)
	}

	w := checkSeeded(t, r, s)
	for mt, n := range map[types.MediaType]int{
		types.DockerManifestList: 1,
		// ns-b/app0:v0, ns-a/app0:nested and its inner index, the fallback.
		types.OCIImageIndex: 4,
	} {
		if w.types[mt] != n {
			t.Errorf("%d manifests of type %s, want %d (all: %v)", w.types[mt], mt, n, w.types)
		}
	}
	if w.types[types.DockerManifestSchema2] < 4 || w.types[types.OCIManifestSchema1] < 4 {
		t.Errorf("want both Docker and OCI images: %v", w.types)
	}

	// Multi-arch children carry their platforms in the index.
	for _, ref := range []string{"ns-a/app0:v0", "ns-b/app0:v0"} {
		im, err := v1.ParseIndexManifest(strings.NewReader(string(w.get(ref).Manifest)))
		if err != nil {
			t.Fatal(err)
		}
		var plats []string
		for _, m := range im.Manifests {
			if m.Platform != nil {
				plats = append(plats, m.Platform.String())
			}
		}
		if !slices.Equal(plats, []string{"linux/amd64", "linux/arm64"}) {
			t.Errorf("%s platforms %v", ref, plats)
		}
	}

	// The nested index holds an index.
	nested, _ := v1.ParseIndexManifest(strings.NewReader(string(w.get("ns-a/app0:nested").Manifest)))
	if nested == nil || !slices.ContainsFunc(nested.Manifests, func(d v1.Descriptor) bool { return d.MediaType.IsIndex() }) {
		t.Errorf("ns-a/app0:nested holds no index: %+v", nested)
	}

	// Artifacts.
	var chart v1.Manifest
	json.Unmarshal(w.get("ns-a/charts/mychart:0.1.0").Manifest, &chart)
	if chart.Config.MediaType != HelmConfig || len(chart.Layers) != 1 || chart.Layers[0].MediaType != HelmChartContent {
		t.Errorf("chart manifest %+v", chart)
	}
	var sigm v1.Manifest
	json.Unmarshal(w.get(sig).Manifest, &sigm)
	if len(sigm.Layers) != 1 || sigm.Layers[0].MediaType != CosignSignatureLayer || sigm.Layers[0].Annotations["dev.cosignproject.cosign/signature"] == "" {
		t.Errorf("signature manifest %+v", sigm)
	}

	// distribution 2.8 has no referrers API: the fallback index lists the
	// referrer, and go-containerregistry finds it through the fallback.
	var fb v1.IndexManifest
	json.Unmarshal(w.get(fallback).Manifest, &fb)
	if len(fb.Manifests) != 1 || "ns-a/app0@"+fb.Manifests[0].Digest.String() != s.Untagged[0] || fb.Manifests[0].ArtifactType != SBOMArtifactType {
		t.Errorf("fallback index %+v, want the referrer %s", fb, s.Untagged[0])
	}

	// Images of different repositories share layers: mounts pay off.
	layers := func(ref string) []v1.Hash {
		var m v1.Manifest
		json.Unmarshal(w.get(ref).Manifest, &m)
		var h []v1.Hash
		for _, l := range m.Layers {
			h = append(h, l.Digest)
		}
		return h
	}
	a, b := layers("ns-a/app1:v0"), layers("ns-b/app1:v1")
	if len(a) != 3 || len(b) != 3 || a[0] != b[0] || a[1] != b[1] || a[2] == b[2] {
		t.Errorf("layers %v and %v: want two shared and one own", a, b)
	}

	// Every repository is in the catalog.
	reg, _ := name.NewRegistry(r.Host)
	repos, err := remote.Catalog(context.Background(), reg, r.RemoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ns-a/app0", "ns-a/app1", "ns-a/charts/mychart", "ns-b/app0", "ns-b/app1"}; !slices.Equal(repos, want) {
		t.Errorf("catalog %v, want %v", repos, want)
	}
}

func TestSeedTLSAuthDistribution(t *testing.T) {
	t.Parallel()
	r := StartDistribution(t, Options{TLS: true, Auth: true})
	s, err := Seed(context.Background(), r.Host, r.RemoteOptions(), Corpus{
		Namespaces: []string{"secure"}, ReposPerNS: 1, TagsPerRepo: 2, MultiArch: true, Referrer: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Tags) != 3 { // v0 (an index), v1, the referrers fallback
		t.Errorf("tags %v", keys(s.Tags))
	}
	checkSeeded(t, r, s)
}

func TestSeedInProcessReferrers(t *testing.T) {
	t.Parallel()
	for _, api := range []bool{true, false} {
		t.Run(fmt.Sprintf("api=%v", api), func(t *testing.T) {
			r := StartInProcess(t, registry.WithReferrersSupport(api))
			s, err := Seed(context.Background(), r.Host, r.RemoteOptions(), Corpus{
				Namespaces: []string{"ns"}, ReposPerNS: 1, TagsPerRepo: 1, Referrer: true, Signature: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			subject := s.Tags["ns/app0:v0"]
			_, hasFallback := s.Tags["ns/app0:"+strings.Replace(subject, ":", "-", 1)]
			if hasFallback == api {
				t.Errorf("referrers API %v: fallback tag pushed %v (tags %v)", api, hasFallback, keys(s.Tags))
			}
			checkSeeded(t, r, s)

			d, err := name.NewDigest(r.Host + "/ns/app0@" + subject)
			if err != nil {
				t.Fatal(err)
			}
			idx, err := remote.Referrers(d, r.RemoteOptions()...)
			if err != nil {
				t.Fatal(err)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			// go-containerregistry's registry reports the config media type
			// as artifactType, not the manifest's artifactType.
			if len(im.Manifests) != 1 || "ns/app0@"+im.Manifests[0].Digest.String() != s.Untagged[0] ||
				(im.Manifests[0].ArtifactType != SBOMArtifactType && !(api && im.Manifests[0].ArtifactType == OCIEmptyConfig)) {
				t.Errorf("referrers of %s: %+v, want %v", subject, im.Manifests, s.Untagged)
			}
		})
	}
}

func TestSeedRejectsAnEmptyCorpus(t *testing.T) {
	if _, err := Seed(context.Background(), "127.0.0.1:1", nil, Corpus{}); err == nil {
		t.Error("no error for a corpus without namespaces")
	}
}

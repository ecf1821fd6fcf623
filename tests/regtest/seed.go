package regtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// Media types of the artifacts Seed pushes.
const (
	CosignSignatureLayer = "application/vnd.dev.cosign.simplesigning.v1+json"
	HelmConfig           = "application/vnd.cncf.helm.config.v1+json"
	HelmChartContent     = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	SBOMArtifactType     = "application/vnd.example.sbom"
	OCIEmptyConfig       = "application/vnd.oci.empty.v1+json"
)

// Corpus describes what Seed pushes.
//
// Plain images are pushed to <ns>/app<i>:v<j> for every namespace, counting
// from 0: i in 0..ReposPerNS-1, j in 0..TagsPerRepo-1. Every image has three layers: a random
// base layer common to the whole corpus, one of two further shared layers
// (so cross-repository mounts pay off) and a layer of its own. Images
// alternate between Docker schema 2 and OCI media types.
//
// The options add, with ns0 the first namespace:
//
//   - MultiArch: <ns>/app0:v0 of every namespace is an index with linux/amd64
//     and linux/arm64 children (platforms in the index descriptors): a Docker
//     manifest list in the 1st, 3rd, ... namespace, an OCI index in the
//     others.
//   - Nested: <ns0>/app0:nested, an OCI index holding an OCI index (of
//     linux/amd64 and linux/arm64 images) and a linux/amd64 image.
//   - Signature: a cosign-style signature of <ns0>/app0:v0 at
//     <ns0>/app0:sha256-<hex>.sig.
//   - HelmChart: the Helm chart <ns0>/charts/mychart:0.1.0.
//   - Referrer: an OCI 1.1 artifact (artifactType SBOMArtifactType) whose
//     subject is the last tag of <ns0>/app0, pushed by digest to
//     <ns0>/app0. On a registry without the referrers API (GET
//     /v2/<repo>/referrers/<digest> answers 404, e.g. distribution 2.8) the
//     referrers tag-schema index is pushed too, at
//     <ns0>/app0:sha256-<hex of the subject>.
//   - Zstd: <ns0>/app0:zstd, an OCI image whose own layer is a
//     zstd-compressed tar (application/vnd.oci.image.layer.v1.tar+zstd).
type Corpus struct {
	Namespaces  []string // at least one
	ReposPerNS  int      // default 1
	TagsPerRepo int      // default 1
	LayerSize   int64    // bytes of random content per layer; default 1024

	MultiArch bool
	Signature bool
	HelmChart bool
	Referrer  bool
	Nested    bool
	Zstd      bool
}

// Seeded is what Seed pushed.
type Seeded struct {
	// Tags maps every tag pushed, "ns/repo:tag" (no host), to the digest of
	// its manifest; signature and referrers fallback tags included.
	Tags map[string]string

	// Untagged lists the manifests pushed by digest only, as
	// "ns/repo@digest" (the Referrer artifact).
	Untagged []string

	// Bytes is the total size of the distinct blobs pushed (layers and
	// config blobs, not manifests), each counted once however many
	// repositories hold it.
	Bytes int64
}

// Seed pushes the corpus c to the registry host (host:port) with the given
// remote options (authentication, transport); see Corpus for the layout. It
// targets test registries: like any go-containerregistry client it tries
// HTTPS first and falls back to plain HTTP.
func Seed(ctx context.Context, host string, opt []remote.Option, c Corpus) (Seeded, error) {
	if len(c.Namespaces) == 0 {
		return Seeded{}, errors.New("regtest: Corpus.Namespaces is empty")
	}
	if c.ReposPerNS <= 0 {
		c.ReposPerNS = 1
	}
	if c.TagsPerRepo <= 0 {
		c.TagsPerRepo = 1
	}
	if c.LayerSize <= 0 {
		c.LayerSize = 1024
	}
	s := &seeder{
		host:  host,
		opt:   slices.Clone(opt),
		c:     c,
		tags:  map[string]string{},
		blobs: map[v1.Hash]int64{},
	}
	for range 3 {
		l, err := random.Layer(c.LayerSize, types.DockerLayer)
		if err != nil {
			return Seeded{}, err
		}
		s.shared = append(s.shared, l)
	}

	// Repositories are pushed concurrently, the tags of one in order.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for n, ns := range c.Namespaces {
		for i := range c.ReposPerNS {
			g.Go(func() error {
				return s.seedRepo(gctx, n, fmt.Sprintf("%s/app%d", ns, i), i)
			})
		}
	}
	if err := g.Wait(); err != nil {
		return Seeded{}, err
	}

	ns0 := c.Namespaces[0] + "/app0"
	steps := []struct {
		on bool
		do func() error
	}{
		{c.Nested, func() error { return s.seedNested(ctx, ns0) }},
		{c.Signature, func() error { return s.seedSignature(ctx, ns0, "v0") }},
		{c.HelmChart, func() error { return s.seedChart(ctx, c.Namespaces[0]+"/charts/mychart") }},
		{c.Referrer, func() error { return s.seedReferrer(ctx, ns0, fmt.Sprintf("v%d", c.TagsPerRepo-1)) }},
		{c.Zstd, func() error { return s.seedZstd(ctx, ns0) }},
	}
	for _, st := range steps {
		if !st.on {
			continue
		}
		if err := st.do(); err != nil {
			return Seeded{}, err
		}
	}

	out := Seeded{Tags: s.tags, Untagged: s.untagged}
	for _, n := range s.blobs {
		out.Bytes += n
	}
	return out, nil
}

// seeder holds the state of one Seed call.
type seeder struct {
	host   string
	opt    []remote.Option
	c      Corpus
	shared []v1.Layer // random layers shared by images of every repository

	mu       sync.Mutex
	tags     map[string]string // "ns/repo:tag" -> digest
	blobs    map[v1.Hash]int64 // distinct blobs pushed -> size
	untagged []string          // "ns/repo@digest"
}

// seedRepo pushes the tags v0..v<N-1> of repo, the nsIndex-th namespace's
// repoIndex-th repository.
func (s *seeder) seedRepo(ctx context.Context, nsIndex int, repo string, repoIndex int) error {
	for j := range s.c.TagsPerRepo {
		tag := fmt.Sprintf("v%d", j)
		if s.c.MultiArch && repoIndex == 0 && j == 0 {
			idx, err := s.multiArch(repo+":"+tag, nsIndex%2 == 1)
			if err != nil {
				return err
			}
			if err := s.pushIndex(ctx, repo, tag, idx); err != nil {
				return err
			}
			continue
		}
		img, err := s.image(repo+":"+tag, (repoIndex+j)%2 == 1, "amd64", s.shared[1+repoIndex%2])
		if err != nil {
			return err
		}
		if err := s.pushImage(ctx, repo, tag, img); err != nil {
			return err
		}
	}
	return nil
}

// image builds a linux/<arch> image of three layers: the corpus-wide base,
// shared, and a random layer of its own. label makes its config unique.
func (s *seeder) image(label string, oci bool, arch string, shared v1.Layer) (v1.Image, error) {
	layerType := types.DockerLayer
	if oci {
		layerType = types.OCILayer
	}
	own, err := random.Layer(s.c.LayerSize, layerType)
	if err != nil {
		return nil, err
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      v1.Time{Time: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		Config:       v1.Config{Labels: map[string]string{"io.regmigrate.test.ref": label}},
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	img, err = mutate.AppendLayers(img, asType(s.shared[0], layerType), asType(shared, layerType), own)
	if err != nil {
		return nil, err
	}
	if oci {
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	return img, nil
}

// multiArch builds an index of a linux/amd64 and a linux/arm64 image: a
// Docker manifest list of Docker images, or an OCI index of OCI images.
func (s *seeder) multiArch(label string, oci bool) (v1.ImageIndex, error) {
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := s.image(label+"/"+arch, oci, arch, s.shared[1])
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	mt := types.DockerManifestList
	if oci {
		mt = types.OCIImageIndex
	}
	return mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), mt), nil
}

// seedNested pushes repo:nested, an OCI index holding an OCI index and an
// image.
func (s *seeder) seedNested(ctx context.Context, repo string) error {
	inner, err := s.multiArch(repo+":nested/inner", true)
	if err != nil {
		return err
	}
	img, err := s.image(repo+":nested", true, "amd64", s.shared[2])
	if err != nil {
		return err
	}
	outer := mutate.IndexMediaType(mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: inner},
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	), types.OCIImageIndex)
	return s.pushIndex(ctx, repo, "nested", outer)
}

// seedSignature pushes a cosign-style signature of repo:tag at the tag
// sha256-<hex>.sig: an OCI manifest with one simple-signing payload layer
// carrying a (fake) signature annotation.
func (s *seeder) seedSignature(ctx context.Context, repo, tag string) error {
	subject, err := s.digest(repo + ":" + tag)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": s.host + "/" + repo},
			"image":    map[string]string{"docker-manifest-digest": subject.String()},
			"type":     "cosign container image signature",
		},
		"optional": nil,
	})
	if err != nil {
		return err
	}
	sig := make([]byte, 64)
	_, _ = rand.Read(sig)
	layer := blob{mediaType: CosignSignatureLayer, data: payload, annotations: map[string]string{
		"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig),
	}}
	payloadDesc := layer.descriptor()
	config, err := json.Marshal(v1.ConfigFile{
		RootFS:  v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{payloadDesc.Digest}},
		History: []v1.History{{Created: v1.Time{Time: time.Time{}}}},
	})
	if err != nil {
		return err
	}
	_, err = s.pushArtifact(ctx, repo, tagOf(subject)+".sig", v1.Manifest{},
		blob{mediaType: types.OCIConfigJSON, data: config}, layer)
	return err
}

// seedChart pushes a Helm chart the way `helm push` does.
func (s *seeder) seedChart(ctx context.Context, repo string) error {
	const chartYAML = "apiVersion: v2\nname: mychart\nversion: 0.1.0\ndescription: regmigrate test chart\ntype: application\n"
	tgz, err := tarGz(map[string]string{
		"mychart/Chart.yaml":  chartYAML,
		"mychart/values.yaml": "replicaCount: 1\n",
	})
	if err != nil {
		return err
	}
	config := `{"apiVersion":"v2","name":"mychart","version":"0.1.0","description":"regmigrate test chart","type":"application"}`
	_, err = s.pushArtifact(ctx, repo, "0.1.0",
		v1.Manifest{Annotations: map[string]string{
			"org.opencontainers.image.title":   "mychart",
			"org.opencontainers.image.version": "0.1.0",
		}},
		blob{mediaType: HelmConfig, data: []byte(config)},
		blob{mediaType: HelmChartContent, data: tgz},
	)
	return err
}

// seedReferrer pushes, by digest, an SBOM artifact whose subject is
// repo:tag. go-containerregistry's writer asks the registry for
// /v2/<repo>/referrers/<subject>; when that answers 404 it maintains the
// referrers tag-schema index (tag sha256-<hex>), which is then recorded.
func (s *seeder) seedReferrer(ctx context.Context, repo, tag string) error {
	ref, err := s.ref(repo + ":" + tag)
	if err != nil {
		return err
	}
	subject, err := remote.Head(ref, s.opts(ctx)...)
	if err != nil {
		return fmt.Errorf("head %s: %w", ref, err)
	}
	sbom := fmt.Sprintf(`{"spdxVersion":"SPDX-2.3","name":%q,"SPDXID":"SPDXRef-DOCUMENT"}`, repo+":"+tag)
	d, err := s.pushArtifact(ctx, repo, "",
		v1.Manifest{
			ArtifactType: SBOMArtifactType,
			Subject:      &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
			Annotations:  map[string]string{"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
		},
		blob{mediaType: OCIEmptyConfig, data: []byte("{}")},
		blob{mediaType: "application/spdx+json", data: []byte(sbom)},
	)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.untagged = append(s.untagged, repo+"@"+d.String())
	s.mu.Unlock()

	fallback := tagOf(subject.Digest)
	fref, err := s.ref(repo + ":" + fallback)
	if err != nil {
		return err
	}
	desc, err := remote.Head(fref, s.opts(ctx)...)
	var terr *transport.Error
	switch {
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		return nil // the registry has the referrers API: no fallback tag
	case err != nil:
		return fmt.Errorf("head %s: %w", fref, err)
	}
	s.record(repo+":"+fallback, desc.Digest)
	return nil
}

// blob is the content of an artifact's config or layer.
type blob struct {
	mediaType   types.MediaType
	data        []byte
	annotations map[string]string
}

func (b blob) descriptor() v1.Descriptor {
	h, n, _ := v1.SHA256(bytes.NewReader(b.data))
	return v1.Descriptor{MediaType: b.mediaType, Size: n, Digest: h, Annotations: b.annotations}
}

// pushArtifact pushes an OCI image manifest built from m (its annotations,
// artifactType and subject) with the given config and layers, at repo:tag,
// or by digest when tag is "". It returns the manifest digest.
func (s *seeder) pushArtifact(ctx context.Context, repo, tag string, m v1.Manifest, config blob, layers ...blob) (v1.Hash, error) {
	r, err := name.NewRepository(repo, name.WithDefaultRegistry(s.host), name.Insecure)
	if err != nil {
		return v1.Hash{}, err
	}
	m.SchemaVersion = 2
	m.MediaType = types.OCIManifestSchema1
	m.Config = config.descriptor()
	m.Layers = []v1.Descriptor{}
	for _, b := range append([]blob{config}, layers...) {
		if err := again(ctx, func() error { return remote.WriteLayer(r, static.NewLayer(b.data, b.mediaType), s.opts(ctx)...) }); err != nil {
			return v1.Hash{}, fmt.Errorf("push blob to %s: %w", r, err)
		}
		s.countBlob(b.descriptor().Digest, int64(len(b.data)))
	}
	for _, b := range layers {
		m.Layers = append(m.Layers, b.descriptor())
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return v1.Hash{}, err
	}
	d, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return v1.Hash{}, err
	}
	var ref name.Reference = r.Digest(d.String())
	if tag != "" {
		ref = r.Tag(tag)
	}
	// The fallback must stay on whatever the caller's options say, so that
	// registries without the referrers API get the tag-schema index.
	opt := append(s.opts(ctx), remote.WithReferrersTagFallback(true))
	if err := again(ctx, func() error { return remote.Put(ref, rawManifest{raw, m.MediaType}, opt...) }); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	if tag != "" {
		s.record(repo+":"+tag, d)
	}
	return d, nil
}

// rawManifest is a serialized manifest remote.Put can push.
type rawManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }

func (s *seeder) pushImage(ctx context.Context, repo, tag string, img v1.Image) error {
	ref, err := s.ref(repo + ":" + tag)
	if err != nil {
		return err
	}
	if err := again(ctx, func() error { return remote.Write(ref, img, s.opts(ctx)...) }); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	if err := s.countImage(img); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	s.record(repo+":"+tag, d)
	return nil
}

func (s *seeder) pushIndex(ctx context.Context, repo, tag string, idx v1.ImageIndex) error {
	ref, err := s.ref(repo + ":" + tag)
	if err != nil {
		return err
	}
	if err := again(ctx, func() error { return remote.WriteIndex(ref, idx, s.opts(ctx)...) }); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	if err := s.countIndex(idx); err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	s.record(repo+":"+tag, d)
	return nil
}

// opts returns the caller's remote options bound to ctx.
func (s *seeder) opts(ctx context.Context) []remote.Option {
	return append(slices.Clone(s.opt), remote.WithContext(ctx))
}

// countImage adds an image's config and layers to the distinct blobs.
func (s *seeder) countImage(img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	s.countBlob(m.Config.Digest, m.Config.Size)
	for _, l := range m.Layers {
		s.countBlob(l.Digest, l.Size)
	}
	return nil
}

// countIndex adds the blobs of every image an index holds, recursively.
func (s *seeder) countIndex(idx v1.ImageIndex) error {
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range m.Manifests {
		if d.MediaType.IsIndex() {
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			if err := s.countIndex(child); err != nil {
				return err
			}
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return err
		}
		if err := s.countImage(img); err != nil {
			return err
		}
	}
	return nil
}

func (s *seeder) countBlob(d v1.Hash, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[d] = size
}

func (s *seeder) record(tagRef string, d v1.Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tags[tagRef] = d.String()
}

// digest returns the digest Seed recorded for "ns/repo:tag".
func (s *seeder) digest(tagRef string) (v1.Hash, error) {
	s.mu.Lock()
	d, ok := s.tags[tagRef]
	s.mu.Unlock()
	if !ok {
		return v1.Hash{}, fmt.Errorf("regtest: %s was not pushed", tagRef)
	}
	return v1.NewHash(d)
}

// ref parses "ns/repo:tag" on the seeded registry. name.Insecure only
// allows the plain-HTTP fallback; HTTPS is tried first.
func (s *seeder) ref(tagRef string) (name.Reference, error) {
	return name.ParseReference(s.host+"/"+tagRef, name.Insecure)
}

// tagOf is the referrers tag-schema tag of a digest: sha256-<hex>.
func tagOf(d v1.Hash) string { return strings.Replace(d.String(), ":", "-", 1) }

// asType presents layer l with media type mt: the same blob, described as
// a Docker or an OCI layer.
func asType(l v1.Layer, mt types.MediaType) v1.Layer {
	if cur, err := l.MediaType(); err == nil && cur == mt {
		return l
	}
	return typedLayer{l, mt}
}

type typedLayer struct {
	v1.Layer
	mt types.MediaType
}

func (l typedLayer) MediaType() (types.MediaType, error) { return l.mt, nil }

// tarGz builds a gzipped tar archive of the given files.
func tarGz(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		body := files[n]
		hdr := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(body)), ModTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// seedZstd pushes repo:zstd, an OCI image on the corpus base with a layer
// of its own compressed with zstd.
func (s *seeder) seedZstd(ctx context.Context, repo string) error {
	tgz, err := tarGz(map[string]string{"zstd.txt": "compressed with zstd"})
	if err != nil {
		return err
	}
	gz, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return err
	}
	plain, err := io.ReadAll(gz)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(plain)), nil },
		tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		return err
	}
	img, err := s.image(repo+":zstd", true, "amd64", s.shared[1])
	if err != nil {
		return err
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return err
	}
	return s.pushImage(ctx, repo, "zstd", img)
}

// again runs a push up to three times. Seeding is idempotent, and the
// client that seeds (go-containerregistry) can, on a loaded machine, send
// a manifest PUT again after a token refresh with its body already spent
// (distribution v3: "MANIFEST_INVALID: request declared a Content-Length
// of 715 but only wrote 0 bytes"): a corpus that fails to seed says
// nothing about regmigrate.
func again(ctx context.Context, push func() error) error {
	var err error
	for i := range 3 {
		if err = push(); err == nil || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(i+1) * 200 * time.Millisecond)
	}
	return err
}

package ocilayout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/registry"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// failingReader delivers part of a blob, then fails: an interrupted
// download, or a verifying reader that found another digest.
type failingReader struct {
	r   io.Reader
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// A blob whose stream fails is never stored under its digest, and leaves
// no temporary file behind; a whole one is stored, and HasBlob says so.
func TestWriteBlobNeverStoresAPartialBlob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "l")
	l, err := Open(ctx, dir, Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	blob := []byte(strings.Repeat("layer-bytes ", 10000))
	d := registry.Descriptor{Digest: digestOf(blob), Size: int64(len(blob))}
	_, err = l.WriteBlob(ctx, d, &failingReader{r: strings.NewReader(string(blob)), n: len(blob) / 2, err: registry.ErrDigestMismatch})
	if !errors.Is(err, registry.ErrDigestMismatch) {
		t.Fatalf("WriteBlob of a failing stream: %v, want its error", err)
	}
	if ok, _ := l.HasBlob(ctx, d.Digest); ok {
		t.Fatal("a blob whose stream failed is in the layout")
	}
	left, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	if len(left) != 0 {
		t.Errorf("files left after a failed write: %v", left)
	}
	if _, err := l.WriteBlob(ctx, d, strings.NewReader(string(blob))); err != nil {
		t.Fatal(err)
	}
	if ok, _ := l.HasBlob(ctx, d.Digest); !ok {
		t.Fatal("a whole blob is not in the layout")
	}
	got, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d.Digest, "sha256:")))
	if err != nil || digestOf(got) != d.Digest {
		t.Errorf("the stored blob has digest %s (%v), want %s", digestOf(got), err, d.Digest)
	}
}

// Names other tools write: crane's ref.name carries the registry host,
// containerd's annotation, a bare tag (the repository is the directory's
// name); an entry with no name is kept out of the catalog.
func TestNamesOfOtherTools(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "My_Images")
	l, err := Open(ctx, dir, Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":2},"layers":[]}`)
	if err := l.PutManifest(ctx, "x", digestOf(m), registry.MediaOCIManifest, m); err != nil {
		t.Fatal(err)
	}
	idx := `{"schemaVersion":2,"manifests":[
	 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digestOf(m) + `","size":` + itoa(len(m)) + `,"annotations":{"org.opencontainers.image.ref.name":"registry.example:5000/team-a/app:v1"}},
	 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digestOf(m) + `","size":` + itoa(len(m)) + `,"annotations":{"io.containerd.image.name":"docker.io/library/alpine:3.20"}},
	 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digestOf(m) + `","size":` + itoa(len(m)) + `,"annotations":{"org.opencontainers.image.ref.name":"latest"}},
	 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digestOf(m) + `","size":` + itoa(len(m)) + `}]}`
	if err := os.WriteFile(filepath.Join(dir, IndexFile), []byte(idx), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	repos, _ := l.Catalog(ctx)
	if got, want := strings.Join(repos, ","), "library/alpine,my-images,team-a/app"; got != want {
		t.Errorf("catalog %s, want %s", got, want)
	}
	for repo, tag := range map[string]string{"team-a/app": "v1", "library/alpine": "3.20", "my-images": "latest"} {
		d, err := l.HeadManifest(ctx, repo, tag)
		if err != nil || d.Digest != digestOf(m) {
			t.Errorf("%s:%s: %v %s", repo, tag, err, d.Digest)
		}
	}
	if n := len(l.Unnamed()); n != 1 {
		t.Errorf("%d unnamed entries, want 1", n)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// A damaged manifest file is refused, naming the file.
func TestDamagedManifestIsNamed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	l, err := Open(ctx, dir, Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	if err := l.PutManifest(ctx, "team-a/app", "v1", registry.MediaOCIIndex, m); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digestOf(m), "sha256:"))
	if err := os.WriteFile(p, []byte(strings.Replace(string(m), "2", "3", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = l.GetManifest(ctx, "team-a/app", "v1")
	if !errors.Is(err, registry.ErrDigestMismatch) || !strings.Contains(err.Error(), p) {
		t.Errorf("reading a damaged manifest: %v, want a digest mismatch naming %s", err, p)
	}
}

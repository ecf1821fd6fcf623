package ocilayout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/regmigrate/regmigrate/steps/registry"
)

// putImage writes an image (a shared layer, its own layer and config,
// then its manifest under repo:tag) the way the copy engine does: blobs
// first, the manifest last.
func putImage(ctx context.Context, l *Layout, shared []byte, repo, tag string) (string, error) {
	own := []byte("layer of " + repo + ":" + tag)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":"` + repo + tag + `"}`)
	for _, b := range [][]byte{shared, own, cfg} {
		if _, err := l.WriteBlob(ctx, registry.Descriptor{Digest: digestOf(b), Size: int64(len(b))}, strings.NewReader(string(b))); err != nil {
			return "", err
		}
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[`+
		`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d},{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		registry.MediaOCIManifest, digestOf(cfg), len(cfg), digestOf(shared), len(shared), digestOf(own), len(own))
	if err := l.PutManifest(ctx, repo, tag, registry.MediaOCIManifest, []byte(m)); err != nil {
		return "", err
	}
	return digestOf([]byte(m)), nil
}

// Several writers at once in one layout (a Workflow's shard pods on one
// volume), each with its own index part, then Merge: index.json names
// every image of every writer, a blob they all wrote is stored once, the
// parts and temporary files are gone, and the layout opens as any other.
// A writer started again (a retried pod) reads its part back and adds to
// it; a second Merge changes nothing.
func TestShardWritersThenMerge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "export")
	shared := []byte(strings.Repeat("base layer ", 50000))
	const writers, perWriter = 4, 6
	want := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := Open(ctx, dir, Options{Create: true, Part: fmt.Sprintf("ns-%d", w)})
			if err != nil {
				errs <- err
				return
			}
			for i := range perWriter {
				repo, tag := fmt.Sprintf("ns-%d/app-%d", w, i%2), fmt.Sprintf("v%d", i)
				d, err := putImage(ctx, l, shared, repo, tag)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				want[repo+":"+tag] = d
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Before the merge, index.json names nothing: the entries are in the parts.
	if l, err := Open(ctx, dir, Options{}); err != nil || len(l.Tags()) != 0 {
		t.Fatalf("index.json before the merge: %v, %d names; want none", err, len(l.Tags()))
	}
	// A retried writer: its part is read back over index.json.
	l, err := Open(ctx, dir, Options{Create: true, Part: "ns-0"})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(l.Tags()); got != perWriter {
		t.Fatalf("a writer opened again sees %d names, want its %d", got, perWriter)
	}
	d, err := putImage(ctx, l, shared, "ns-0/app-0", "v99")
	if err != nil {
		t.Fatal(err)
	}
	want["ns-0/app-0:v99"] = d

	res, err := Merge(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Parts) != writers || res.Named != len(want) {
		t.Errorf("merge: %+v, want %d parts and %d names", res, writers, len(want))
	}
	merged, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := merged.Tags()
	if len(got) != len(want) {
		t.Errorf("the merged layout names %d images, want %d", len(got), len(want))
	}
	for name, d := range want {
		if got[name] != d {
			t.Errorf("%s: %q in the merged layout, want %s", name, got[name], d)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digestOf(shared), "sha256:"))); err != nil {
		t.Errorf("the shared layer: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "regmigrate", "parts", "*"))
	temps, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", tmpPrefix+"*"))
	if len(left)+len(temps) != 0 {
		t.Errorf("left after the merge: parts %v, temporary files %v", left, temps)
	}
	before, _ := os.ReadFile(filepath.Join(dir, IndexFile))
	if res, err := Merge(dir); err != nil || len(res.Parts) != 0 || res.Named != len(want) {
		t.Errorf("a second merge: %+v, %v; want nothing to fold and %d names", res, err, len(want))
	}
	if after, _ := os.ReadFile(filepath.Join(dir, IndexFile)); string(after) != string(before) {
		t.Error("a second merge changed index.json")
	}
}

// A part naming a manifest whose file is gone is refused, naming the part
// and the digest; index.json and the parts stay as they were.
func TestMergeRefusesAPartWithoutItsManifest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	l, err := Open(ctx, dir, Options{Create: true, Part: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := putImage(ctx, l, []byte("shared"), "team-a/app", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, IndexFile))
	_, err = Merge(dir)
	if !errors.Is(err, ErrPartBlobMissing) || !strings.Contains(err.Error(), "team-a.json") || !strings.Contains(err.Error(), d) {
		t.Fatalf("merge: %v, want %v naming team-a.json and %s", err, ErrPartBlobMissing, d)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, IndexFile)); string(after) != string(before) {
		t.Error("a refused merge changed index.json")
	}
	if _, err := os.Stat(filepath.Join(dir, "regmigrate", "parts", "team-a.json")); err != nil {
		t.Errorf("a refused merge removed the part: %v", err)
	}
}

// A part name that could leave the parts folder is refused.
func TestPartNameIsChecked(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"../x", "a/b", ".hidden"} {
		if _, err := Open(context.Background(), t.TempDir(), Options{Create: true, Part: name}); err == nil {
			t.Errorf("part %q accepted", name)
		}
	}
}

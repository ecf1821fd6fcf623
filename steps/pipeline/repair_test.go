package pipeline_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/mirror"
	"github.com/regmigrate/regmigrate/steps/pipeline"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/steps/verify"
	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// blobFile is where a filesystem distribution registry keeps a blob's bytes.
func blobFile(r *regtest.Registry, digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(r.DataDir, "docker/registry/v2/blobs/sha256", hex[:2], hex, "data")
}

func digestOf(t *testing.T, l v1.Layer) string {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// shard is one shard directory over real registries, run through the
// per-directory API as regmigrate run and the step pods do.
type shard struct {
	t      *testing.T
	dir    string
	client *registry.Client
}

func (s shard) mirror() mirror.Result {
	s.t.Helper()
	res, err := pipeline.MirrorShard(context.Background(), pipeline.MirrorShardOptions{ShardDir: s.dir, Mirror: mirror.Options{Client: s.client}})
	if err != nil {
		s.t.Fatal(err)
	}
	return res
}

func (s shard) verify(mode string) verify.Result {
	s.t.Helper()
	res, err := pipeline.VerifyShard(context.Background(), pipeline.VerifyShardOptions{ShardDir: s.dir, Client: s.client, Mode: mode, Observed: true})
	if err != nil {
		s.t.Fatal(err)
	}
	return res
}

func statusOf(res mirror.Result) map[string]string {
	out := map[string]string{}
	for _, im := range res.Images {
		out[im.Target[strings.Index(im.Target, "/")+1:]] = im.Status
	}
	return out
}

// A layer deleted from the target and a layer corrupted in place: the
// default verification of a rerun trusts the tags (they are in place); a
// full verification finds both and names them; the rerun after it copies
// again what failed (the index's child walked although present, the
// missing layer uploaded, the corrupt one uploaded again, once per
// repository however many images use it) and checks it in full. The
// registry (distribution, both versions, with or without its cache) keeps its corrupt copy of a blob
// it already stores, whatever is uploaded: the verification says so and
// where to delete it, and the repair is still pending if the next pass
// dies before verifying; once the blob's data is deleted, the rerun
// repairs it and nothing is copied after that.
func TestARerunRepairsWhatVerificationFound(t *testing.T) {
	t.Parallel()
	for variant, o := range map[string]regtest.Options{
		"distribution 2.8": {},
		"distribution v3":  {Version: regtest.DistributionV3Version},
		// which still answers HEAD, and GET with no bytes, for a blob
		// whose data is gone: the repair uploads it regardless
		"distribution 2.8 with its blob descriptor cache": {BlobDescriptorCache: true},
	} {
		t.Run(variant, func(t *testing.T) {
			t.Parallel()
			src := regtest.StartDistribution(t, regtest.Options{})
			dst := regtest.StartDistribution(t, o)
			px := faultproxy.New(t, "http://"+dst.Host)

			// ns/app:v1 and ns/app:v2 share a layer that will be corrupted;
			// ns/multi:v1 is an index whose child loses a layer.
			shared, _ := random.Layer(16<<10, types.DockerLayer)
			var apps []v1.Image
			for range 2 {
				own, _ := random.Layer(8<<10, types.DockerLayer)
				img, err := mutate.AppendLayers(empty.Image, shared, own)
				if err != nil {
					t.Fatal(err)
				}
				apps = append(apps, img)
			}
			idx, err := random.Index(8<<10, 2, 2)
			if err != nil {
				t.Fatal(err)
			}
			var items []artifacts.Item
			add := func(ref string, digest v1.Hash) {
				s, _ := imageref.Parse(src.Host + "/" + ref)
				s.Digest = digest.String()
				d, _ := imageref.Parse(px.Host + "/" + ref)
				items = append(items, artifacts.Item{Source: s, Target: d})
			}
			for i, img := range apps {
				ref := "ns/app:v" + string(rune('1'+i))
				r, _ := name.ParseReference(src.Host+"/"+ref, name.Insecure)
				if err := remote.Write(r, img); err != nil {
					t.Fatal(err)
				}
				d, _ := img.Digest()
				add(ref, d)
			}
			r, _ := name.ParseReference(src.Host+"/ns/multi:v1", name.Insecure)
			if err := remote.WriteIndex(r, idx); err != nil {
				t.Fatal(err)
			}
			id, _ := idx.Digest()
			add("ns/multi:v1", id)
			im, _ := idx.IndexManifest()
			child, _ := idx.Image(im.Manifests[1].Digest)
			childLayers, _ := child.Layers()
			lost := digestOf(t, childLayers[0])
			corrupt := digestOf(t, shared)

			dir := t.TempDir()
			if err := artifacts.WriteFile(filepath.Join(dir, contract.ShardMapping), artifacts.FormatMapping(items)); err != nil {
				t.Fatal(err)
			}
			s := shard{t: t, dir: dir, client: registry.New(registry.Options{Insecure: registry.InsecureHosts(src.Host, px.Host)})}
			if res := s.mirror(); res.Copied != 3 {
				t.Fatalf("first copy: %+v", statusOf(res))
			}
			if v := s.verify(verify.ModeFull); !v.OK() {
				t.Fatalf("first full verification: %+v", v.Images)
			}

			// Behind the registry's back: one layer's data gone, one changed.
			if err := os.Remove(blobFile(dst, lost)); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(blobFile(dst, corrupt))
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0xff
			if err := os.WriteFile(blobFile(dst, corrupt), b, 0o644); err != nil {
				t.Fatal(err)
			}

			if res := s.mirror(); res.Skipped != 3 {
				t.Fatalf("rerun after a passing verification: %+v, want everything skipped", statusOf(res))
			}
			if v := s.verify(verify.ModeAuto); !v.OK() {
				t.Fatalf("auto verification of a no-op rerun asks only the tags: %+v", v.Images)
			}
			v := s.verify(verify.ModeFull)
			if v.Failed != 3 {
				t.Fatalf("full verification: %+v, want the three images failed", v.Images)
			}
			for _, c := range v.Images {
				switch {
				case strings.HasSuffix(c.Target, "ns/multi:v1"):
					// With its cache the registry answers a GET of the lost
					// blob with headers and no body, which the proxy in
					// front turns into a connection closed: unreadable.
					named := append(c.Missing, c.Unread...)
					if len(named) != 1 || named[0] != "blob "+lost || !strings.Contains(c.Error, lost) {
						t.Errorf("%s: missing %v unread %v (%s), want the deleted layer %s", c.Target, c.Missing, c.Unread, c.Error, lost)
					}
				default:
					if len(c.Corrupt) != 1 || c.Corrupt[0] != "blob "+corrupt || !strings.Contains(c.Error, corrupt) || !strings.Contains(c.Error, c.Target) {
						t.Errorf("%s: corrupt %v (%s), want the corrupted layer %s named with the image", c.Target, c.Corrupt, c.Error, corrupt)
					}
				}
			}

			// The rerun repairs what it can.
			px.ResetStats()
			res := s.mirror()
			if res.Copied != 3 {
				t.Fatalf("repairing rerun: %+v, want the three images copied again", statusOf(res))
			}
			for _, im := range res.Images {
				if im.Repair == nil || im.Repair.Reason == "" {
					t.Errorf("%s: no repair recorded in mirror.json", im.Target)
				}
			}
			uploads := 0
			for _, u := range px.RequestURIs() {
				if strings.Contains(u, "/blobs/uploads/") && strings.Contains(u, strings.TrimPrefix(corrupt, "sha256:")) {
					uploads++
				}
			}
			if uploads != 1 {
				t.Errorf("the corrupt layer was uploaded %d times, want once for its repository", uploads)
			}
			v = s.verify(verify.ModeAuto)
			for _, c := range v.Images {
				switch {
				case strings.HasSuffix(c.Target, "ns/multi:v1"):
					if c.Status != verify.Passed {
						t.Errorf("%s after the repair: %s", c.Target, c.Error)
					}
				case c.Status == verify.Passed:
					t.Errorf("%s passed, but the registry kept its corrupt copy", c.Target)
				case !strings.Contains(c.Error, "still serves the corrupt copy") || !strings.Contains(c.Error, "docker/registry/v2/blobs/sha256/"):
					t.Errorf("%s: %q, want it to say the registry kept the corrupt copy and where to delete it", c.Target, c.Error)
				}
			}

			// A pass that copies and then dies before verifying leaves the
			// repair pending.
			s.mirror()
			if _, err := os.Stat(filepath.Join(dir, contract.VerifyResult)); !os.IsNotExist(err) {
				t.Fatalf("verify.json of the earlier pass still there: %v", err)
			}
			pending, err := pipeline.Repairs(dir)
			if err != nil || len(pending) != 2 {
				t.Fatalf("repairs pending after an unverified pass: %v %v, want the two corrupt images", pending, err)
			}

			// Do what the message says; the rerun repairs it.
			if err := os.Remove(blobFile(dst, corrupt)); err != nil {
				t.Fatal(err)
			}
			if res := s.mirror(); res.Copied != 2 {
				t.Fatalf("rerun after the corrupt blob was deleted: %+v", statusOf(res))
			}
			if v := s.verify(verify.ModeAuto); !v.OK() {
				t.Fatalf("after the repair: %+v", v.Images)
			}
			if v := s.verify(verify.ModeFull); !v.OK() {
				t.Fatalf("full verification after the repair: %+v", v.Images)
			}
			if res := s.mirror(); res.Skipped != 3 {
				t.Fatalf("rerun after a passing verification: %+v, want everything skipped", statusOf(res))
			}
		})
	}
}

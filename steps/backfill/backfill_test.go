package backfill_test

import (
	"context"
	"errors"
	"net/http/httptest"
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
	"k8s.io/client-go/rest"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/backfill"
	"github.com/regmigrate/regmigrate/steps/backfillresult"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageapi"
	"github.com/regmigrate/regmigrate/steps/imagecheck"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/steps/verify"
	double "github.com/regmigrate/regmigrate/tests/imageapi"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

const group = "image.alauda.io"

type env struct {
	d     *double.Double
	api   *imageapi.Client
	reg   *registry.Client
	host  string
	items []artifacts.Item
}

// setup: a registry holding two images and a manifest list, and the Image
// API double reached through client-go.
func setup(t *testing.T) *env {
	t.Helper()
	r := regtest.StartInProcess(t)
	d := double.New(double.Options{Group: group})
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	cfg := &rest.Config{Host: srv.URL, QPS: 500, Burst: 1000}
	cfg.ContentType, cfg.AcceptContentTypes = "application/json", "application/json"
	api, err := imageapi.New(cfg, "")
	if err != nil {
		t.Fatalf("discovering the Image API of the double: %v", err)
	}
	e := &env{d: d, api: api, reg: registry.New(registry.Options{Insecure: anyHost}), host: r.Host}
	push := func(repo, tag string, img v1.Image) {
		ref, _ := name.ParseReference(r.Host + "/" + repo + ":" + tag)
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		dg, _ := img.Digest()
		e.items = append(e.items, item(t, r.Host+"/"+repo+":"+tag, dg.String()))
	}
	a, _ := random.Image(512, 1)
	b, _ := random.Image(512, 1)
	push("team-a/api", "v1", a)
	push("team-b/web", "v2", b)
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, _ := random.Image(256, 1)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.AppendManifests(empty.Index, adds...)
	ref, _ := name.ParseReference(r.Host + "/team-a/multi:v3")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	dg, _ := idx.Digest()
	e.items = append(e.items, item(t, r.Host+"/team-a/multi:v3", dg.String()))
	return e
}

func item(t *testing.T, ref, digest string) artifacts.Item {
	t.Helper()
	r, err := imageref.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	src := r
	src.Digest = digest
	return artifacts.Item{Source: src, Target: r}
}

func (e *env) run(t *testing.T, items []artifacts.Item, metadata string) backfillresult.Result {
	t.Helper()
	res, err := backfill.Run(context.Background(), backfill.Options{API: e.api, Registry: e.reg, Items: items, MetadataDir: metadata})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestBackfillAppliesThenSkipsThenReappliesAChangedDigest(t *testing.T) {
	t.Parallel()
	e := setup(t)
	meta := t.TempDir()
	res := e.run(t, e.items, meta)
	if res.Applied != 3 || res.Failed != 0 || res.Success != 3 || res.API != group+"/v1" {
		t.Fatalf("first run %+v, want 3 applied", res)
	}
	for _, it := range e.items {
		tag, found, err := e.api.GetTag(context.Background(), it.Target.Namespace(), it.Target.Name(), it.Target.Tag)
		want := e.host + "/" + it.Target.Repository + "@" + it.Source.Digest
		if err != nil || !found || tag.Digest != it.Source.Digest || tag.Reference != want {
			t.Errorf("%s: ImageStreamTag %+v (found %v, err %v), want digest %s ref %s", it.Target, tag, found, err, it.Source.Digest, want)
		}
	}
	// The manifest list carries its children with platforms.
	img, ok := e.d.Image(e.items[2].Source.Digest)
	if !ok || len(img.DockerImageManifests) != 2 || img.DockerImageManifests[0].OS != "linux" {
		t.Errorf("Image of the manifest list: %+v, want two linux children", img)
	}
	// The audit trail of seed 000.
	for _, f := range []string{"team-a-api-v1.mapping.yaml", "team-a-api-v1.apply.txt", "team-a-api.imagestream.yaml"} {
		if _, err := os.Stat(filepath.Join(meta, f)); err != nil {
			t.Errorf("metadata/%s missing", f)
		}
	}
	y, _ := os.ReadFile(filepath.Join(meta, "team-a-api-v1.mapping.yaml"))
	if !strings.Contains(string(y), "kind: ImageStreamMapping") || !strings.Contains(string(y), "dockerImageManifestMediaType") {
		t.Errorf("mapping yaml:\n%s", y)
	}

	again := e.run(t, e.items, meta)
	if again.Skipped != 3 || again.Applied != 0 {
		t.Fatalf("second run %+v, want all skipped", again)
	}
	creates := e.d.CountRequests("create", "imagestreammappings")

	// team-b/web:v2 now points at another image: re-applied, the tag event prepended.
	c, _ := random.Image(512, 1)
	ref, _ := name.ParseReference(e.host + "/team-b/web:v2")
	if err := remote.Write(ref, c); err != nil {
		t.Fatal(err)
	}
	dg, _ := c.Digest()
	changed := append([]artifacts.Item(nil), e.items...)
	changed[1].Source.Digest = dg.String()
	third := e.run(t, changed, meta)
	if third.Applied != 1 || third.Skipped != 2 {
		t.Fatalf("third run %+v, want 1 applied 2 skipped", third)
	}
	if n := e.d.CountRequests("create", "imagestreammappings") - creates; n != 1 {
		t.Errorf("%d mappings created on the third run, want 1", n)
	}
	is, _ := e.d.ImageStream("team-b", "web")
	if len(is.Status.Tags) != 1 || len(is.Status.Tags[0].Items) != 2 || is.Status.Tags[0].Items[0].Image != dg.String() {
		t.Errorf("tag history %+v, want the new digest first of two events", is.Status.Tags)
	}
	checks := imagecheck.Checker{API: e.api, Jobs: 2}.CheckTags(context.Background(), []verify.TagExpect{{Target: changed[1].Target, Digest: dg.String()}, {Target: changed[0].Target, Digest: dg.String()}})
	if checks[0].Status != verify.Passed || checks[1].Status != verify.Failed {
		t.Errorf("verify: %+v, want the re-applied tag to pass and a wrong expectation to fail", checks)
	}
}

func TestBackfillFailuresAreRetriedOrReportedPerImage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	// A stream gone mid-run: the mapping's 404 makes backfill create it again.
	e.d.FailNext("create", "imagestreammappings", 404, 1)
	// Two conflicts are retried.
	e.d.FailNext("create", "imagestreammappings", 409, 2)
	res := e.run(t, e.items, "")
	if res.Applied != 3 || res.Failed != 0 {
		t.Fatalf("%+v: want 404 and 409 recovered", res)
	}

	// Forbidden: a clear error on that image, the others go on.
	e2 := setup(t)
	e2.d.FailNext("get", "imagestreams", 403, 1)
	res = e2.run(t, e2.items, "")
	if res.Failed != 1 || res.Applied != 2 {
		t.Fatalf("%+v: want 1 failed, 2 applied", res)
	}
	var failed backfillresult.ImageResult
	for _, im := range res.Images {
		if im.Action == backfillresult.ActionFailed {
			failed = im
		}
	}
	if !strings.Contains(failed.Error, "RBAC") || failed.Retryable {
		t.Errorf("forbidden image: %+v, want an error naming RBAC, not retryable", failed)
	}
	if res.ExitCode() == 0 {
		t.Error("exit code 0 with a failed image")
	}
}

func TestBackfillSkipsRepositoriesThatCannotBeImageStreams(t *testing.T) {
	t.Parallel()
	e := setup(t)
	deep := item(t, e.host+"/team/sub/app:v1", e.items[0].Source.Digest)
	res := e.run(t, []artifacts.Item{deep}, "")
	if res.Skipped != 1 || !strings.Contains(res.Images[0].Reason, "namespace/name") {
		t.Fatalf("%+v: want skipped with the reason", res)
	}
	if e.d.CountRequests("create", "") != 0 {
		t.Error("a deep repository caused writes to the Image API")
	}
}

func TestDiscoveryNamesWhatIsMissing(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(double.New(double.Options{Group: "example.com"}))
	t.Cleanup(srv.Close)
	_, err := imageapi.New(&rest.Config{Host: srv.URL}, "")
	if !errors.Is(err, imageapi.ErrNoImageAPI) || !strings.Contains(err.Error(), "--image-api") {
		t.Fatalf("err %v: want ErrNoImageAPI saying to give --image-api", err)
	}
}

// anyHost marks every registry insecure: the test registries speak plain
// HTTP on loopback, which the client uses only when told.
func anyHost(string) bool { return true }

// An audit file that cannot be written does not pass unnoticed: the
// metadata is applied, and the result names the missing record and fails.
func TestBackfillAuditFilesThatCannotBeWrittenAreReported(t *testing.T) {
	t.Parallel()
	e := setup(t)
	blocked := filepath.Join(t.TempDir(), "metadata")
	if err := os.WriteFile(blocked, []byte("a file where the folder should be"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := e.run(t, e.items, blocked)
	if res.Applied != len(e.items) {
		t.Fatalf("applied %d of %d: the metadata must be applied whatever happens to its record", res.Applied, len(e.items))
	}
	if len(res.AuditErrors) == 0 || !strings.Contains(res.AuditErrors[0], blocked) {
		t.Fatalf("audit errors %v: want the unwritable files named", res.AuditErrors)
	}
	if res.ExitCode() == contract.ExitOK {
		t.Error("exit 0 with an incomplete audit bundle")
	}
}

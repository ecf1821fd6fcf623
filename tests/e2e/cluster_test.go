package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/backfill"
	"github.com/regmigrate/regmigrate/steps/backfillresult"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageapi"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// grant binds a ClusterRole with the Image API verbs backfill needs to user.
func grant(t *testing.T, c *kubeapi.Cluster, group, user string) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	role := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
		"metadata": map[string]any{"name": "regmigrate-backfill"},
		"rules": []any{
			map[string]any{"apiGroups": []any{group}, "resources": []any{"imagestreams"}, "verbs": []any{"get", "create"}},
			map[string]any{"apiGroups": []any{group}, "resources": []any{"imagestreamtags", "images"}, "verbs": []any{"get"}},
			map[string]any{"apiGroups": []any{group}, "resources": []any{"imagestreammappings"}, "verbs": []any{"create"}},
		},
	}}
	binding := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
		"metadata": map[string]any{"name": "regmigrate-backfill-" + user},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "regmigrate-backfill"},
		"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}},
	}}
	rbac := schema.GroupVersion{Group: "rbac.authorization.k8s.io", Version: "v1"}
	if _, err := dyn.Resource(rbac.WithResource("clusterroles")).Create(context.Background(), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(rbac.WithResource("clusterrolebindings")).Create(context.Background(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestBackfillThroughARealAPIServer: regmigrate talks to a real
// kube-apiserver (authentication, RBAC) which proxies the Image API to the
// double registered as an aggregated APIService.
func TestBackfillThroughARealAPIServer(t *testing.T) {
	t.Parallel()
	cluster := kubeapi.Start(t)
	d := kubeapi.RegisterImageAPI(t, cluster, "image.alauda.io")
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, src, regtest.Corpus{Namespaces: []string{"team-a", "team-b"}, ReposPerNS: 2, TagsPerRepo: 3, LayerSize: 4 << 10, MultiArch: true})

	// A user without RBAC rights: the images are copied, the backfill fails
	// per image with an error that names the missing permission.
	nobody := cluster.UserKubeconfig(t, "nobody")
	out := filepath.Join(t.TempDir(), "denied")
	code, _, stderr := runCLI(t, nil, "run", "--from", src.Host, "--to", dst.Host, "--insecure", "--out", out, "--progress", "none", "--kubeconfig", nobody, "--image-api", "image.alauda.io/v1")
	if code == contract.ExitOK {
		t.Fatal("exit 0 for a user without RBAC rights")
	}
	rep := readReport(t, out)
	if rep.Failed != rep.Total || !strings.Contains(readFile(t, filepath.Join(out, "report.md")), "RBAC") {
		t.Errorf("denied run: %d of %d failed; report.md should name RBAC:\n%s\n%s", rep.Failed, rep.Total, readFile(t, filepath.Join(out, "report.md")), stderr)
	}
	if n := d.CountRequests("create", "imagestreammappings"); n != 0 {
		t.Errorf("the double saw %d mapping creates from a user RBAC denies", n)
	}
	assertMirrored(t, dst.Host, seeded.Tags)

	// With the verbs granted, the same user backfills everything (the API
	// group discovered), and the rerun applies nothing.
	grant(t, cluster, "image.alauda.io", "migrator")
	migrator := cluster.UserKubeconfig(t, "migrator")
	out = filepath.Join(t.TempDir(), "granted")
	if code, _, _ := runCLI(t, nil, "run", "--from", src.Host, "--to", dst.Host, "--insecure", "--out", out, "--progress", "none", "--kubeconfig", migrator); code != contract.ExitOK {
		t.Fatalf("granted run exit %d", code)
	}
	if b := readBackfill(t, out); b.Applied != len(seeded.Tags) || b.Failed != 0 {
		t.Errorf("backfill %+v, want %d applied", b, len(seeded.Tags))
	}
	for _, r := range d.Requests() {
		if r.Verb == "create" && r.Resource == "imagestreammappings" && r.User != "migrator" {
			t.Errorf("a mapping was created as %q, want the kubeconfig's user", r.User)
			break
		}
	}
	out = filepath.Join(t.TempDir(), "again")
	if code, _, _ := runCLI(t, nil, "run", "--from", src.Host, "--to", dst.Host, "--insecure", "--out", out, "--progress", "none", "--kubeconfig", migrator); code != contract.ExitOK {
		t.Fatalf("rerun exit %d", code)
	}
	if b := readBackfill(t, out); b.Skipped != len(seeded.Tags) {
		t.Errorf("rerun backfill %+v, want all %d skipped", b, len(seeded.Tags))
	}
	// kubectl sees what the runbook's users check.
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatal("kubectl not found on PATH: install a kubectl binary (any 1.3x release)")
	}
	kout, err := exec.Command("kubectl", "--kubeconfig", cluster.AdminKubeconfig, "get", "imagestreamtags.image.alauda.io", "-n", "team-a", "-o", "name").CombinedOutput()
	if err != nil || !strings.Contains(string(kout), "app0:v0") {
		t.Errorf("kubectl get imagestreamtags: %v\n%s", err, kout)
	}
}

// TestConcurrentShardsOfOneNamespaceDoNotConflict: a namespace split into
// parts is backfilled by parallel shards writing the same ImageStreams.
func TestConcurrentShardsOfOneNamespaceDoNotConflict(t *testing.T) {
	t.Parallel()
	cluster := kubeapi.Start(t)
	kubeapi.RegisterImageAPI(t, cluster, "image.openshift.io")
	reg := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, reg, regtest.Corpus{Namespaces: []string{"big"}, ReposPerNS: 2, TagsPerRepo: 10, LayerSize: 1 << 10})
	var items []artifacts.Item
	for ref, dg := range seeded.Tags {
		r, _ := imageref.Parse(reg.Host + "/" + ref)
		src := r
		src.Digest = dg
		items = append(items, artifacts.Item{Source: src, Target: r})
	}
	api, err := imageapi.New(cluster.RESTConfig(), "image.openshift.io/v1")
	if err != nil {
		t.Fatal(err)
	}
	c := registry.New(registry.Options{Insecure: anyHost})
	parts := 4
	results := make([]backfillresult.Result, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []artifacts.Item
			for i := p; i < len(items); i += parts {
				mine = append(mine, items[i])
			}
			results[p], _ = backfill.Run(context.Background(), backfill.Options{API: api, Registry: c, Items: mine})
		}()
	}
	wg.Wait()
	applied := 0
	for _, r := range results {
		applied += r.Applied
		for _, im := range r.Images {
			if im.Action == backfillresult.ActionFailed {
				t.Errorf("%s failed: %s", im.Image, im.Error)
			}
		}
	}
	if applied != len(items) {
		t.Errorf("applied %d of %d", applied, len(items))
	}
}

// BenchmarkBackfillMappings measures mappings per second through a real
// kube-apiserver to the aggregated double, beside the runbook's loop (seed
// 000: per image `get imagestreams`, `get imagestreamtags`, `create -f`,
// each a kubectl process, one image after the other) measured the same way.
//
//	go test -run '^$' -bench BackfillMappings -benchtime 1x ./tests/e2e
func BenchmarkBackfillMappings(b *testing.B) {
	cluster := kubeapi.Start(b)
	kubeapi.RegisterImageAPI(b, cluster, "image.alauda.io")
	reg := regtest.StartDistribution(b, regtest.Options{})
	seeded, err := regtest.Seed(context.Background(), reg.Host, nil, regtest.Corpus{Namespaces: []string{"n1", "n2", "n3", "n4"}, ReposPerNS: 5, TagsPerRepo: 25, LayerSize: 256})
	if err != nil {
		b.Fatal(err)
	}
	var items []artifacts.Item
	for ref, dg := range seeded.Tags {
		r, _ := imageref.Parse(reg.Host + "/" + ref)
		src := r
		src.Digest = dg
		items = append(items, artifacts.Item{Source: src, Target: r})
	}
	cfg, err := imageapi.Config(cluster.AdminKubeconfig, "", 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	api, err := imageapi.New(cfg, "")
	if err != nil {
		b.Fatal(err)
	}
	c := registry.New(registry.Options{Insecure: anyHost})
	b.Run("regmigrate", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			// a fresh tag per round so that every mapping is applied, not skipped
			round := make([]artifacts.Item, len(items))
			for j, it := range items {
				it.Target.Tag = fmt.Sprintf("%s-r%d", it.Target.Tag, i)
				round[j] = it
			}
			start := time.Now()
			res, err := backfill.Run(context.Background(), backfill.Options{API: api, Registry: c, Items: round})
			if err != nil || res.Applied != len(round) {
				b.Fatalf("applied %d of %d: %v", res.Applied, len(round), err)
			}
			b.ReportMetric(float64(len(round))/time.Since(start).Seconds(), "mappings/s")
		}
	})
	b.Run("runbook-loop", func(b *testing.B) {
		if _, err := exec.LookPath("kubectl"); err != nil {
			b.Fatal("kubectl is needed to measure the runbook's loop")
		}
		dir := b.TempDir()
		const n = 30 // the loop is slow: a sample is enough for a rate
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			for _, it := range items[:n] {
				ns, stream := it.Target.Namespace(), it.Target.Name()
				tag := fmt.Sprintf("%s-loop%d", it.Target.Tag, i)
				kc := func(args ...string) error {
					return exec.Command("kubectl", append([]string{"--kubeconfig", cluster.AdminKubeconfig}, args...)...).Run()
				}
				_ = kc("get", "imagestreams.image.alauda.io", stream, "-n", ns)
				_ = kc("get", "imagestreamtags.image.alauda.io", stream+":"+tag, "-n", ns)
				f := filepath.Join(dir, "m.yaml")
				os.WriteFile(f, fmt.Appendf(nil, "apiVersion: image.alauda.io/v1\nkind: ImageStreamMapping\nmetadata:\n  name: %s\n  namespace: %s\nimage:\n  metadata:\n    name: %q\n  dockerImageReference: %q\n  dockerImageManifestMediaType: application/vnd.docker.distribution.manifest.v2+json\ntag: %q\n",
					stream, ns, it.Source.Digest, reg.Host+"/"+ns+"/"+stream+"@"+it.Source.Digest, tag), 0o644)
				if err := kc("create", "-f", f); err != nil {
					b.Fatalf("kubectl create: %v", err)
				}
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "mappings/s")
		}
	})
}

// anyHost marks every registry insecure: the test registries speak plain
// HTTP on loopback, which the client uses only when told.
func anyHost(string) bool { return true }

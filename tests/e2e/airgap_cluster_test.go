package e2e

import (
	"context"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// After a two-phase move: phase two backfills the Image API from the new
// registry (the tag events name it, with phase one's digests), and the
// cutover, gated on phase two's report, rewrites a real kube-apiserver's
// workloads from the legacy registry (--from: the report's source is the
// layout) to the new one.
func TestAirGapImageAPIAndCutover(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, src, regtest.Corpus{Namespaces: []string{"shop"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 8 << 10, MultiArch: true})
	media := filepath.Join(t.TempDir(), "export")
	if code, _, _ := runCLI(t, nil, "run", "--from", src.Host, "--to", "oci:"+media, "--insecure", "--progress", "none"); code != contract.ExitOK {
		t.Fatalf("phase one: exit %d", code)
	}
	d, kc := doubleKubeconfig(t, "image.openshift.io")
	out := filepath.Join(t.TempDir(), "import")
	if code, _, _ := runCLI(t, nil, "run", "--from", "oci:"+media, "--to", dst.Host, "--insecure", "--out", out, "--progress", "none", "--kubeconfig", kc); code != contract.ExitOK {
		t.Fatalf("phase two: exit %d", code)
	}
	if b := readBackfill(t, out); b.Applied != len(seeded.Tags) || b.Failed != 0 {
		t.Errorf("backfill %+v, want %d applied", b, len(seeded.Tags))
	}
	is, ok := d.ImageStream("shop", "app0")
	if !ok {
		t.Fatal("no ImageStream shop/app0 after phase two")
	}
	if len(is.Status.Tags) != 2 {
		t.Errorf("ImageStream shop/app0 has %d tags, want v0 and v1", len(is.Status.Tags))
	}
	for _, tg := range is.Status.Tags {
		want := dst.Host + "/shop/app0@" + seeded.Tags["shop/app0:"+tg.Tag]
		if len(tg.Items) == 0 || tg.Items[0].DockerImageReference != want {
			t.Errorf("shop/app0:%s: tag event %+v, want %s", tg.Tag, tg.Items, want)
		}
	}

	// The cutover on a real kube-apiserver, gated on phase two's report.
	c := kubeapi.Start(t)
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, obj := range []map[string]any{
		{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop"}},
	} {
		if _, err := dyn.Resource(gvrNamespace).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dep := map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "web"},
		"spec": map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec": map[string]any{"containers": []any{map[string]any{"name": "web", "image": src.Host + "/shop/app0:v0"}}}}}}
	if _, err := dyn.Resource(gvrDeployment).Namespace("shop").Create(ctx, &unstructured.Unstructured{Object: dep}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	admin := c.UserKubeconfig(t, "admin", "system:masters")
	if code, _, stderr := runCLI(t, nil, "cutover", "--kubeconfig", admin, "--verify-report", filepath.Join(out, contract.ReportJSON), "--from", src.Host, "--confirm"); code != contract.ExitOK {
		t.Fatalf("cutover: exit %d\n%s", code, stderr)
	}
	got, err := dyn.Resource(gvrDeployment).Namespace("shop").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctrs, _, _ := unstructured.NestedSlice(got.Object, "spec", "template", "spec", "containers")
	if img := ctrs[0].(map[string]any)["image"]; img != dst.Host+"/shop/app0:v0" {
		t.Errorf("after the cutover the Deployment runs %v, want %s/shop/app0:v0", img, dst.Host)
	}
}

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/workloads"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// TestWorkloadImagesFromARealCluster: the images workloads use, from a real
// kube-apiserver, keeping only the legacy registry's, init containers too.
func TestWorkloadImagesFromARealCluster(t *testing.T) {
	t.Parallel()
	c := kubeapi.Start(t)
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	create := func(gvr schema.GroupVersionResource, ns string, obj map[string]any) {
		t.Helper()
		if _, err := dyn.Resource(gvr).Namespace(ns).Create(context.Background(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating %s: %v", gvr.Resource, err)
		}
	}
	for _, ns := range []string{"shop", "tools"} {
		create(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, "", map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}})
		// no controller-manager here: the default ServiceAccount a Pod needs is made by hand
		create(schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, ns, map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": "default"}})
	}
	pod := func(containers, inits []any) map[string]any {
		return map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "x"}}, "spec": map[string]any{"containers": containers, "initContainers": inits}}
	}
	ctr := func(name, image string) any { return map[string]any{"name": name, "image": image} }
	create(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "shop", map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "api"},
		"spec": map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "x"}},
			"template": pod([]any{ctr("api", "legacy.example:5000/shop/api:v1"), ctr("proxy", "docker.io/library/nginx:1.27")}, []any{ctr("migrate", "legacy.example:5000/shop/migrate:v1")})},
	})
	create(schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}, "tools", map[string]any{
		"apiVersion": "batch/v1", "kind": "CronJob", "metadata": map[string]any{"name": "backup"},
		"spec": map[string]any{"schedule": "0 1 * * *", "jobTemplate": map[string]any{"spec": map[string]any{
			"template": map[string]any{"spec": map[string]any{"restartPolicy": "OnFailure", "containers": []any{ctr("b", "legacy.example:5000/tools/backup@sha256:"+strings.Repeat("a", 64))}}}}}},
	})
	create(schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "tools", map[string]any{
		"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "debug"},
		"spec": map[string]any{"containers": []any{ctr("d", "legacy.example:5000/shop/api:v1")}},
	})

	legacy, _ := imageref.ParseLocation("legacy.example:5000")
	got, err := workloads.Images(context.Background(), c.RESTConfig(), legacy, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{ // image -> workloads using it
		"legacy.example:5000/shop/api:v1":                                    2,
		"legacy.example:5000/shop/migrate:v1":                                1,
		"legacy.example:5000/tools/backup@sha256:" + strings.Repeat("a", 64): 1,
	}
	if len(got) != len(want) {
		t.Fatalf("found %v, want %v", got, want)
	}
	for img, n := range want {
		if len(got[img]) != n {
			t.Errorf("%s used by %v, want %d workloads", img, got[img], n)
		}
	}
	// Only the chosen namespaces.
	only, err := workloads.Images(context.Background(), c.RESTConfig(), legacy, []string{"tools"})
	if err != nil || len(only) != 2 {
		t.Errorf("namespace tools: %v (%v), want the backup image and the debug pod's", only, err)
	}
	list := string(workloads.ListFile(got))
	if !strings.Contains(list, "shop/api:v1\n") || strings.Contains(list, "nginx") {
		t.Errorf("list file:\n%s", list)
	}
	rules, err := workloads.ImagesJSON(got, imageref.Location{Registry: "new.example"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(rules, &m); err != nil || m["legacy.example:5000/shop/api:v1"] != "new.example/shop/api:v1" {
		t.Errorf("images.json %s: want legacy → new rules", rules)
	}
}

// TestRunScopeFromWorkloads: `regmigrate run --scope-from-workloads`
// migrates exactly the legacy images the cluster's workloads use.
func TestRunScopeFromWorkloads(t *testing.T) {
	t.Parallel()
	c := kubeapi.Start(t)
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, src, regtest.Corpus{Namespaces: []string{"shop"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 4 << 10})
	dyn, _ := dynamic.NewForConfig(c.RESTConfig())
	ctr := func(name, image string) any { return map[string]any{"name": name, "image": image} }
	_, err := dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace("default").Create(context.Background(),
		&unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "shop"},
			"spec": map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "shop"}},
				"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "shop"}}, "spec": map[string]any{
					"containers":     []any{ctr("a", src.Host+"/shop/app0:v1"), ctr("b", "docker.io/library/nginx:1.27")},
					"initContainers": []any{ctr("i", src.Host+"/shop/app1:v0")}}}},
		}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "run")
	code, _, _ := runCLI(t, nil, "run", "--from", src.Host, "--to", dst.Host, "--insecure", "--out", out, "--progress", "none", "--scope-from-workloads", c.AdminKubeconfig)
	if code != contract.ExitOK {
		t.Fatalf("exit %d", code)
	}
	rep := readReport(t, out)
	if rep.Total != 2 || rep.Copied != 2 {
		t.Errorf("report total %d copied %d, want the 2 images the workloads use", rep.Total, rep.Copied)
	}
	assertMirrored(t, dst.Host, map[string]string{"shop/app0:v1": seeded.Tags["shop/app0:v1"], "shop/app1:v0": seeded.Tags["shop/app1:v0"]})
	for _, f := range []string{"workloads-images.txt", "workloads-images.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("run directory lacks %s", f)
		}
	}
}

// TestRunThenCutover: `regmigrate run --scope-from-workloads ... --cutover
// --confirm` migrates what the workloads use, verifies it, and then points
// the workloads at the target, in one command.
func TestRunThenCutover(t *testing.T) {
	t.Parallel()
	c := kubeapi.Start(t)
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, src, regtest.Corpus{Namespaces: []string{"shop"}, ReposPerNS: 2, TagsPerRepo: 1, LayerSize: 4 << 10})
	dyn, _ := dynamic.NewForConfig(c.RESTConfig())
	deployments := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	pinned := src.Host + "/shop/app1:v0@" + seeded.Tags["shop/app1:v0"]
	_, err := dyn.Resource(deployments).Namespace("default").Create(context.Background(), &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "shop"},
		"spec": map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "shop"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "shop"}}, "spec": map[string]any{
				"containers": []any{map[string]any{"name": "a", "image": src.Host + "/shop/app0:v0"}, map[string]any{"name": "b", "image": pinned}}}}},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, _ := runCLI(t, nil, "run", "--from", src.Host, "--to", dst.Host, "--insecure", "--out", out, "--progress", "none",
		"--scope-from-workloads", c.AdminKubeconfig, "--cutover", "--confirm")
	if code != contract.ExitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stdout, "switch-mode modern: 1 cluster(s), workloads: 1 rewritten") {
		t.Errorf("stdout does not summarize the cutover:\n%s", stdout)
	}
	u, err := dyn.Resource(deployments).Namespace("default").Get(context.Background(), "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	want := []string{dst.Host + "/shop/app0:v0", dst.Host + "/shop/app1:v0@" + seeded.Tags["shop/app1:v0"]}
	for i, c := range cs {
		if img := c.(map[string]any)["image"]; img != want[i] {
			t.Errorf("container %d runs %v, want %s", i, img, want[i])
		}
	}
	for _, f := range []string{"switch.json", "switch.diff"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("run directory lacks %s", f)
		}
	}
}

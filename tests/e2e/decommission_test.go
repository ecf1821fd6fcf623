package e2e

import (
	"context"
	"encoding/base64"
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
	"github.com/regmigrate/regmigrate/steps/decommission"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
)

var gvrJob = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}

// gatePassword is the legacy pull secret's password: it must appear in
// nothing the gate writes.
const gatePassword = "s3cr3t-legacy-pa55"

func dockerConfigSecret(name, host string) map[string]any {
	auth := base64.StdEncoding.EncodeToString([]byte("robot:" + gatePassword))
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{"https://" + host: map[string]any{"auth": auth}}})
	return map[string]any{"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
		"metadata": map[string]any{"name": name},
		"data":     map[string]any{".dockerconfigjson": base64.StdEncoding.EncodeToString(cfg)}}
}

func readCheck(t *testing.T, dir string) decommission.Result {
	t.Helper()
	var r decommission.Result
	b, err := os.ReadFile(filepath.Join(dir, decommission.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDecommissionGateRedBeforeGreenAfter: `regmigrate cutover --check`
// on a real kube-apiserver with the Image API: before the cutover it lists
// the workload's containers, the unowned Pod, ReplicaSet and Job, the
// ImageStream tags that point at the legacy registry and the pull secret
// for it, and exits 1 (without a word of the secret's content); after the
// cutover, the unowned objects recreated, the ImageStream re-pointed and
// the secret deleted, it exits 0 and check.md says green.
func TestDecommissionGateRedBeforeGreenAfter(t *testing.T) {
	t.Parallel()
	c := kubeapi.Start(t)
	kubeapi.RegisterImageAPI(t, c, "image.openshift.io")
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	create := func(gvr schema.GroupVersionResource, ns string, obj map[string]any) {
		t.Helper()
		if _, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating %s %v: %v", gvr.Resource, obj["metadata"], err)
		}
	}
	create(gvrNamespace, "", map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop"}})
	create(gvrSA, "shop", map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": "default"}})
	ctr := func(name, image string) any { return map[string]any{"name": name, "image": image} }
	podTmpl := func(app, image, restart string) map[string]any {
		return map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": app}},
			"spec": map[string]any{"restartPolicy": restart, "containers": []any{ctr(app, image)}}}
	}
	create(gvrDeployment, "shop", map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "api"},
		"spec": map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "api"}}, "template": map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": "api"}},
			"spec":     map[string]any{"containers": []any{ctr("api", legacyReg+"/shop/api:v1"), ctr("proxy", "docker.io/library/nginx:1.27")}}}}})
	unowned := func(image string) {
		create(gvrPod, "shop", map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "debug"},
			"spec": map[string]any{"containers": []any{ctr("d", image)}}})
		create(gvrReplicaSet, "shop", map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": map[string]any{"name": "lonely"},
			"spec": map[string]any{"replicas": int64(0), "selector": map[string]any{"matchLabels": map[string]any{"app": "lonely"}}, "template": podTmpl("lonely", image, "Always")}})
		create(gvrJob, "shop", map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": map[string]any{"name": "once"},
			"spec": map[string]any{"suspend": true, "template": podTmpl("once", image, "Never")}})
	}
	unowned(legacyReg + "/tools/agent:latest")
	create(gvrSecret, "shop", dockerConfigSecret("legacy-pull", legacyReg))
	create(gvrSecret, "shop", dockerConfigSecret("new-pull", newReg))
	// An ImageStream whose tag v1 points at the legacy registry (pushed
	// there, as the Image API records it), and a spec tag importing from it.
	gv := schema.GroupVersion{Group: "image.openshift.io", Version: "v1"}
	create(gv.WithResource("imagestreams"), "shop", map[string]any{"apiVersion": gv.String(), "kind": "ImageStream", "metadata": map[string]any{"name": "api"},
		"spec": map[string]any{"tags": []any{map[string]any{"name": "upstream", "from": map[string]any{"kind": "DockerImage", "name": legacyReg + "/shop/api:v1"}}}}})
	ism := func(ref string) map[string]any {
		return map[string]any{"apiVersion": gv.String(), "kind": "ImageStreamMapping", "metadata": map[string]any{"name": "api"}, "tag": "v1",
			"image": map[string]any{"metadata": map[string]any{"name": digestAPI}, "dockerImageReference": ref}}
	}
	create(gv.WithResource("imagestreammappings"), "shop", ism(legacyReg+"/shop/api@"+digestAPI))

	kc := c.UserKubeconfig(t, "admin", "system:masters")
	dir := t.TempDir()

	// Red before the cutover.
	code, stdout, stderr := runCLI(t, nil, "cutover", "--kubeconfig", kc, "--check", "--from", legacyReg, "--out", dir)
	if code != contract.ExitFailed {
		t.Fatalf("--check before the cutover: exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	red := readCheck(t, dir)
	got := map[string]string{}
	for _, f := range red.Clusters[0].Findings {
		got[f.What+" "+f.Kind+"/"+f.Namespace+"/"+f.Name+" "+f.Field] = f.Reference
	}
	assertSame(t, "check.json before the cutover", map[string]string{
		"workload deployment/shop/api containers/api":             legacyReg + "/shop/api:v1",
		"unowned pod/shop/debug containers/d":                     legacyReg + "/tools/agent:latest",
		"unowned replicaset/shop/lonely containers/lonely":        legacyReg + "/tools/agent:latest",
		"unowned job/shop/once containers/once":                   legacyReg + "/tools/agent:latest",
		"imagestream imagestream/shop/api tag v1":                 legacyReg + "/shop/api@" + digestAPI,
		"imagestream-spec imagestream/shop/api spec tag upstream": legacyReg + "/shop/api:v1",
		"pull-secret secret/shop/legacy-pull .dockerconfigjson":   legacyReg,
	}, got)
	if red.Clean || red.Remaining != 7 || len(red.Clusters[0].Skipped) != 0 {
		t.Errorf("check.json: clean %v remaining %d skipped %v, want false, 7, none", red.Clean, red.Remaining, red.Clusters[0].Skipped)
	}
	md := readFile(t, filepath.Join(dir, decommission.MarkdownFile))
	if !strings.Contains(md, "RED: do not switch it off yet") || !strings.Contains(md, "| pull-secret | secret/shop/legacy-pull |") {
		t.Errorf("check.md before the cutover:\n%s", md)
	}
	for what, s := range map[string]string{"stdout": stdout, "stderr": stderr, "check.md": md, "check.json": readFile(t, filepath.Join(dir, decommission.ResultFile))} {
		if strings.Contains(s, gatePassword) || strings.Contains(s, base64.StdEncoding.EncodeToString([]byte("robot:"+gatePassword))) {
			t.Errorf("%s holds the pull secret's credential", what)
		}
	}
	// -o name: the objects, one a line.
	if code, stdout, _ = runCLI(t, nil, "cutover", "--kubeconfig", kc, "--check", "--from", legacyReg, "--out", dir, "-o", "name"); code != contract.ExitFailed || !strings.Contains(stdout, "secret/shop/legacy-pull\n") {
		t.Errorf("--check -o name: exit %d\n%s", code, stdout)
	}

	// The cutover: switch-mode rewrites the Deployment; the person
	// recreates the unowned objects, the ImageStream tag is re-pointed
	// (as backfill does) and the spec tag changed, the secret deleted.
	good := verifyReport(t, filepath.Join(dir, "run"), true)
	if code, stdout, stderr = runCLI(t, nil, "cutover", "--kubeconfig", kc, "--verify-report", good, "--confirm"); code != 0 {
		t.Fatalf("cutover: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// Still red: the cutover reports the unowned objects, it does not
	// recreate them.
	if code, _, _ = runCLI(t, nil, "cutover", "--kubeconfig", kc, "--check", "--from", legacyReg, "--out", dir); code != contract.ExitFailed || readCheck(t, dir).Remaining != 6 {
		t.Errorf("--check after switch-mode alone: exit %d, remaining %d, want 1, 6", code, readCheck(t, dir).Remaining)
	}
	for _, o := range []struct {
		gvr  schema.GroupVersionResource
		name string
	}{{gvrPod, "debug"}, {gvrReplicaSet, "lonely"}, {gvrJob, "once"}, {gvrSecret, "legacy-pull"}} {
		prop := metav1.DeletePropagationBackground
		if err := dyn.Resource(o.gvr).Namespace("shop").Delete(ctx, o.name, metav1.DeleteOptions{PropagationPolicy: &prop, GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatal(err)
		}
	}
	unowned(newReg + "/tools/agent:latest")
	create(gv.WithResource("imagestreammappings"), "shop", ism(newReg+"/shop/api@"+digestAPI))
	is, err := dyn.Resource(gv.WithResource("imagestreams")).Namespace("shop").Get(ctx, "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unstructured.SetNestedSlice(is.Object, []any{map[string]any{"name": "upstream", "from": map[string]any{"kind": "DockerImage", "name": newReg + "/shop/api:v1"}}}, "spec", "tags")
	if _, err := dyn.Resource(gv.WithResource("imagestreams")).Namespace("shop").Update(ctx, is, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Green after.
	code, stdout, stderr = runCLI(t, nil, "cutover", "--kubeconfig", kc, "--check", "--from", legacyReg, "--out", dir)
	if code != 0 {
		t.Fatalf("--check after the cutover: exit %d, want 0\n%s\n%s", code, stdout, stderr)
	}
	if green := readCheck(t, dir); !green.Clean || green.Remaining != 0 {
		t.Errorf("check.json after the cutover: %+v", green)
	}
	if md := readFile(t, filepath.Join(dir, decommission.MarkdownFile)); !strings.Contains(md, "GREEN: nothing left uses it") {
		t.Errorf("check.md after the cutover:\n%s", md)
	}
}

// TestDecommissionGateSaysWhatItCannotSee: an identity that may not list
// secrets gets a red gate that says what it could not check and which
// ClusterRole grants it, not a green one.
func TestDecommissionGateSaysWhatItCannotSee(t *testing.T) {
	t.Parallel()
	c := kubeapi.Start(t)
	kc := c.UserKubeconfig(t, "nobody")
	dir := t.TempDir()
	code, stdout, stderr := runCLI(t, nil, "cutover", "--kubeconfig", kc, "--check", "--from", legacyReg, "--out", dir)
	if code != contract.ExitFailed {
		t.Fatalf("--check without rights: exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	r := readCheck(t, dir)
	if r.Clean || len(r.Clusters[0].Errors) == 0 || !strings.Contains(strings.Join(r.Clusters[0].Errors, "\n"), "regmigrate-switch-mode") {
		t.Errorf("check.json without rights: %+v", r)
	}
	if code, _, stderr = runCLI(t, nil, "cutover", "--kubeconfig", kc, "--check", "--confirm", "--from", legacyReg); code != contract.ExitUsage || !strings.Contains(stderr, "--check changes nothing: drop --confirm") {
		t.Errorf("--check --confirm: exit %d\n%s", code, stderr)
	}
}

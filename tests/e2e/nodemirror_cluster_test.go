package e2e

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/nodemirror"
	"github.com/regmigrate/regmigrate/steps/stepcli/switchmodecmd"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
)

var (
	gvrCRD  = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	gvrIDMS = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "imagedigestmirrorsets"}
	gvrITMS = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "imagetagmirrorsets"}
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"

// openshiftMirrorCRDs serves config.openshift.io/v1 ImageDigestMirrorSet
// and ImageTagMirrorSet, as OpenShift's CRDs do (cluster-scoped).
func openshiftMirrorCRDs(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	for _, k := range []struct{ kind, plural string }{{"ImageDigestMirrorSet", "imagedigestmirrorsets"}, {"ImageTagMirrorSet", "imagetagmirrorsets"}} {
		crd := map[string]any{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": k.plural + ".config.openshift.io"},
			"spec": map[string]any{"group": "config.openshift.io", "scope": "Cluster",
				"names": map[string]any{"kind": k.kind, "plural": k.plural, "singular": strings.ToLower(k.kind), "listKind": k.kind + "List"},
				"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}}
		if _, err := dyn.Resource(gvrCRD).Create(context.Background(), &unstructured.Unstructured{Object: crd}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	gvr := gvrIDMS
	for i := 0; ; i++ {
		_, err := dyn.Resource(gvr).List(context.Background(), metav1.ListOptions{})
		if err == nil {
			if gvr == gvrITMS {
				return
			}
			gvr = gvrITMS
			continue
		}
		if i == 300 {
			t.Fatalf("the mirror set CRDs are not served: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNodeMirrorRolloutAndRollbackOnARealAPIServer: `regmigrate cutover
// --node-mirror` on a real kube-apiserver: the dry run writes the objects
// to node-mirror.yaml and creates nothing; --confirm creates the ConfigMap
// (hosts.toml and the CA) and the DaemonSet whose container the step's
// own parser reads as the installer; again changes nothing; --rollback
// removes them. On a cluster without OpenShift's config API the openshift
// platform fails and says so; with it, the ImageDigestMirrorSet and
// ImageTagMirrorSet map the legacy host to the target, and go on rollback.
func TestNodeMirrorRolloutAndRollbackOnARealAPIServer(t *testing.T) {
	t.Parallel()
	c := kubeapi.Start(t)
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := dyn.Resource(gvrNamespace).Create(ctx, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "regmigrate"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kc := c.UserKubeconfig(t, "admin", "system:masters")
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte(testCA), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"cutover", "--kubeconfig", kc, "--node-mirror", "containerd", "--from", legacyReg, "--to", newReg + "/platform",
		"--node-mirror-ca", ca, "--node-mirror-image", "registry.example/regmigrate/switch-mode:v1", "--out", dir}
	exists := func(gvr schema.GroupVersionResource, ns string) bool {
		_, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, nodemirror.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}

	code, stdout, stderr := runCLI(t, nil, args...)
	if code != 0 || exists(gvrConfigMap, "regmigrate") || exists(gvrDaemonSet, "regmigrate") {
		t.Fatalf("dry run: exit %d, objects created\n%s\n%s", code, stdout, stderr)
	}
	if y := readFile(t, filepath.Join(dir, switchmodecmd.NodeMirrorYAML)); !strings.Contains(y, "kind: DaemonSet") || !strings.Contains(stdout, "would-create") {
		t.Errorf("dry run: node-mirror.yaml or the output lacks the plan:\n%s\n%s", y, stdout)
	}

	if code, stdout, stderr = runCLI(t, nil, append(args, "--confirm")...); code != 0 {
		t.Fatalf("confirm: exit %d\n%s\n%s", code, stdout, stderr)
	}
	cm, err := dyn.Resource(gvrConfigMap).Namespace("regmigrate").Get(ctx, nodemirror.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hosts, _, _ := unstructured.NestedString(cm.Object, "data", nodemirror.HostsFile)
	caData, _, _ := unstructured.NestedString(cm.Object, "data", nodemirror.CAFile)
	for _, want := range []string{`server = "https://` + legacyReg + `"`, `[host."https://` + newReg + `/v2/platform"]`, "override_path = true",
		`ca = "/etc/containerd/certs.d/` + legacyReg + `/` + nodemirror.CAFile + `"`} {
		if !strings.Contains(hosts, want) {
			t.Errorf("hosts.toml lacks %q:\n%s", want, hosts)
		}
	}
	if caData != testCA {
		t.Errorf("the ConfigMap's CA: %q", caData)
	}
	ds, err := dyn.Resource(gvrDaemonSet).Namespace("regmigrate").Get(ctx, nodemirror.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctrs, _, _ := unstructured.NestedSlice(ds.Object, "spec", "template", "spec", "containers")
	ctr := ctrs[0].(map[string]any)
	var dsArgs []string
	for _, a := range ctr["args"].([]any) {
		dsArgs = append(dsArgs, a.(string))
	}
	inst, err := switchmodecmd.Parse(dsArgs, io.Discard)
	if err != nil || !inst.InstallNodeMirror || inst.MirrorDir != "/etc/containerd/certs.d/"+legacyReg || ctr["command"].([]any)[0] != nodemirror.InstallerBinary {
		t.Errorf("the DaemonSet's container %v %v is not the step's installer: %+v %v", ctr["command"], dsArgs, inst, err)
	}
	var res switchmodecmd.NodeMirrorResult
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, switchmodecmd.NodeMirrorJSON))), &res); err != nil || res.DryRun || len(res.Changes) != 2 || res.Changes[0].Action != nodemirror.ActionCreated {
		t.Errorf("node-mirror.json after confirm: %+v %v", res, err)
	}
	rv := ds.GetResourceVersion()
	if code, stdout, _ = runCLI(t, nil, append(args, "--confirm")...); code != 0 || strings.Count(stdout, ": unchanged") != 2 {
		t.Errorf("second confirm: exit %d, want both unchanged:\n%s", code, stdout)
	}
	if ds, _ := dyn.Resource(gvrDaemonSet).Namespace("regmigrate").Get(ctx, nodemirror.Name, metav1.GetOptions{}); ds.GetResourceVersion() != rv {
		t.Error("a second rollout updated the DaemonSet")
	}

	// Rollback: dry run first, then removed.
	if code, stdout, _ = runCLI(t, nil, append(args, "--rollback")...); code != 0 || !strings.Contains(stdout, "would-delete") || !exists(gvrDaemonSet, "regmigrate") {
		t.Errorf("rollback dry run: exit %d\n%s", code, stdout)
	}
	if code, stdout, stderr = runCLI(t, nil, append(args, "--rollback", "--confirm")...); code != 0 {
		t.Fatalf("rollback: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if exists(gvrDaemonSet, "regmigrate") || exists(gvrConfigMap, "regmigrate") {
		t.Fatal("the node mirror's objects are still there after the rollback")
	}

	// OpenShift/ACP: no config API, a clear failure; with it, the sets.
	os := []string{"cutover", "--kubeconfig", kc, "--node-mirror", "openshift", "--from", legacyReg, "--to", newReg, "--out", dir, "--confirm"}
	if code, stdout, _ = runCLI(t, nil, os...); code != contract.ExitFailed || !strings.Contains(stdout, "not an OpenShift/ACP cluster") {
		t.Errorf("openshift without the config API: exit %d\n%s", code, stdout)
	}
	openshiftMirrorCRDs(t, dyn)
	if code, stdout, stderr = runCLI(t, nil, os...); code != 0 {
		t.Fatalf("openshift: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for gvr, field := range map[schema.GroupVersionResource]string{gvrIDMS: "imageDigestMirrors", gvrITMS: "imageTagMirrors"} {
		u, err := dyn.Resource(gvr).Get(ctx, nodemirror.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m, _, _ := unstructured.NestedSlice(u.Object, "spec", field)
		b, _ := json.Marshal(m)
		if want := `[{"mirrors":["` + newReg + `"],"source":"` + legacyReg + `"}]`; string(b) != want {
			t.Errorf("%s spec.%s = %s, want %s", gvr.Resource, field, b, want)
		}
	}
	if code, stdout, stderr = runCLI(t, nil, append(os, "--rollback")...); code != 0 || exists(gvrIDMS, "") || exists(gvrITMS, "") {
		t.Errorf("openshift rollback: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

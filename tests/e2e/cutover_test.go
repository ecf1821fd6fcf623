package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/report"
	"github.com/regmigrate/regmigrate/steps/switchmode"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
)

var (
	gvrNamespace   = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	gvrSA          = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
	gvrPod         = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	gvrConfigMap   = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrDeployment  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrStatefulSet = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	gvrDaemonSet   = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}
	gvrReplicaSet  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	gvrCronJob     = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}
)

const (
	legacyReg = "legacy.example:5000"
	newReg    = "new.example"
)

var digestAPI = "sha256:" + strings.Repeat("1", 64)

// platform is a small platform on a real kube-apiserver: every kind
// switch-mode handles, with legacy images by tag and by digest, init
// containers, an image verify did not prove, and one from elsewhere.
type platform struct {
	t   *testing.T
	c   *kubeapi.Cluster
	dyn dynamic.Interface
}

type objRef struct {
	gvr       schema.GroupVersionResource
	ns, name  string
	kind      string
	rewritten bool
}

var platformObjects = []objRef{
	{gvrDeployment, "shop", "api", "deployment", true},
	{gvrDeployment, "shop", "unproven", "deployment", false},
	{gvrStatefulSet, "shop", "db", "statefulset", true},
	{gvrDaemonSet, "tools", "agent", "daemonset", true},
	{gvrCronJob, "tools", "backup", "cronjob", true},
	{gvrPod, "tools", "debug", "pod", false},
	{gvrReplicaSet, "tools", "lonely", "replicaset", false},
}

func newPlatform(t *testing.T) *platform {
	c := kubeapi.Start(t)
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	p := &platform{t: t, c: c, dyn: dyn}
	for _, ns := range []string{"shop", "tools"} {
		p.create(gvrNamespace, "", map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}})
		p.create(gvrSA, ns, map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": "default"}})
	}
	ctr := func(name, image string) any { return map[string]any{"name": name, "image": image} }
	tmpl := func(app string, inits []any, containers ...any) map[string]any {
		spec := map[string]any{"containers": containers}
		if len(inits) > 0 {
			spec["initContainers"] = inits
		}
		return map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": app}}, "spec": spec}
	}
	sel := func(app string) map[string]any { return map[string]any{"matchLabels": map[string]any{"app": app}} }
	p.create(gvrDeployment, "shop", map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "api"},
		"spec": map[string]any{"selector": sel("api"), "template": tmpl("api", []any{ctr("migrate", legacyReg+"/shop/migrate:v1")},
			ctr("api", legacyReg+"/shop/api:v1"), ctr("proxy", "docker.io/library/nginx:1.27"))}})
	p.create(gvrDeployment, "shop", map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "unproven"},
		"spec": map[string]any{"selector": sel("u"), "template": tmpl("u", nil, ctr("u", legacyReg+"/shop/never-copied:v1"))}})
	p.create(gvrStatefulSet, "shop", map[string]any{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": map[string]any{"name": "db"},
		"spec": map[string]any{"selector": sel("db"), "serviceName": "db", "template": tmpl("db", nil, ctr("db", legacyReg+"/shop/api@"+digestAPI))}})
	p.create(gvrDaemonSet, "tools", map[string]any{"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": map[string]any{"name": "agent", "annotations": map[string]any{"team": "infra"}},
		"spec": map[string]any{"selector": sel("agent"), "template": tmpl("agent", nil, ctr("agent", legacyReg+"/tools/agent"))}})
	p.create(gvrCronJob, "tools", map[string]any{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": map[string]any{"name": "backup"},
		"spec": map[string]any{"schedule": "0 1 * * *", "jobTemplate": map[string]any{"spec": map[string]any{
			"template": map[string]any{"spec": map[string]any{"restartPolicy": "OnFailure", "containers": []any{ctr("b", legacyReg+"/tools/backup:2.0")},
				"imagePullSecrets": []any{map[string]any{"name": "legacy-pull"}}}}}}}})
	p.create(gvrPod, "tools", map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "debug"},
		"spec": map[string]any{"containers": []any{ctr("d", legacyReg+"/shop/api:v1")}}})
	p.create(gvrReplicaSet, "tools", map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": map[string]any{"name": "lonely"},
		"spec": map[string]any{"replicas": int64(0), "selector": sel("lonely"), "template": tmpl("lonely", nil, ctr("l", legacyReg+"/tools/agent:latest"))}})
	// A ReplicaSet owned by the Deployment: its owner's template is what
	// switch-mode changes; the ReplicaSet itself is left to its controller.
	dep, _ := dyn.Resource(gvrDeployment).Namespace("shop").Get(context.Background(), "api", metav1.GetOptions{})
	p.create(gvrReplicaSet, "shop", map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet",
		"metadata": map[string]any{"name": "api-123", "ownerReferences": []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "uid": string(dep.GetUID()), "controller": true}}},
		"spec":     map[string]any{"replicas": int64(0), "selector": sel("api"), "template": tmpl("api", nil, ctr("api", legacyReg+"/shop/api:v1"))}})
	return p
}

func (p *platform) create(gvr schema.GroupVersionResource, ns string, obj map[string]any) {
	p.t.Helper()
	if _, err := p.dyn.Resource(gvr).Namespace(ns).Create(context.Background(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
		p.t.Fatalf("creating %s %v: %v", gvr.Resource, obj["metadata"], err)
	}
}

func (p *platform) get(o objRef) *unstructured.Unstructured {
	p.t.Helper()
	u, err := p.dyn.Resource(o.gvr).Namespace(o.ns).Get(context.Background(), o.name, metav1.GetOptions{})
	if err != nil {
		p.t.Fatal(err)
	}
	return u
}

// specs are the objects' specs and annotations, as JSON: what a rollback
// must restore byte for byte.
func (p *platform) specs() map[string]string {
	out := map[string]string{}
	for _, o := range platformObjects {
		u := p.get(o)
		a := u.GetAnnotations()
		delete(a, "deprecated.daemonset.template.generation") // the apiserver's own count of template changes
		b, _ := json.Marshal(map[string]any{"spec": u.Object["spec"], "annotations": a})
		out[o.kind+"/"+o.ns+"/"+o.name] = string(b)
	}
	return out
}

func (p *platform) versions() map[string]string {
	out := map[string]string{}
	for _, o := range platformObjects {
		out[o.kind+"/"+o.ns+"/"+o.name] = p.get(o).GetResourceVersion()
	}
	return out
}

// images of an object's pod spec, by container.
func (p *platform) images(o objRef) map[string]string {
	u := p.get(o)
	path := []string{"spec", "template", "spec"}
	switch o.gvr {
	case gvrCronJob:
		path = []string{"spec", "jobTemplate", "spec", "template", "spec"}
	case gvrPod:
		path = []string{"spec"}
	}
	out := map[string]string{}
	for _, f := range []string{"initContainers", "containers"} {
		cs, _, _ := unstructured.NestedSlice(u.Object, append(path, f)...)
		for _, c := range cs {
			m := c.(map[string]any)
			out[m["name"].(string)] = m["image"].(string)
		}
	}
	return out
}

// verifyReport writes a run's report.json proving the platform's images
// (all but never-copied), passing or not.
func verifyReport(t testing.TB, dir string, passed bool) string {
	t.Helper()
	img := func(src, digest string) report.Image {
		return report.Image{Source: legacyReg + "/" + src, Target: newReg + "/" + src, Digest: digest, Status: contract.StatusCopied}
	}
	r := report.Report{Source: legacyReg, Target: newReg, Images: []report.Image{
		img("shop/api:v1", digestAPI),
		img("shop/migrate:v1", "sha256:"+strings.Repeat("2", 64)),
		img("tools/agent:latest", "sha256:"+strings.Repeat("3", 64)),
		img("tools/backup:2.0", "sha256:"+strings.Repeat("4", 64)),
	}}
	r.Total, r.Copied, r.VerifyPassed, r.Verified = len(r.Images), len(r.Images), len(r.Images), true
	if !passed {
		r.Images[3].Status, r.Images[3].Error = contract.StatusFailed, "verify: digest mismatch"
		r.Copied, r.Failed, r.VerifyPassed, r.VerifyFailed, r.Verified = 3, 1, 3, 1, false
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, contract.ReportJSON)
	b, _ := json.Marshal(r)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func readSwitch(t *testing.T, dir string) switchmode.Result {
	t.Helper()
	var r switchmode.Result
	b, err := os.ReadFile(filepath.Join(dir, switchmode.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCutoverAndRollbackOnARealAPIServer: `regmigrate cutover` on a real
// kube-apiserver: refused without a passing verify, a dry run changes
// nothing, --confirm rewrites what verify proved (init containers, tags,
// digests, the pull secret), reports what cannot change in place, twice
// changes nothing, and --rollback restores byte-identical specs.
func TestCutoverAndRollbackOnARealAPIServer(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	kc := p.c.UserKubeconfig(t, "admin", "system:masters")
	dir := t.TempDir()
	original := p.specs()

	// A failing verify: refused, nothing written.
	bad := verifyReport(t, filepath.Join(dir, "bad"), false)
	code, _, stderr := runCLI(t, nil, "cutover", "--kubeconfig", kc, "--verify-report", bad, "--confirm")
	if code != contract.ExitFailed || !strings.Contains(stderr, "refusing to switch to modern") || !strings.Contains(stderr, "1 of 4 images failed") {
		t.Fatalf("cutover with a failing verify: exit %d, stderr:\n%s", code, stderr)
	}
	assertSame(t, "after a refused cutover", original, p.specs())

	// Dry run: says what would change, writes nothing but switch.json/diff.
	good := verifyReport(t, filepath.Join(dir, "run"), true)
	code, stdout, stderr := runCLI(t, nil, "cutover", "--kubeconfig", kc, "--verify-report", good, "--pull-secret", "new-pull")
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	assertSame(t, "after a dry run", original, p.specs())
	if rec, _ := switchmode.GetMode(context.Background(), p.dyn, "", ""); rec.Mode != switchmode.ModeLegacy || rec.Time != "" {
		t.Errorf("the dry run wrote the mode record: %+v", rec)
	}
	dry := readSwitch(t, filepath.Join(dir, "run"))
	if !dry.DryRun || dry.Pending != 4 || dry.Reported != 2 || dry.Unproven != 1 {
		t.Errorf("dry run switch.json: pending %d reported %d unproven %d, want 4, 2 (pod, replicaset), 1", dry.Pending, dry.Reported, dry.Unproven)
	}
	diff, _ := os.ReadFile(filepath.Join(dir, "run", switchmode.DiffFile))
	for _, want := range []string{
		"-  initContainers/migrate: " + legacyReg + "/shop/migrate:v1", "+  initContainers/migrate: " + newReg + "/shop/migrate:v1",
		"+  containers/db: " + newReg + "/shop/api@" + digestAPI, "+  imagePullSecrets: new-pull",
		"left alone: " + legacyReg + "/shop/never-copied:v1", "pod tools/debug: cannot-rewrite",
	} {
		if !strings.Contains(string(diff), want) || !strings.Contains(stdout, want) {
			t.Errorf("switch.diff (and stdout) lack %q:\n%s", want, diff)
		}
	}

	// -o name: the workloads that would change, one a line; -n keeps
	// those of one Kubernetes namespace; -o json: switch.json.
	code, stdout, stderr = runCLI(t, nil, "cutover", "--kubeconfig", kc, "--verify-report", good, "-o", "name")
	if want := "cronjob/tools/backup\ndaemonset/tools/agent\ndeployment/shop/api\nstatefulset/shop/db\n"; code != 0 || sortedLines(stdout) != want {
		t.Errorf("-o name: exit %d, stdout %q, want %q", code, stdout, want)
	}
	if !strings.Contains(stderr, "would change (dry run") {
		t.Errorf("-o name: the summary is not on stderr:\n%s", stderr)
	}
	code, stdout, _ = runCLI(t, nil, "cutover", "--kubeconfig", kc, "--verify-report", good, "-n", "shop", "-o", "name")
	if want := "deployment/shop/api\nstatefulset/shop/db\n"; code != 0 || sortedLines(stdout) != want {
		t.Errorf("-n shop -o name: exit %d, stdout %q, want %q", code, stdout, want)
	}
	code, stdout, _ = runCLI(t, nil, "cutover", "--kubeconfig", kc, "--verify-report", good, "-o", "json")
	var res switchmode.Result
	if err := json.Unmarshal([]byte(stdout), &res); code != 0 || err != nil || !res.DryRun || res.Pending != 4 {
		t.Errorf("-o json: exit %d, %v, %+v; want switch.json of the dry run", code, err, res)
	}
	assertSame(t, "after dry runs with -o", original, p.specs())

	// Confirm.
	code, stdout, stderr = runCLI(t, nil, "cutover", "--kubeconfig", kc, "--verify-report", good, "--pull-secret", "new-pull", "--migration", "m1", "--confirm")
	if code != 0 {
		t.Fatalf("confirm: exit %d\n%s\n%s", code, stdout, stderr)
	}
	want := map[string]map[string]string{
		"deployment/shop/api":      {"migrate": newReg + "/shop/migrate:v1", "api": newReg + "/shop/api:v1", "proxy": "docker.io/library/nginx:1.27"},
		"deployment/shop/unproven": {"u": legacyReg + "/shop/never-copied:v1"},
		"statefulset/shop/db":      {"db": newReg + "/shop/api@" + digestAPI},
		"daemonset/tools/agent":    {"agent": newReg + "/tools/agent"},
		"cronjob/tools/backup":     {"b": newReg + "/tools/backup:2.0"},
		"pod/tools/debug":          {"d": legacyReg + "/shop/api:v1"},
		"replicaset/tools/lonely":  {"l": legacyReg + "/tools/agent:latest"},
	}
	for _, o := range platformObjects {
		got := p.images(o)
		for c, img := range want[o.kind+"/"+o.ns+"/"+o.name] {
			if got[c] != img {
				t.Errorf("%s/%s/%s container %s: %s, want %s", o.kind, o.ns, o.name, c, got[c], img)
			}
		}
	}
	if ps, _, _ := unstructured.NestedSlice(p.get(platformObjects[4]).Object, "spec", "jobTemplate", "spec", "template", "spec", "imagePullSecrets"); len(ps) != 2 {
		t.Errorf("cronjob pull secrets %v, want legacy-pull kept and new-pull added", ps)
	}
	if _, ok := p.get(platformObjects[0]).GetAnnotations()[switchmode.Annotation]; !ok {
		t.Error("the rewritten deployment has no record of its original images")
	}
	rec, err := switchmode.GetMode(context.Background(), p.dyn, "", "")
	if err != nil || rec.Mode != switchmode.ModeModern || rec.PreviousMode != switchmode.ModeLegacy || rec.Migration != "m1" || rec.Target != newReg {
		t.Errorf("mode record after the cutover: %+v %v", rec, err)
	}
	if r := readSwitch(t, filepath.Join(dir, "run")); r.Rewritten != 4 || r.Failed != 0 {
		t.Errorf("switch.json: rewritten %d failed %d, want 4, 0", r.Rewritten, r.Failed)
	}
	// The report beside the verify report now shows the cutover record.
	if h := readFile(t, filepath.Join(dir, "run", contract.ReportHTML)); !strings.Contains(h, "<dt>Mode</dt><dd>modern</dd>") || !strings.Contains(h, "<dd>4 rewritten, ") {
		t.Errorf("report.html does not show the cutover:\n%s", h)
	}

	// Twice: nothing changes.
	versions := p.versions()
	if code, stdout, stderr = runCLI(t, nil, "cutover", "--kubeconfig", kc, "--verify-report", good, "--pull-secret", "new-pull", "--migration", "m1", "--confirm"); code != 0 {
		t.Fatalf("second confirm: exit %d\n%s\n%s", code, stdout, stderr)
	}
	assertSame(t, "resourceVersions after a second cutover", versions, p.versions())
	if r := readSwitch(t, filepath.Join(dir, "run")); r.Rewritten != 0 || r.Unchanged != 5 || r.Clusters[0].Changed {
		t.Errorf("second cutover: rewritten %d unchanged %d mode changed %v, want 0, 5 (the 4 switched and the unproven one), false", r.Rewritten, r.Unchanged, r.Clusters[0].Changed)
	}

	// Rollback: byte-identical specs, legacy mode.
	if code, stdout, stderr = runCLI(t, nil, "cutover", "--kubeconfig", kc, "--rollback", "--out", dir, "--confirm"); code != 0 {
		t.Fatalf("rollback: exit %d\n%s\n%s", code, stdout, stderr)
	}
	assertSame(t, "after the rollback", original, p.specs())
	if rec, _ := switchmode.GetMode(context.Background(), p.dyn, "", ""); rec.Mode != switchmode.ModeLegacy || rec.PreviousMode != switchmode.ModeModern {
		t.Errorf("mode record after the rollback: %+v", rec)
	}
	if r := readSwitch(t, dir); r.Restored != 4 {
		t.Errorf("rollback switch.json: restored %d, want 4", r.Restored)
	}
}

// sortedLines sorts the lines of s.
func sortedLines(s string) string {
	l := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	sort.Strings(l)
	return strings.Join(l, "\n") + "\n"
}

func assertSame(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s differs:\nwant %s\ngot  %s", what, k, w, got[k])
		}
	}
}

// TestCutoverRetriesAConflict: someone updates a Deployment between
// switch-mode's read and its write; the apiserver answers 409 and
// switch-mode reads again and applies, keeping the other change.
func TestCutoverRetriesAConflict(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	var puts, injected atomic.Int32
	cfg := p.c.RESTConfig()
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "/deployments/api") {
				puts.Add(1)
				if injected.Add(1) == 1 { // a concurrent update lands first
					u, err := p.dyn.Resource(gvrDeployment).Namespace("shop").Get(req.Context(), "api", metav1.GetOptions{})
					if err == nil {
						u.SetLabels(map[string]string{"touched-by": "someone-else"})
						_, err = p.dyn.Resource(gvrDeployment).Namespace("shop").Update(req.Context(), u, metav1.UpdateOptions{})
					}
					if err != nil {
						t.Errorf("injecting the concurrent update: %v", err)
					}
				}
			}
			return rt.RoundTrip(req)
		})
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	proof := proofOf(t, verifyReport(t, t.TempDir(), true))
	objs, errs := switchmode.RewriteWorkloads(context.Background(), switchmode.WorkloadOptions{
		Client: dyn, Namespaces: []string{"shop"}, Mapper: switchmode.Mapper{Proof: proof}, Confirm: true,
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, o := range objs {
		if o.Name == "api" && o.Action != switchmode.ActionRewritten {
			t.Errorf("deployment api: %s %s, want rewritten after the conflict", o.Action, o.Error)
		}
	}
	if puts.Load() < 2 {
		t.Errorf("%d PUTs of deployment api: the conflict was not retried", puts.Load())
	}
	dep := p.get(platformObjects[0])
	if dep.GetLabels()["touched-by"] != "someone-else" {
		t.Error("the concurrent change was lost")
	}
	if img := p.images(platformObjects[0])["api"]; img != newReg+"/shop/api:v1" {
		t.Errorf("image after the retry: %s", img)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func proofOf(t testing.TB, path string) switchmode.Proof {
	t.Helper()
	var r report.Report
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		t.Fatal(err)
	}
	proof, err := switchmode.ProofFromReport(r)
	if err != nil {
		t.Fatal(err)
	}
	return proof
}

// TestCutoverWithoutWriteRights: a user who may read workloads but not
// update them gets one clear error per object, and nothing changes; the
// mode record is not switched while workloads still point at legacy.
func TestCutoverWithoutWriteRights(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	role := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": map[string]any{"name": "read-workloads"},
		"rules": []any{
			map[string]any{"apiGroups": []any{"apps", "batch", ""}, "resources": []any{"deployments", "statefulsets", "daemonsets", "replicasets", "cronjobs", "jobs", "pods", "configmaps"}, "verbs": []any{"get", "list"}},
		},
	}}
	binding := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": map[string]any{"name": "read-workloads"},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "read-workloads"},
		"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "reader"}},
	}}
	rbac := schema.GroupVersion{Group: "rbac.authorization.k8s.io", Version: "v1"}
	for res, obj := range map[string]*unstructured.Unstructured{"clusterroles": role, "clusterrolebindings": binding} {
		if _, err := p.dyn.Resource(rbac.WithResource(res)).Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kc := p.c.UserKubeconfig(t, "reader")
	dir := t.TempDir()
	good := verifyReport(t, dir, true)
	original := p.specs()
	code, _, stderr := runCLI(t, nil, "cutover", "--kubeconfig", kc, "--verify-report", good, "--confirm")
	if code != contract.ExitFailed {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, contract.ExitFailed, stderr)
	}
	assertSame(t, "after a forbidden cutover", original, p.specs())
	r := readSwitch(t, dir)
	if r.Failed != 4 {
		t.Errorf("failed %d, want the 4 rewritable objects", r.Failed)
	}
	for _, o := range r.Clusters[0].Objects {
		if o.Action == switchmode.ActionFailed && !(strings.Contains(o.Error, "forbidden") && strings.Contains(o.Error, "update") && strings.Contains(o.Error, "regmigrate-switch-mode")) {
			t.Errorf("%s: error %q does not say which right is missing", o.Ref(), o.Error)
		}
	}
	if !strings.Contains(stderr, "mode record left as it was") {
		t.Errorf("stderr does not say the record was kept:\n%s", stderr)
	}
	if _, err := p.dyn.Resource(gvrConfigMap).Namespace(switchmode.DefaultNamespace).Get(context.Background(), switchmode.DefaultName, metav1.GetOptions{}); err == nil {
		t.Error("the mode record was written although no workload was switched")
	}

	// The ClusterRole the manifests install is enough, and no more is needed.
	b, err := os.ReadFile("../../manifests/base/switch-mode-rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	shipped := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(strings.Split(string(b), "\n---\n")[0]), &shipped.Object); err != nil || shipped.GetKind() != "ClusterRole" {
		t.Fatalf("manifests/base/switch-mode-rbac.yaml: %v (kind %q)", err, shipped.GetKind())
	}
	shippedBinding := binding.DeepCopy()
	shippedBinding.SetName("shipped")
	unstructured.SetNestedField(shippedBinding.Object, shipped.GetName(), "roleRef", "name")
	for res, obj := range map[string]*unstructured.Unstructured{"clusterroles": shipped, "clusterrolebindings": shippedBinding} {
		if _, err := p.dyn.Resource(rbac.WithResource(res)).Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := runCLI(t, nil, "cutover", "--kubeconfig", kc, "--verify-report", good, "--confirm")
	if code != 0 {
		t.Fatalf("with the shipped ClusterRole: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if r := readSwitch(t, dir); r.Rewritten != 4 || r.Clusters[0].After.Mode != switchmode.ModeModern {
		t.Errorf("with the shipped ClusterRole: rewritten %d, mode %q", r.Rewritten, r.Clusters[0].After.Mode)
	}
	if rec, _ := switchmode.GetMode(context.Background(), p.dyn, "", ""); rec.Mode != switchmode.ModeModern {
		t.Errorf("mode record %+v", rec)
	}
}

// TestCutoverAllClusters: two real clusters in one kubeconfig;
// --all-clusters is refused (and nothing changes anywhere) while one
// cluster's verify failed, and switches both once both passed.
func TestCutoverAllClusters(t *testing.T) {
	t.Parallel()
	east, west := newPlatform(t), newPlatform(t)
	dir := t.TempDir()
	kc := mergeKubeconfigs(t, filepath.Join(dir, "all.kubeconfig"), map[string]string{
		"east": east.c.UserKubeconfig(t, "admin", "system:masters"),
		"west": west.c.UserKubeconfig(t, "admin", "system:masters"),
	})
	eastOK := verifyReport(t, filepath.Join(dir, "east"), true)
	westBad := verifyReport(t, filepath.Join(dir, "west-bad"), false)
	westOK := verifyReport(t, filepath.Join(dir, "west"), true)
	before := map[string]map[string]string{"east": east.specs(), "west": west.specs()}

	code, _, stderr := runCLI(t, nil, "cutover", "--kubeconfig", kc, "--all-clusters", "--verify-report", "east="+eastOK, "--verify-report", "west="+westBad, "--out", dir, "--confirm")
	if code != contract.ExitFailed || !strings.Contains(stderr, "refusing --all-clusters") || !strings.Contains(stderr, "west") {
		t.Fatalf("--all-clusters with west failing: exit %d\n%s", code, stderr)
	}
	assertSame(t, "east after a refused --all-clusters", before["east"], east.specs())
	assertSame(t, "west after a refused --all-clusters", before["west"], west.specs())

	code, stdout, stderr := runCLI(t, nil, "cutover", "--kubeconfig", kc, "--all-clusters", "--verify-report", "east="+eastOK, "--verify-report", "west="+westOK, "--out", dir, "--confirm")
	if code != 0 {
		t.Fatalf("--all-clusters: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for name, p := range map[string]*platform{"east": east, "west": west} {
		if img := p.images(platformObjects[0])["api"]; img != newReg+"/shop/api:v1" {
			t.Errorf("%s: deployment api runs %s", name, img)
		}
		if rec, _ := switchmode.GetMode(context.Background(), p.dyn, "", ""); rec.Mode != switchmode.ModeModern {
			t.Errorf("%s: mode %q", name, rec.Mode)
		}
	}
	if r := readSwitch(t, dir); len(r.Clusters) != 2 || r.Rewritten != 8 {
		t.Errorf("switch.json: %d clusters, %d rewritten; want 2, 8", len(r.Clusters), r.Rewritten)
	}
}

// mergeKubeconfigs writes one kubeconfig with a context per cluster.
func mergeKubeconfigs(t *testing.T, path string, byContext map[string]string) string {
	t.Helper()
	out := clientcmdapi.NewConfig()
	for name, file := range byContext {
		c, err := clientcmd.LoadFromFile(file)
		if err != nil {
			t.Fatal(err)
		}
		cur := c.Contexts[c.CurrentContext]
		out.Clusters[name] = c.Clusters[cur.Cluster]
		out.AuthInfos[name] = c.AuthInfos[cur.AuthInfo]
		ctx := *cur
		ctx.Cluster, ctx.AuthInfo = name, name
		out.Contexts[name] = &ctx
		out.CurrentContext = name
	}
	if err := clientcmd.WriteToFile(*out, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// BenchmarkCutoverDeployments: switching Deployments on a real
// kube-apiserver, regmigrate's switch-mode beside what a person does by
// hand (`kubectl set image` per Deployment), as objects/s.
func BenchmarkCutoverDeployments(b *testing.B) {
	c := kubeapi.Start(b)
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const n = 100
	if _, err := dyn.Resource(gvrNamespace).Create(ctx, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "bench"}}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		name := fmt.Sprintf("app%d", i)
		ctrs := []any{
			map[string]any{"name": "main", "image": legacyReg + "/shop/api:v1"},
			map[string]any{"name": "side", "image": legacyReg + "/shop/migrate:v1"},
		}
		if _, err := dyn.Resource(gvrDeployment).Namespace("bench").Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": name},
			"spec": map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
				"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": name}}, "spec": map[string]any{"containers": ctrs}}},
		}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	proof := proofOf(b, verifyReport(b, b.TempDir(), true))
	b.Run("regmigrate", func(b *testing.B) {
		for b.Loop() {
			start := time.Now()
			objs, errs := switchmode.RewriteWorkloads(ctx, switchmode.WorkloadOptions{Client: dyn, Namespaces: []string{"bench"}, Mapper: switchmode.Mapper{Proof: proof}, Confirm: true})
			if len(errs) > 0 || len(objs) != n || objs[0].Action != switchmode.ActionRewritten {
				b.Fatalf("%d objects, %v", len(objs), errs)
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "objects/s")
			b.StopTimer() // back to legacy for the next round
			if _, errs := switchmode.RewriteWorkloads(ctx, switchmode.WorkloadOptions{Client: dyn, Namespaces: []string{"bench"}, Rollback: true, Confirm: true}); len(errs) > 0 {
				b.Fatal(errs)
			}
			b.StartTimer()
		}
	})
	b.Run("kubectl-set-image", func(b *testing.B) {
		const sample = 20 // a process per object is slow: a sample is enough for a rate
		for i := 0; b.Loop(); i++ {
			host := []string{newReg, legacyReg}[i%2] // alternate, so each round changes something
			start := time.Now()
			for j := range sample {
				out, err := exec.Command("kubectl", "--kubeconfig", c.AdminKubeconfig, "-n", "bench", "set", "image", fmt.Sprintf("deployment/app%d", j),
					"main="+host+"/shop/api:v1", "side="+host+"/shop/migrate:v1").CombinedOutput()
				if err != nil {
					b.Fatalf("kubectl set image: %v\n%s", err, out)
				}
			}
			b.ReportMetric(float64(sample)/time.Since(start).Seconds(), "objects/s")
		}
	})
}

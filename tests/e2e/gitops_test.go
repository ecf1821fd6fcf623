package e2e

import (
	"bytes"
	"compress/gzip"
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
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/regmigrate/regmigrate/steps/switchmode"
	"github.com/regmigrate/regmigrate/steps/switchresult"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
)

var gvrSecret = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

var digestAgent = "sha256:" + strings.Repeat("3", 64)

// gitopsPlatform: workloads as Argo CD, Flux and Helm leave them on a real
// kube-apiserver (their tracking annotation, labels, release annotations,
// Helm's release Secret), one applied server-side by an operator, and one
// nobody manages.
func gitopsPlatform(t *testing.T) (*kubeapi.Cluster, dynamic.Interface) {
	c := kubeapi.Start(t)
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	create := func(gvr schema.GroupVersionResource, ns string, obj map[string]any) {
		t.Helper()
		if _, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{FieldManager: "kubectl-client-side-apply"}); err != nil {
			t.Fatalf("creating %s %v: %v", gvr.Resource, obj["metadata"], err)
		}
	}
	create(gvrNamespace, "", map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop"}})
	dep := func(kind, name string, meta map[string]any, inits []any, containers ...any) map[string]any {
		meta["name"] = name
		spec := map[string]any{"containers": containers}
		if len(inits) > 0 {
			spec["initContainers"] = inits
		}
		s := map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": name}}, "spec": spec}}
		if kind == "StatefulSet" {
			s["serviceName"] = name
		}
		return map[string]any{"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": s}
	}
	ctr := func(name, image string) any { return map[string]any{"name": name, "image": image} }
	// Argo CD (annotation tracking): a Deployment and a StatefulSet of one
	// Application, one image pinned by digest.
	create(gvrDeployment, "shop", dep("Deployment", "web", map[string]any{"annotations": map[string]any{"argocd.argoproj.io/tracking-id": "shop-app:apps/Deployment:shop/web"}},
		[]any{ctr("migrate", legacyReg+"/shop/migrate:v1")}, ctr("web", legacyReg+"/shop/api:v1"), ctr("proxy", "docker.io/library/nginx:1.27")))
	create(gvrStatefulSet, "shop", dep("StatefulSet", "db", map[string]any{"annotations": map[string]any{"argocd.argoproj.io/tracking-id": "shop-app:apps/StatefulSet:shop/db"}},
		nil, ctr("agent", legacyReg+"/tools/agent@"+digestAgent)))
	// Flux: a Kustomization's labels.
	create(gvrDeployment, "shop", dep("Deployment", "worker", map[string]any{"labels": map[string]any{
		"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}, nil, ctr("w", legacyReg+"/tools/backup:2.0")))
	// Helm: release annotations, and the release in Helm's storage.
	create(gvrDeployment, "shop", dep("Deployment", "chart", map[string]any{
		"labels":      map[string]any{"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": "shop"},
		"annotations": map[string]any{"meta.helm.sh/release-name": "shop", "meta.helm.sh/release-namespace": "shop"}},
		nil, ctr("api", legacyReg+"/shop/api:v1"), ctr("sidecar", legacyReg+"/shop/migrate:v1")))
	create(gvrSecret, "shop", helmReleaseSecret(t, "shop", 2, map[string]any{
		"image":  map[string]any{"repository": legacyReg + "/shop/api", "tag": "v1"},
		"global": map[string]any{"registry": legacyReg},
		"proxy":  map[string]any{"image": "docker.io/library/nginx:1.27"},
	}, map[string]any{"sidecar": map[string]any{"image": legacyReg + "/shop/migrate:v1"}}))
	// Nobody's: rewritten live, its field manager said.
	create(gvrDeployment, "shop", dep("Deployment", "plain", map[string]any{}, nil, ctr("p", legacyReg+"/shop/api:v1")))
	// Applied server-side by an operator: rewritten, the manager said.
	op := dep("Deployment", "operated", map[string]any{"namespace": "shop"}, nil, ctr("o", legacyReg+"/shop/api:v1"))
	if _, err := dyn.Resource(gvrDeployment).Namespace("shop").Apply(ctx, "operated", &unstructured.Unstructured{Object: op}, metav1.ApplyOptions{FieldManager: "platform-operator"}); err != nil {
		t.Fatal(err)
	}
	return c, dyn
}

// helmReleaseSecret is a release as Helm 3 stores it: a Secret whose
// data.release is base64 of gzipped JSON.
func helmReleaseSecret(t *testing.T, name string, version int, chartValues, config map[string]any) map[string]any {
	t.Helper()
	rel := map[string]any{"name": name, "namespace": "shop", "version": version,
		"info": map[string]any{"status": "deployed"}, "chart": map[string]any{"values": chartValues}, "config": config}
	b, _ := json.Marshal(rel)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b)
	zw.Close()
	enc := base64.StdEncoding.EncodeToString(z.Bytes())
	return map[string]any{"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
		"metadata": map[string]any{"name": "sh.helm.release.v1." + name + ".v2",
			"labels": map[string]any{"owner": "helm", "name": name, "status": "deployed", "version": "2"}},
		"data": map[string]any{"release": base64.StdEncoding.EncodeToString([]byte(enc))}}
}

func deploymentImages(t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource, name string) map[string]string {
	t.Helper()
	u, err := dyn.Resource(gvr).Namespace("shop").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range []string{"initContainers", "containers"} {
		cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", f)
		for _, c := range cs {
			m := c.(map[string]any)
			out[m["name"].(string)] = m["image"].(string)
		}
	}
	return out
}

// TestCutoverLeavesGitOpsObjectsToTheirSource: on a real kube-apiserver,
// objects annotated as Argo CD, Flux and Helm annotate them are reported
// with their manager and left alone (a sync would undo a live change);
// the kustomize patch written per application, applied with kustomize's
// API to the application as Git holds it, renders the target's images
// (the digest kept where pinned); the Helm release's values that carry
// images are listed; --include-managed rewrites them live, and the
// rollback restores them.
func TestCutoverLeavesGitOpsObjectsToTheirSource(t *testing.T) {
	t.Parallel()
	c, dyn := gitopsPlatform(t)
	kc := c.UserKubeconfig(t, "admin", "system:masters")
	dir := t.TempDir()
	good := verifyReport(t, filepath.Join(dir, "run"), true)
	before := map[string]map[string]string{}
	names := map[string]schema.GroupVersionResource{"web": gvrDeployment, "db": gvrStatefulSet, "worker": gvrDeployment, "chart": gvrDeployment, "plain": gvrDeployment, "operated": gvrDeployment}
	for n, gvr := range names {
		before[n] = deploymentImages(t, dyn, gvr, n)
	}

	code, stdout, stderr := runCLI(t, nil, "cutover", "--kubeconfig", kc, "--verify-report", good, "--confirm")
	if code != 0 {
		t.Fatalf("cutover: exit %d\n%s\n%s", code, stdout, stderr)
	}
	res := readSwitch(t, filepath.Join(dir, "run"))
	byRef := map[string]switchresult.Object{}
	for _, ob := range res.Clusters[0].Objects {
		byRef[ob.Ref()] = ob
	}
	wantOwner := map[string]struct{ action, manager, name, via string }{
		"deployment/shop/web":      {switchmode.ActionManaged, "argocd", "shop-app", "annotation argocd.argoproj.io/tracking-id"},
		"statefulset/shop/db":      {switchmode.ActionManaged, "argocd", "shop-app", "annotation argocd.argoproj.io/tracking-id"},
		"deployment/shop/worker":   {switchmode.ActionManaged, "flux-kustomize", "apps", "label kustomize.toolkit.fluxcd.io/name"},
		"deployment/shop/chart":    {switchmode.ActionManaged, "helm", "shop", "annotation meta.helm.sh/release-name"},
		"deployment/shop/plain":    {switchmode.ActionRewritten, "", "", ""},
		"deployment/shop/operated": {switchmode.ActionRewritten, "", "", ""},
	}
	for ref, w := range wantOwner {
		ob, ok := byRef[ref]
		if !ok {
			t.Errorf("switch.json has no %s", ref)
			continue
		}
		if ob.Action != w.action || ob.Owner == nil || ob.Owner.Manager != w.manager || ob.Owner.Name != w.name || ob.Owner.Via != w.via {
			t.Errorf("%s: action %s owner %+v, want %s by %s %s (%s)", ref, ob.Action, ob.Owner, w.action, w.manager, w.name, w.via)
		}
		if w.action == switchmode.ActionManaged && (!strings.Contains(ob.Note, "--include-managed") || !strings.Contains(ob.Note, "put the legacy images back")) {
			t.Errorf("%s: the note does not say why it was left alone: %q", ref, ob.Note)
		}
	}
	if ob := byRef["deployment/shop/operated"]; ob.Owner == nil || strings.Join(ob.Owner.FieldManagers, ",") != "platform-operator" {
		t.Errorf("the operator's deployment: owner %+v, want field manager platform-operator", ob.Owner)
	}
	if ob := byRef["deployment/shop/plain"]; ob.Owner == nil || strings.Join(ob.Owner.FieldManagers, ",") != "kubectl-client-side-apply" {
		t.Errorf("the plain deployment: owner %+v, want field manager kubectl-client-side-apply", ob.Owner)
	}
	if res.Managed != 4 || res.Rewritten != 2 {
		t.Errorf("switch.json: managed %d rewritten %d, want 4, 2", res.Managed, res.Rewritten)
	}
	for _, want := range []string{"owner: argocd shop-app (annotation argocd.argoproj.io/tracking-id)", "deployment shop/worker: managed", "4 left to Argo CD, Flux or Helm"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the cutover's output lacks %q", want)
		}
	}
	// Managed objects untouched, the others switched.
	for n, gvr := range names {
		got := deploymentImages(t, dyn, gvr, n)
		if n == "plain" || n == "operated" {
			if got[map[string]string{"plain": "p", "operated": "o"}[n]] != newReg+"/shop/api:v1" {
				t.Errorf("%s not rewritten: %v", n, got)
			}
			continue
		}
		assertSame(t, n+" (managed) after the cutover", before[n], got)
	}

	// The sources: one per application or release.
	srcs := map[string]switchresult.Source{}
	for _, s := range res.Clusters[0].Sources {
		srcs[s.Manager+" "+s.Name] = s
	}
	argo, flux, helm := srcs["argocd shop-app"], srcs["flux-kustomize apps"], srcs["helm shop"]
	if argo.Error != "" || argo.File != "gitops/argocd-shop-app/kustomization.yaml" || len(argo.Objects) != 2 {
		t.Errorf("Argo CD source %+v", argo)
	}
	if flux.Error != "" || flux.File != "gitops/flux-kustomize-flux-system-apps/kustomization.yaml" {
		t.Errorf("Flux source %+v", flux)
	}
	wantValues := map[string][2]string{
		"global.registry":  {legacyReg, newReg},
		"image.repository": {legacyReg + "/shop/api", newReg + "/shop/api"},
		"sidecar.image":    {legacyReg + "/shop/migrate:v1", newReg + "/shop/migrate:v1"},
	}
	if len(helm.Values) != len(wantValues) || helm.File != "" {
		t.Errorf("Helm source: %+v, want the values %v", helm, wantValues)
	}
	for _, v := range helm.Values {
		if w := wantValues[v.Path]; w[0] != v.From || w[1] != v.To {
			t.Errorf("Helm value %s: %s → %s, want %v", v.Path, v.From, v.To, w)
		}
	}

	// The application as Git holds it, with the patch committed: kustomize
	// renders the target's images.
	app := t.TempDir()
	writeApp := func(name, body string) {
		if err := os.WriteFile(filepath.Join(app, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeApp("kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [web.yaml, db.yaml]\ncomponents: [regmigrate]\n")
	writeApp("web.yaml", `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers: [{name: migrate, image: `+legacyReg+`/shop/migrate:v1}]
      containers:
      - {name: web, image: `+legacyReg+`/shop/api:v1}
      - {name: proxy, image: docker.io/library/nginx:1.27}
`)
	writeApp("db.yaml", `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: agent, image: "`+legacyReg+`/tools/agent@`+digestAgent+`"}]
`)
	if err := os.MkdirAll(filepath.Join(app, "regmigrate"), 0o755); err != nil {
		t.Fatal(err)
	}
	comp := readFile(t, filepath.Join(dir, "run", argo.File))
	writeApp("regmigrate/kustomization.yaml", comp)
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), app)
	if err != nil {
		t.Fatalf("kustomize build of the application with the patch: %v\n%s", err, comp)
	}
	rendered := map[string]string{}
	for _, r := range m.Resources() {
		u := &unstructured.Unstructured{}
		b, _ := r.MarshalJSON()
		if err := u.UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"initContainers", "containers"} {
			cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", f)
			for _, c := range cs {
				mm := c.(map[string]any)
				rendered[u.GetName()+"/"+mm["name"].(string)] = mm["image"].(string)
			}
		}
	}
	assertSame(t, "the application rendered with the patch", map[string]string{
		"web/migrate": newReg + "/shop/migrate:v1", "web/web": newReg + "/shop/api:v1", "web/proxy": "docker.io/library/nginx:1.27",
		"db/agent": newReg + "/tools/agent@" + digestAgent,
	}, rendered)
	if readme := readFile(t, filepath.Join(dir, "run", "gitops", "argocd-shop-app", "README.md")); !strings.Contains(readme, "deployment/shop/web") {
		t.Errorf("the patch's README does not name its objects:\n%s", readme)
	}

	// --include-managed: rewritten live too; then the rollback restores.
	if code, stdout, stderr = runCLI(t, nil, "cutover", "--kubeconfig", kc, "--verify-report", good, "--include-managed", "--confirm"); code != 0 {
		t.Fatalf("cutover --include-managed: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if got := deploymentImages(t, dyn, gvrDeployment, "web"); got["web"] != newReg+"/shop/api:v1" || got["migrate"] != newReg+"/shop/migrate:v1" {
		t.Errorf("--include-managed left web as it was: %v", got)
	}
	if got := deploymentImages(t, dyn, gvrStatefulSet, "db"); got["agent"] != newReg+"/tools/agent@"+digestAgent {
		t.Errorf("--include-managed left db as it was: %v", got)
	}
	if r := readSwitch(t, filepath.Join(dir, "run")); r.Managed != 0 || r.Rewritten != 4 || len(r.Clusters[0].Sources) != 3 {
		t.Errorf("--include-managed: managed %d rewritten %d sources %d, want 0, 4, 3 (the sources still need the change)", r.Managed, r.Rewritten, len(r.Clusters[0].Sources))
	}
	if code, stdout, stderr = runCLI(t, nil, "cutover", "--kubeconfig", kc, "--rollback", "--out", dir, "--confirm"); code != 0 {
		t.Fatalf("rollback: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for n, gvr := range names {
		assertSame(t, n+" after the rollback", before[n], deploymentImages(t, dyn, gvr, n))
	}
}

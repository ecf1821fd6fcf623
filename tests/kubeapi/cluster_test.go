package kubeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/tests/imageapi"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

var (
	configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	rolesGVR      = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}
	bindingsGVR   = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}
)

func obj(m map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: m} }

func dyn(t *testing.T, cfg *rest.Config) dynamic.Interface {
	t.Helper()
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

func userConfig(t *testing.T, kubeconfig string) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ContentType = "application/json"
	return cfg
}

func createNamespace(t *testing.T, dc dynamic.Interface, name string) {
	t.Helper()
	_, err := dc.Resource(namespacesGVR).Create(context.Background(), obj(map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": name}}), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// grant gives user the verbs on resources of group in namespace, through RBAC.
func grant(t *testing.T, dc dynamic.Interface, ns, user, group string, resources, verbs []string) {
	t.Helper()
	ctx := context.Background()
	name := user + "-" + strings.ReplaceAll(group, ".", "-")
	_, err := dc.Resource(rolesGVR).Namespace(ns).Create(ctx, obj(map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": map[string]any{"name": name},
		"rules": []any{map[string]any{"apiGroups": []any{group}, "resources": toAny(resources), "verbs": toAny(verbs)}}}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dc.Resource(bindingsGVR).Namespace(ns).Create(ctx, obj(map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": map[string]any{"name": name},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
		"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}}}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// eventually retries f for a few seconds: RBAC changes reach the
// authorizer's cache asynchronously.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func kubectl(t *testing.T, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl not found on PATH: install a kubectl binary (any 1.3x release) on PATH")
	}
	args = append([]string{"--kubeconfig", kubeconfig, "--cache-dir", filepath.Join(t.TempDir(), "cache")}, args...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// TestCluster starts one cluster and runs every check against it.
func TestCluster(t *testing.T) {
	c := Start(t)
	etcdRSS, apiRSS := c.RSS()
	t.Logf("started in %s; RSS etcd %d MiB, kube-apiserver %d MiB", c.StartupTime.Round(10*time.Millisecond), etcdRSS>>20, apiRSS>>20)
	admin := dyn(t, c.RESTConfig())
	ctx := context.Background()

	t.Run("ready", func(t *testing.T) {
		dc := discovery.NewDiscoveryClientForConfigOrDie(c.RESTConfig())
		v, err := dc.ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		if v.GitVersion != K8sVersion {
			t.Errorf("server version %s, want %s", v.GitVersion, K8sVersion)
		}
		raw, err := dc.RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil || string(raw) != "ok" {
			t.Errorf("/readyz: %q %v", raw, err)
		}
		if out, err := kubectl(t, c.AdminKubeconfig, "get", "--raw", "/livez"); err != nil || out != "ok" {
			t.Errorf("kubectl with the admin kubeconfig: %q %v", out, err)
		}
	})

	t.Run("namespace and configmap", func(t *testing.T) {
		createNamespace(t, admin, "cm-test")
		cm := obj(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "cfg"},
			"data": map[string]any{"k": "v"}})
		if _, err := admin.Resource(configMapsGVR).Namespace("cm-test").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := admin.Resource(configMapsGVR).Namespace("cm-test").Get(ctx, "cfg", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v, _, _ := unstructured.NestedString(got.Object, "data", "k"); v != "v" || got.GetUID() == "" {
			t.Errorf("configmap: %v", got.Object)
		}
	})

	t.Run("rbac", func(t *testing.T) {
		createNamespace(t, admin, "rbac-test")
		carol := dyn(t, userConfig(t, c.UserKubeconfig(t, "carol", "testers")))
		_, err := carol.Resource(configMapsGVR).Namespace("rbac-test").List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("carol without RBAC: %v, want 403", err)
		}
		grant(t, admin, "rbac-test", "carol", "", []string{"configmaps"}, []string{"list"})
		eventually(t, "carol with a RoleBinding", func() error {
			_, err := carol.Resource(configMapsGVR).Namespace("rbac-test").List(ctx, metav1.ListOptions{})
			return err
		})
		if _, err := carol.Resource(configMapsGVR).Namespace("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("carol outside her namespace: %v, want 403", err)
		}
	})

	t.Run("image api through the aggregator", func(t *testing.T) {
		start := time.Now()
		alauda := RegisterImageAPI(t, c, imageapi.AlaudaGroup)
		t.Logf("Image API double registered and available in %s", time.Since(start).Round(10*time.Millisecond))
		testImageAPI(t, c, alauda, "imagestreamtags")
		// a second group next to the first: kubectl needs the qualified name
		openshift := RegisterImageAPI(t, c, imageapi.OpenShiftGroup)
		testImageAPI(t, c, openshift, "imagestreamtags."+imageapi.OpenShiftGroup)
	})

	etcdRSS, apiRSS = c.RSS()
	t.Logf("at the end: RSS etcd %d MiB, kube-apiserver %d MiB", etcdRSS>>20, apiRSS>>20)
}

func testImageAPI(t *testing.T, c *Cluster, d *imageapi.Double, kubectlResource string) {
	ctx := context.Background()
	admin := dyn(t, c.RESTConfig())
	ns := "team-" + strings.Split(d.Group(), ".")[1]
	createNamespace(t, admin, ns)
	gv := schema.GroupVersion{Group: d.Group(), Version: "v1"}
	streams := admin.Resource(gv.WithResource("imagestreams")).Namespace(ns)
	isms := admin.Resource(gv.WithResource("imagestreammappings")).Namespace(ns)
	istags := admin.Resource(gv.WithResource("imagestreamtags")).Namespace(ns)
	dg := "sha256:" + strings.Repeat("c0", 32)
	ref := "newreg.example/" + ns + "/app@" + dg
	ism := obj(map[string]any{"apiVersion": gv.String(), "kind": "ImageStreamMapping",
		"metadata": map[string]any{"name": "app"}, "tag": "1.2.3",
		"image": map[string]any{"metadata": map[string]any{"name": dg}, "dockerImageReference": ref,
			"dockerImageManifestMediaType": "application/vnd.oci.image.index.v1+json",
			"dockerImageManifests": []any{map[string]any{"digest": "sha256:" + strings.Repeat("c1", 32),
				"mediaType": "application/vnd.oci.image.manifest.v1+json", "manifestSize": int64(1234), "architecture": "amd64", "os": "linux"}}}})

	// The 404 for a missing stream reaches the client intact through the aggregator.
	_, err := isms.Create(ctx, ism, metav1.CreateOptions{})
	var st apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !asStatus(err, &st) || st.Status().Details == nil ||
		st.Status().Details.Kind != "imagestreammappings" || st.Status().Details.Name != "app" {
		t.Fatalf("ISM before the stream: %v", err)
	}
	if _, err := streams.Create(ctx, obj(map[string]any{"apiVersion": gv.String(), "kind": "ImageStream",
		"metadata": map[string]any{"name": "app"}}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := isms.Create(ctx, ism, metav1.CreateOptions{}); err != nil {
		t.Fatalf("ISM: %v", err)
	}
	ist, err := istags.Get(ctx, "app:1.2.3", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gotRef, _, _ := unstructured.NestedString(ist.Object, "image", "dockerImageReference")
	gen, _, _ := unstructured.NestedInt64(ist.Object, "generation")
	if gotRef != ref || gen != 1 || ist.GetKind() != "ImageStreamTag" || ist.Object["tag"] != nil {
		t.Errorf("istag: %v", ist.Object)
	}
	// The double saw the admin, as the aggregator told it.
	var users []string
	for _, r := range d.Requests() {
		if r.Resource == "imagestreammappings" {
			users = append(users, r.User)
		}
	}
	if len(users) != 2 || users[0] != "admin" {
		t.Errorf("ISM requests as seen by the double: users %v", users)
	}

	// RBAC is enforced by the real apiserver: dave gets 403, the double sees nothing.
	daveCfg := userConfig(t, c.UserKubeconfig(t, "dave"))
	dave := dyn(t, daveCfg)
	before := len(d.Requests())
	_, err = dave.Resource(gv.WithResource("imagestreammappings")).Namespace(ns).Create(ctx, ism, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("dave creating an ISM: %v, want 403", err)
	}
	if _, err := dave.Resource(gv.WithResource("imagestreamtags")).Namespace(ns).Get(ctx, "app:1.2.3", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("dave reading an istag: %v, want 403", err)
	}
	if n := len(d.Requests()); n != before {
		t.Errorf("denied requests reached the double (%d -> %d)", before, n)
	}
	grant(t, admin, ns, "dave", d.Group(), []string{"imagestreamtags"}, []string{"get", "list"})
	eventually(t, "dave with a RoleBinding", func() error {
		_, err := dave.Resource(gv.WithResource("imagestreamtags")).Namespace(ns).Get(ctx, "app:1.2.3", metav1.GetOptions{})
		return err
	})
	if r := d.Requests(); r[len(r)-1].User != "dave" {
		t.Errorf("last request user %q, want dave", r[len(r)-1].User)
	}

	// The protobuf gotcha holds through the aggregator: the double answers 415.
	body := bytes.NewReader([]byte("k8s\x00"))
	req, _ := http.NewRequest("POST", c.Host+"/apis/"+gv.String()+"/namespaces/"+ns+"/imagestreams", body)
	req.Header.Set("Content-Type", "application/vnd.kubernetes.protobuf")
	hc, err := c.httpClient()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("protobuf through the aggregator: %s, want 415", resp.Status)
	}

	// kubectl, through the aggregator.
	out, err := kubectl(t, c.AdminKubeconfig, "get", kubectlResource, "-n", ns)
	if err != nil || !strings.Contains(out, "IMAGE REFERENCE") || !strings.Contains(out, ref) {
		t.Errorf("kubectl get imagestreamtags: %v\n%s", err, out)
	}
	out, err = kubectl(t, c.AdminKubeconfig, "get", kubectlResource, "-n", ns, "-o", "json")
	var list struct {
		Items []imageapi.ImageStreamTag `json:"items"`
	}
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Items) != 1 || list.Items[0].Image.DockerImageReference != ref {
		t.Errorf("kubectl get imagestreamtags -o json: %v\n%s", err, out)
	}
	manifest := filepath.Join(t.TempDir(), "is.yaml")
	os.WriteFile(manifest, []byte("apiVersion: "+gv.String()+"\nkind: ImageStream\nmetadata:\n  name: web\n"), 0o644)
	if out, err := kubectl(t, c.AdminKubeconfig, "create", "-n", ns, "-f", manifest); err != nil {
		t.Errorf("kubectl create: %v\n%s", err, out)
	} else if _, ok := d.ImageStream(ns, "web"); !ok {
		t.Errorf("kubectl create did not reach the double: %s", out)
	}
}

func asStatus(err error, st *apierrors.APIStatus) bool {
	s, ok := err.(apierrors.APIStatus)
	*st = s
	return ok
}

// TestClusterOnAnotherAddress: Options.Address is where the apiserver
// listens and what clients use (a node's bridge address in tests/cluster);
// its certificate names it.
func TestClusterOnAnotherAddress(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := StartCluster(ctx, Options{Dir: t.TempDir(), Logf: t.Logf, Address: "127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if !strings.HasPrefix(c.Host, "https://127.0.0.2:") {
		t.Errorf("Host %s, want https://127.0.0.2:PORT", c.Host)
	}
	if _, err := discovery.NewDiscoveryClientForConfigOrDie(c.RESTConfig()).ServerVersion(); err != nil {
		t.Errorf("GET /version through 127.0.0.2 with the cluster CA: %v", err)
	}
	if _, err := StartCluster(ctx, Options{Dir: t.TempDir(), Address: "node"}); err == nil {
		t.Error("Address \"node\" accepted")
	}
}

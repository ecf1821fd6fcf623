package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/tests/imageapi"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

// start runs the command in-process and returns its kubeconfig.
func start(t *testing.T, args ...string) (kubeconfig string, srv *imageapi.Server) {
	t.Helper()
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *imageapi.Server, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- run(ctx, append([]string{"--kubeconfig-out", kubeconfig}, args...), &out,
			func(s *imageapi.Server, _ *imageapi.Double) { ready <- s })
	}()
	select {
	case srv = <-ready:
	case err := <-done:
		t.Fatalf("imageapi-double exited: %v\n%s", err, out.String())
	case <-time.After(10 * time.Second):
		t.Fatal("imageapi-double did not start")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	if !strings.Contains(out.String(), srv.URL) {
		t.Errorf("output does not name the address %s: %q", srv.URL, out.String())
	}
	return kubeconfig, srv
}

func kubectl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	out, err := kubectlErr(t, kubeconfig, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func kubectlErr(t *testing.T, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl not found on PATH: install it (e.g. apt-get install kubectl from the Kubernetes apt repository, or put a kubectl binary on PATH)")
	}
	args = append([]string{"--kubeconfig", kubeconfig, "--cache-dir", filepath.Join(t.TempDir(), "cache")}, args...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

func TestStandaloneWithClientGoAndKubectl(t *testing.T) {
	for _, tls := range []bool{false, true} {
		args := []string{"--listen", "127.0.0.1:0", "--group", imageapi.AlaudaGroup, "--registry-host", "reg.internal:5000", "--namespace", "team-a"}
		if tls {
			args = append(args, "--tls")
		}
		kubeconfig, srv := start(t, args...)
		if tls != strings.HasPrefix(srv.URL, "https://") {
			t.Fatalf("--tls=%v served %s", tls, srv.URL)
		}

		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ContentType = "application/json"
		dc, err := dynamic.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		gv := schema.GroupVersion{Group: imageapi.AlaudaGroup, Version: "v1"}
		ctx := context.Background()
		is := &unstructured.Unstructured{Object: map[string]any{"apiVersion": gv.String(), "kind": "ImageStream",
			"metadata": map[string]any{"name": "app"}}}
		if _, err := dc.Resource(gv.WithResource("imagestreams")).Namespace("team-a").Create(ctx, is, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		dg := "sha256:" + strings.Repeat("ab", 32)
		ism := &unstructured.Unstructured{Object: map[string]any{"apiVersion": gv.String(), "kind": "ImageStreamMapping",
			"metadata": map[string]any{"name": "app"}, "tag": "1.2.3",
			"image": map[string]any{"metadata": map[string]any{"name": dg}, "dockerImageReference": "newreg.example/team-a/app@" + dg}}}
		if _, err := dc.Resource(gv.WithResource("imagestreammappings")).Namespace("team-a").Create(ctx, ism, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}

		var list struct {
			Items []imageapi.ImageStreamTag `json:"items"`
		}
		out := kubectl(t, kubeconfig, "get", "imagestreamtags", "-n", "team-a", "-o", "json")
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("kubectl -o json: %v\n%s", err, out)
		}
		if len(list.Items) != 1 || list.Items[0].Name != "app:1.2.3" || list.Items[0].Image.DockerImageReference != "newreg.example/team-a/app@"+dg {
			t.Errorf("kubectl get istag -o json: %s", out)
		}
		raw := kubectl(t, kubeconfig, "get", "--raw", "/apis/"+imageapi.AlaudaGroup+"/v1")
		if !strings.Contains(raw, `"imagestreammappings"`) || !strings.Contains(raw, `"APIResourceList"`) {
			t.Errorf("kubectl get --raw: %s", raw)
		}
		table := kubectl(t, kubeconfig, "get", "istag") // namespace from the context
		if !strings.Contains(table, "IMAGE REFERENCE") || !strings.Contains(table, "app:1.2.3") {
			t.Errorf("kubectl get istag:\n%s", table)
		}
		if out, err := kubectlErr(t, kubeconfig, "get", "istag", "app:nope"); err == nil ||
			!strings.Contains(out, `imagestreamtags.image.alauda.io "app:nope" not found`) {
			t.Errorf("kubectl get of a missing istag: %v %s", err, out)
		}
		isTable := kubectl(t, kubeconfig, "get", "is", "app")
		if !strings.Contains(isTable, "reg.internal:5000/team-a/app") || !strings.Contains(isTable, "1.2.3") {
			t.Errorf("kubectl get is:\n%s", isTable)
		}
	}
}

func TestFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--nope"}, &out, nil); err == nil {
		t.Error("unknown flag accepted")
	}
	if err := run(context.Background(), []string{"extra"}, &out, nil); err == nil {
		t.Error("extra argument accepted")
	}
}

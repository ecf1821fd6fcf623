package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
)

// installArgoCRDs creates Argo's minimal CRDs (from the argo-workflows
// module the project pins) and waits until they are served.
func installArgoCRDs(t *testing.T, c *kubeapi.Cluster, names ...string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-workflows/v3").Output()
	if err != nil {
		t.Fatalf("locating the argo-workflows module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "manifests", "base", "crds", "minimal")
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, "argoproj.io_"+n+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(b, &u.Object); err != nil {
			t.Fatal(err)
		}
		if _, err := dyn.Resource(crds).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating CRD %s: %v", n, err)
		}
	}
	gv := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1"}
	for _, n := range names {
		deadline := time.Now().Add(30 * time.Second)
		for {
			var err error
			if r := dyn.Resource(gv.GroupVersion().WithResource(n)); strings.HasPrefix(n, "cluster") { // cluster-scoped
				_, err = r.List(context.Background(), metav1.ListOptions{})
			} else {
				_, err = r.Namespace("default").List(context.Background(), metav1.ListOptions{})
			}
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("CRD %s not served: %v", n, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// TestSubmitCreatesTheWorkflowInARealAPIServer: `regmigrate submit` creates
// the generated Workflow and CronWorkflow through a real kube-apiserver with
// Argo's CRDs installed (tests/argoe2e runs them under the Argo controller).
func TestSubmitCreatesTheWorkflowInARealAPIServer(t *testing.T) {
	t.Parallel()
	cluster := kubeapi.Start(t)
	installArgoCRDs(t, cluster, "workflows", "cronworkflows")
	code, stdout, _ := runCLI(t, nil, "submit", "--from", "legacy.example:5000", "--to", "new.example:5000", "--image-tag", "v1.2.3",
		"--secret", "registry-auth", "--argo-kubeconfig", cluster.AdminKubeconfig, "--namespace-for-workflow", "default",
		"--argo-ui", "https://argo.example")
	if code != contract.ExitOK {
		t.Fatalf("submit exit %d", code)
	}
	if !strings.Contains(stdout, "workflow.argoproj.io/") || !strings.Contains(stdout, "https://argo.example/workflows/default/") {
		t.Errorf("stdout %q: want the created name and the UI link", stdout)
	}
	dyn, _ := dynamic.NewForConfig(cluster.RESTConfig())
	wfs, err := dyn.Resource(schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"}).Namespace("default").List(context.Background(), metav1.ListOptions{})
	if err != nil || len(wfs.Items) != 1 {
		t.Fatalf("workflows in the cluster: %v (%v), want 1", len(wfs.Items), err)
	}
	entry, _, _ := unstructured.NestedString(wfs.Items[0].Object, "spec", "entrypoint")
	if entry == "" {
		t.Error("the stored Workflow has no entrypoint")
	}

	code, stdout, _ = runCLI(t, nil, "submit", "--from", "legacy.example:5000", "--to", "new.example:5000", "--image-tag", "v1.2.3",
		"--cron", "0 */6 * * *", "--argo-kubeconfig", cluster.AdminKubeconfig, "--namespace-for-workflow", "default")
	if code != contract.ExitOK || !strings.Contains(stdout, "cronworkflow.argoproj.io/") {
		t.Fatalf("submit --cron exit %d: %s", code, stdout)
	}
	cw, err := dyn.Resource(schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "cronworkflows"}).Namespace("default").List(context.Background(), metav1.ListOptions{})
	if err != nil || len(cw.Items) != 1 {
		t.Fatalf("cronworkflows: %v (%v), want 1", len(cw.Items), err)
	}
	if p, _, _ := unstructured.NestedString(cw.Items[0].Object, "spec", "concurrencyPolicy"); p != "Forbid" {
		t.Errorf("concurrencyPolicy %q, want Forbid", p)
	}

	// -n as kubectl and argo spell it; -o name prints what was created,
	// as kubectl create -o name does, the readable line on stderr.
	code, stdout, stderr := runCLI(t, nil, "submit", "--from", "legacy.example:5000", "--to", "new.example:5000", "--image-tag", "v1.2.3",
		"--argo-kubeconfig", cluster.AdminKubeconfig, "-n", "default", "-o", "name")
	if code != contract.ExitOK || !regexp.MustCompile(`^workflow\.argoproj\.io/regmigrate-[a-z0-9]+\n$`).MatchString(stdout) || !strings.Contains(stderr, "created in namespace default") {
		t.Errorf("submit -o name: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, nil, "submit", "--from", "legacy.example:5000", "--to", "new.example:5000", "--image-tag", "v1.2.3",
		"--argo-kubeconfig", cluster.AdminKubeconfig, "-n", "default", "-o", "json")
	var created struct {
		Kind     string
		Metadata struct{ Name, Namespace, UID string }
	}
	if err := json.Unmarshal([]byte(stdout), &created); code != contract.ExitOK || err != nil || created.Kind != "Workflow" || created.Metadata.UID == "" || created.Metadata.Namespace != "default" {
		t.Errorf("submit -o json: exit %d, %v, %+v; want the Workflow as the apiserver stored it", code, err, created)
	}
}

// TestSubmitWatchFollowsTheWorkflowToItsEnd: --watch reads the Workflow's
// status through the real apiserver until it ends. With no Argo controller
// here (issue 6 brings one), the test writes the status a controller would.
func TestSubmitWatchFollowsTheWorkflowToItsEnd(t *testing.T) {
	t.Parallel()
	cluster := kubeapi.Start(t)
	installArgoCRDs(t, cluster, "workflows")
	dyn, _ := dynamic.NewForConfig(cluster.RESTConfig())
	gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"}
	for _, tc := range []struct {
		end      string
		wantCode int
	}{{"Succeeded", contract.ExitOK}, {"Failed", contract.ExitFailed}} {
		done := make(chan struct{})
		go func() { // the controller's part
			defer close(done)
			for _, phase := range []string{"Running", tc.end} {
				for {
					l, err := dyn.Resource(gvr).Namespace("default").List(context.Background(), metav1.ListOptions{LabelSelector: "!done"})
					if err == nil && len(l.Items) == 1 {
						u := &l.Items[0]
						unstructured.SetNestedField(u.Object, phase, "status", "phase")
						unstructured.SetNestedField(u.Object, "1/2", "status", "progress")
						if phase == tc.end {
							u.SetLabels(map[string]string{"done": "true"})
						}
						if _, err := dyn.Resource(gvr).Namespace("default").Update(context.Background(), u, metav1.UpdateOptions{}); err == nil {
							break
						}
					}
					time.Sleep(100 * time.Millisecond)
				}
				time.Sleep(300 * time.Millisecond)
			}
		}()
		code, stdout, _ := runCLI(t, nil, "submit", "--from", "legacy.example:5000", "--to", "new.example:5000", "--image-tag", "v1.2.3",
			"--argo-kubeconfig", cluster.AdminKubeconfig, "--namespace-for-workflow", "default", "--watch", "--watch-interval", "100ms")
		<-done
		if code != tc.wantCode || !strings.Contains(stdout, tc.end) {
			t.Errorf("watch to %s: exit %d, stdout %q; want %d and the phase", tc.end, code, stdout, tc.wantCode)
		}
	}
}

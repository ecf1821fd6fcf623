package e2e

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
)

// TestSubmitClusterScopeInARealAPIServer: `submit --template
// --cluster-scope` creates the ClusterWorkflowTemplate (cluster-scoped,
// its UI link without a namespace), and `submit --from-template
// --cluster-scope` a Workflow running it, refused with what to do while
// it is not installed, as a namespaced template's run is (tests/argoe2e
// runs one under the Argo controller).
func TestSubmitClusterScopeInARealAPIServer(t *testing.T) {
	t.Parallel()
	cluster := kubeapi.Start(t)
	installArgoCRDs(t, cluster, "workflows", "clusterworkflowtemplates")
	flags := []string{"--from", "legacy.example:5000", "--to", "new.example:5000", "--argo-kubeconfig", cluster.AdminKubeconfig, "-n", "default"}

	code, _, stderr := runCLI(t, nil, append([]string{"submit", "--from-template", "--cluster-scope"}, flags...)...)
	if code != contract.ExitUsage || !strings.Contains(stderr, "no ClusterWorkflowTemplate regmigrate: install it first with `regmigrate submit -f SPEC --template --cluster-scope") {
		t.Errorf("--from-template --cluster-scope before the template is installed: exit %d, %s", code, stderr)
	}

	// The same check for the namespaced template, by the name the
	// migration gets when no spec names it.
	code, _, stderr = runCLI(t, nil, append([]string{"submit", "--from-template"}, flags...)...)
	if code != contract.ExitUsage || !strings.Contains(stderr, "no WorkflowTemplate regmigrate in namespace default: install it first") {
		t.Errorf("--from-template before the template is installed: exit %d, %s", code, stderr)
	}

	code, stdout, stderr := runCLI(t, nil, append([]string{"submit", "--template", "--cluster-scope", "--secret", "registry-auth", "--image-tag", "v1.2.3", "--argo-ui", "https://argo.example"}, flags...)...)
	if code != contract.ExitOK || !strings.Contains(stdout, "clusterworkflowtemplate.argoproj.io/regmigrate created (cluster-scoped)\n") ||
		!strings.Contains(stdout, "https://argo.example/cluster-workflow-templates/regmigrate\n") {
		t.Fatalf("submit --template --cluster-scope: exit %d\n%s%s", code, stdout, stderr)
	}
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1"}
	tmpl, err := dyn.Resource(gvr.GroupVersion().WithResource("clusterworkflowtemplates")).Get(context.Background(), "regmigrate", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the ClusterWorkflowTemplate in the cluster: %v", err)
	}
	if entry, _, _ := unstructured.NestedString(tmpl.Object, "spec", "entrypoint"); tmpl.GetNamespace() != "" || entry != "main" {
		t.Errorf("the stored ClusterWorkflowTemplate: namespace %q, entrypoint %q", tmpl.GetNamespace(), entry)
	}

	code, stdout, stderr = runCLI(t, nil, append([]string{"submit", "--from-template", "--cluster-scope", "--cutover"}, flags...)...)
	if code != contract.ExitOK || !strings.Contains(stdout, "created in namespace default") {
		t.Fatalf("submit --from-template --cluster-scope: exit %d\n%s%s", code, stdout, stderr)
	}
	wfs, err := dyn.Resource(gvr.GroupVersion().WithResource("workflows")).Namespace("default").List(context.Background(), metav1.ListOptions{})
	if err != nil || len(wfs.Items) != 1 {
		t.Fatalf("workflows in the cluster: %d (%v), want 1", len(wfs.Items), err)
	}
	ref, _, _ := unstructured.NestedMap(wfs.Items[0].Object, "spec", "workflowTemplateRef")
	if ref["name"] != "regmigrate" || ref["clusterScope"] != true {
		t.Errorf("the Workflow runs %v, want the ClusterWorkflowTemplate regmigrate (clusterScope)", ref)
	}
}

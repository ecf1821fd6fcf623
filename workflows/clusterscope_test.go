package workflows_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/regmigrate/regmigrate/workflows"
)

// clusterObjects are the golden objects of a cluster-scoped template: the
// ClusterWorkflowTemplate of the backfill plan, and a Workflow of each
// run and the delta CronWorkflow that reference it.
func clusterObjects(t *testing.T) (*wfv1.ClusterWorkflowTemplate, map[string]any) {
	t.Helper()
	p := plans()["backfill"]
	p.ClusterScope = true
	tmpl, err := workflows.ClusterTemplate(p)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{"backfill-cluster-template": tmpl}
	for _, run := range workflows.Runs {
		wf, err := workflows.FromTemplate(p, run, nil)
		if err != nil {
			t.Fatal(err)
		}
		out["backfill-cluster-from-template-"+string(run)] = wf
	}
	cron, err := workflows.CronFromTemplate(p, "0 */6 * * *", nil)
	if err != nil {
		t.Fatal(err)
	}
	out["backfill-cluster-from-template-cron"] = cron
	return tmpl, out
}

// TestClusterTemplate: the ClusterWorkflowTemplate is the namespaced
// template's pipeline without a namespace; what runs it references it
// with clusterScope; each passes Argo's validator and lint (directly and
// as YAML), and matches its golden file.
func TestClusterTemplate(t *testing.T) {
	tmpl, objs := clusterObjects(t)
	nsTmpl, err := workflows.Template(plans()["backfill"])
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.Kind != "ClusterWorkflowTemplate" || tmpl.Namespace != "" || tmpl.Name != nsTmpl.Name {
		t.Errorf("ClusterTemplate: kind %q namespace %q name %q, want a ClusterWorkflowTemplate %s without a namespace", tmpl.Kind, tmpl.Namespace, tmpl.Name, nsTmpl.Name)
	}
	if !equality.Semantic.DeepEqual(tmpl.Spec, nsTmpl.Spec) {
		t.Error("the ClusterWorkflowTemplate's spec differs from the WorkflowTemplate's")
	}
	cluster := workflows.AsTemplate(tmpl)
	for name, obj := range objs {
		if name != "backfill-cluster-template" {
			if ref := spec(obj).WorkflowTemplateRef; ref == nil || !ref.ClusterScope || ref.Name != tmpl.Name {
				t.Errorf("%s references %+v, want the ClusterWorkflowTemplate %s (clusterScope)", name, ref, tmpl.Name)
			}
		}
		if err := workflows.Validate(obj, cluster); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		got, err := workflows.YAML(obj)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := workflows.Lint(name, got, cluster); err != nil {
			t.Errorf("lint %s: %v", name, err)
		}
		file := filepath.Join("testdata", name+".yaml")
		if *update {
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%v (go test ./workflows -update writes it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generated object (go test ./workflows -update, then review the diff):\n%s", file, lineDiff(string(want), string(got)))
		}
	}
}

// TestClusterScopeResolvesOnlyToItsKind: a reference with clusterScope
// does not resolve to a namespaced WorkflowTemplate of the same name, nor
// one without it to a ClusterWorkflowTemplate, as in a cluster.
func TestClusterScopeResolvesOnlyToItsKind(t *testing.T) {
	tmpl, objs := clusterObjects(t)
	nsTmpl, err := workflows.Template(plans()["backfill"])
	if err != nil {
		t.Fatal(err)
	}
	wf := objs["backfill-cluster-from-template-main"]
	if err := workflows.Validate(wf, nsTmpl); err == nil || !strings.Contains(err.Error(), "clusterworkflowtemplates.argoproj.io") {
		t.Errorf("a clusterScope reference against a WorkflowTemplate: %v, want clusterworkflowtemplates not found", err)
	}
	nsWf, err := workflows.FromTemplate(plans()["backfill"], workflows.RunMigrate, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := workflows.Validate(nsWf, workflows.AsTemplate(tmpl)); err == nil || !strings.Contains(err.Error(), "workflowtemplates.argoproj.io") {
		t.Errorf("a namespaced reference against a ClusterWorkflowTemplate: %v, want workflowtemplates not found", err)
	}
	// Lint finds the ClusterWorkflowTemplate in a file given beside.
	b, _ := workflows.YAML(tmpl)
	w, _ := workflows.YAML(wf)
	if res, err := workflows.Lint("pipeline.yaml", append(append(b, "---\n"...), w...)); err != nil || len(res.Checked) != 2 {
		t.Errorf("lint of the ClusterWorkflowTemplate and a Workflow of it in one file: %+v %v", res, err)
	}
}

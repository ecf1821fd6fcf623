package manifests_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/regmigrate/regmigrate/workflows"
)

var update = flag.Bool("update", false, "rewrite base/workflowtemplate.yaml and base/cronworkflow.yaml from the generator")

// examplePlan is the migration the base's WorkflowTemplate carries: edit
// the source and target with a kustomize patch, or generate your own with
// `regmigrate generate --template`. Its step images are placeholders
// (ghcr.io/regmigrate/<step>:dev): no release is published yet, so a run
// from it needs the images patched to those `make images REGISTRY=...`
// pushed.
var examplePlan = workflows.Plan{
	Name: "regmigrate-example", Namespace: "regmigrate", ImageTag: "dev",
	Source: "legacy-registry.example:5000", Target: "registry-v2.example:5000",
	CredentialsSecret:     "regmigrate-registry-auth",
	ArtifactRepositoryRef: &workflows.ArtifactRepositoryRef{ConfigMap: "artifact-repositories", Key: "audit"},
	Backfill:              &workflows.Backfill{},
}

// exampleSchedule is the example's delta schedule: every six hours.
const exampleSchedule = "0 */6 * * *"

// TestPipelineIsGenerated: the committed WorkflowTemplate and delta
// CronWorkflow are what the generator produces (go test ./manifests
// -update rewrites them), the CronWorkflow runs the template's delta and
// is suspended (its registries are placeholders), and both pass Argo's
// validator.
func TestPipelineIsGenerated(t *testing.T) {
	tmpl, err := workflows.Template(examplePlan)
	if err != nil {
		t.Fatal(err)
	}
	cron, err := workflows.CronFromTemplate(examplePlan, exampleSchedule, nil)
	if err != nil {
		t.Fatal(err)
	}
	cron.Spec.Suspend = true
	for file, obj := range map[string]any{"workflowtemplate.yaml": tmpl, "cronworkflow.yaml": cron} {
		if err := workflows.Validate(obj, tmpl); err != nil {
			t.Fatalf("%s: Argo's validator: %v", file, err)
		}
		want, err := workflows.YAML(obj)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("base", file)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from the generator's output: run go test ./manifests -update", path)
		}
		if _, err := workflows.Lint(path, got, tmpl); err != nil {
			t.Errorf("lint %s: %v", path, err)
		}
	}
	if !cron.Spec.Suspend || cron.Spec.WorkflowSpec.WorkflowTemplateRef == nil || cron.Spec.WorkflowSpec.WorkflowTemplateRef.Name != tmpl.Name {
		t.Errorf("the example CronWorkflow: suspended %v, runs %+v; want suspended, running the template %s", cron.Spec.Suspend, cron.Spec.WorkflowSpec.WorkflowTemplateRef, tmpl.Name)
	}
}

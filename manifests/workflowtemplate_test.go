package manifests_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/regmigrate/regmigrate/workflows"
)

var update = flag.Bool("update", false, "rewrite base/workflowtemplate.yaml from the generator")

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

// TestWorkflowTemplateIsGenerated: the committed WorkflowTemplate is what
// the generator produces (go test ./manifests -update rewrites it), and it
// passes Argo's validator.
func TestWorkflowTemplateIsGenerated(t *testing.T) {
	tmpl, err := workflows.Template(examplePlan)
	if err != nil {
		t.Fatal(err)
	}
	if err := workflows.Validate(tmpl); err != nil {
		t.Fatalf("Argo's validator: %v", err)
	}
	want, err := workflows.YAML(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("base", "workflowtemplate.yaml")
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
	if _, err := workflows.Lint(path, got); err != nil {
		t.Errorf("lint %s: %v", path, err)
	}
}

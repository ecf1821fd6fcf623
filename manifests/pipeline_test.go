package manifests_test

import (
	"slices"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/regmigrate/regmigrate/workflows"
)

// TestOneApplyInstallsThePipeline: what `kubectl apply -k` of an overlay
// installs is the whole pipeline: the WorkflowTemplate, holding the
// cutover and the rollback, and the delta CronWorkflow running it; the
// cutover a user submits for the example's spec (`submit
// --from-template --cutover`) runs the same template, validates against
// it as rendered, and suspends that very CronWorkflow, in the namespace
// it runs in.
func TestOneApplyInstallsThePipeline(t *testing.T) {
	cutover, err := workflows.FromTemplate(examplePlan, workflows.RunCutover, nil)
	if err != nil {
		t.Fatal(err)
	}
	rollback, err := workflows.FromTemplate(examplePlan, workflows.RunRollback, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"overlays/acp", "overlays/openshift"} {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			var tmpl *wfv1.WorkflowTemplate
			var cron *wfv1.CronWorkflow
			for _, o := range objs {
				switch o.kind {
				case "WorkflowTemplate":
					tmpl = decode[wfv1.WorkflowTemplate](t, o)
				case "CronWorkflow":
					cron = decode[wfv1.CronWorkflow](t, o)
				}
			}
			if tmpl == nil || cron == nil {
				t.Fatalf("%s renders no WorkflowTemplate or no CronWorkflow", dir)
			}
			var entrypoints []string
			for _, tp := range tmpl.Spec.Templates {
				if tp.DAG != nil {
					entrypoints = append(entrypoints, tp.Name)
				}
			}
			for _, run := range workflows.Runs {
				if !slices.Contains(entrypoints, string(run)) {
					t.Errorf("the WorkflowTemplate %s has no %s entrypoint (has %v)", tmpl.Name, run, entrypoints)
				}
			}
			if ref := cron.Spec.WorkflowSpec.WorkflowTemplateRef; ref == nil || ref.Name != tmpl.Name || ref.ClusterScope || cron.Namespace != tmpl.Namespace {
				t.Errorf("CronWorkflow %s/%s runs %+v, want the WorkflowTemplate %s/%s", cron.Namespace, cron.Name, ref, tmpl.Namespace, tmpl.Name)
			}
			for _, wf := range []*wfv1.Workflow{cutover, rollback} {
				if ref := wf.Spec.WorkflowTemplateRef; ref == nil || ref.Name != tmpl.Name || wf.Namespace != tmpl.Namespace {
					t.Errorf("the %s Workflow runs %+v in %q, want the WorkflowTemplate %s/%s", wf.Spec.Entrypoint, ref, wf.Namespace, tmpl.Namespace, tmpl.Name)
				}
				if err := workflows.Validate(wf, tmpl); err != nil {
					t.Errorf("the %s Workflow against the installed template: %v", wf.Spec.Entrypoint, err)
				}
			}
			// The cutover's resource steps act on the installed
			// CronWorkflow, in the Workflow's namespace.
			for _, name := range []string{"delta-cron", "suspend-deltas", "resume-deltas"} {
				i := slices.IndexFunc(tmpl.Spec.Templates, func(tp wfv1.Template) bool { return tp.Name == name })
				if i < 0 || tmpl.Spec.Templates[i].Resource == nil {
					t.Errorf("the WorkflowTemplate has no resource template %s", name)
					continue
				}
				flags := strings.Join(tmpl.Spec.Templates[i].Resource.Flags, " ")
				if !strings.Contains(flags, "cronworkflows.argoproj.io "+cron.Name+" ") || !strings.Contains(flags, "--namespace={{workflow.namespace}}") {
					t.Errorf("%s acts on %q, want the installed CronWorkflow %s in the Workflow's namespace", name, flags, cron.Name)
				}
			}
		})
	}
}

package workflows_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/regmigrate/regmigrate/workflows"
)

// TestMetricsReadWhatTheStepsWrite: every metric of every object reads an
// output parameter its template has (read from the file the step writes),
// is labelled with the migration (and the shard, per shard), and has one
// help text per name (Argo refuses a second).
func TestMetricsReadWhatTheStepsWrite(t *testing.T) {
	ref := regexp.MustCompile(`\{\{outputs\.parameters\.([a-z-]+)\}\}`)
	for name, obj := range objects(t) {
		help := map[string]string{}
		seen := map[string]bool{}
		for _, tmpl := range templates(obj) {
			if tmpl.Metrics == nil {
				continue
			}
			for _, m := range tmpl.Metrics.Prometheus {
				seen[m.Name] = true
				if h, ok := help[m.Name]; ok && h != m.Help {
					t.Errorf("%s/%s: %s has two help texts", name, tmpl.Name, m.Name)
				}
				help[m.Name] = m.Help
				labels := map[string]string{}
				for _, l := range m.Labels {
					labels[l.Key] = l.Value
				}
				if labels["migration"] == "" {
					t.Errorf("%s/%s: %s has no migration label", name, tmpl.Name, m.Name)
				}
				if strings.HasPrefix(m.Name, "regmigrate_shard_") && labels["shard"] != "{{inputs.parameters.shard}}" {
					t.Errorf("%s/%s: %s labels %v: want the shard", name, tmpl.Name, m.Name, labels)
				}
				for _, sub := range ref.FindAllStringSubmatch(m.Gauge.Value, -1) {
					if !slices.ContainsFunc(tmpl.Outputs.Parameters, func(p wfv1.Parameter) bool {
						return p.Name == sub[1] && p.ValueFrom != nil && strings.HasPrefix(p.ValueFrom.Path, workflows.OutputsDir+"/")
					}) {
						t.Errorf("%s/%s: %s reads output %s, which the template does not read from the step", name, tmpl.Name, m.Name, sub[1])
					}
				}
			}
		}
		if len(templates(obj)) > 0 && !strings.HasSuffix(name, "-rollback") {
			for _, want := range []string{workflows.MetricShardImages, workflows.MetricShardBytes, workflows.MetricShardVerifyFailed,
				workflows.MetricMigrationImages, workflows.MetricMigrationBytes, workflows.MetricMigrationShards,
				workflows.MetricMigrationShardsDone, workflows.MetricStepDuration} {
				if !seen[want] {
					t.Errorf("%s: no %s", name, want)
				}
			}
		}
	}
}

// TestApprovalTimeout: the default, and one that the workflow deadline
// would overtake refused with what to do.
func TestApprovalTimeout(t *testing.T) {
	p := plans()["catalog"]
	cut, err := workflows.Cutover(p)
	if err != nil {
		t.Fatal(err)
	}
	var suspend *wfv1.SuspendTemplate
	for _, tmpl := range cut.Spec.Templates {
		if tmpl.Name == "approve" {
			suspend = tmpl.Suspend
		}
	}
	if suspend == nil || suspend.Duration != "86400" {
		t.Errorf("approval %+v: want 24h", suspend)
	}
	p.WorkflowDeadline, p.ApprovalTimeout = workflows.DefaultWorkflowDeadline, workflows.DefaultWorkflowDeadline
	if _, err := workflows.Cutover(p); err == nil || !strings.Contains(err.Error(), "want less than the workflow deadline 72h0m0s") {
		t.Errorf("an approval as long as the deadline: %v", err)
	}
	p.ApprovalTimeout, p.Notify = 0, &workflows.Notify{Format: "teams"}
	if _, err := workflows.Workflow(p); err == nil || !strings.Contains(err.Error(), "the webhook URL's Secret and key are both required") ||
		!strings.Contains(err.Error(), `format "teams": want json or slack`) {
		t.Errorf("a notification without its Secret: %v", err)
	}
}

package workflows

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"

	"github.com/regmigrate/regmigrate/steps/approval"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/notify"
	"github.com/regmigrate/regmigrate/steps/stepcli/approvalcmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/notifycmd"
)

// Watching a migration: Argo custom metrics from the steps' outputs, a
// notification when a Workflow ends, and the cutover's approval recorded.

// Metrics. The controller serves them on its /metrics with the prefix
// "argo_workflows_" (MetricPrefix); every one is labelled with the
// migration, the per-shard ones with the shard too. Gauges hold the
// latest run's values (one run of a migration at a time: the mutex).
const (
	MetricPrefix = "argo_workflows_"

	MetricStepDuration        = "regmigrate_step_duration_seconds" // {migration, step, shard}: each step's last duration
	MetricShardImages         = "regmigrate_shard_images"          // {migration, shard, status}: copied, skipped, failed
	MetricShardBytes          = "regmigrate_shard_bytes"           // {migration, shard}: bytes uploaded to the target
	MetricShardVerifyFailed   = "regmigrate_shard_verify_failed"   // {migration, shard}: images whose verification failed
	MetricMigrationImages     = "regmigrate_migration_images"      // {migration, status}: total, copied, skipped, failed
	MetricMigrationBytes      = "regmigrate_migration_bytes"       // {migration}
	MetricMigrationVerifyFail = "regmigrate_migration_verify_failed"
	MetricMigrationFailShards = "regmigrate_migration_failed_shards"
	// Progress: shards done against shards planned (export sets both, the
	// first to 0; each shard adds 1 as it ends, whatever its outcome).
	MetricMigrationShards     = "regmigrate_migration_shards"
	MetricMigrationShardsDone = "regmigrate_migration_shards_done"
)

var metricHelp = map[string]string{
	MetricStepDuration:        "Seconds the last run of a regmigrate step took (retries included)",
	MetricShardImages:         "Images of a shard by status (copied, skipped, failed) in the migration's latest run",
	MetricShardBytes:          "Bytes a shard's mirror uploaded to the target in the migration's latest run",
	MetricShardVerifyFailed:   "Images of a shard whose verification failed in the migration's latest run",
	MetricMigrationImages:     "Images of the migration's latest run by status (total, copied, skipped, failed)",
	MetricMigrationBytes:      "Bytes the migration's latest run uploaded to the target",
	MetricMigrationVerifyFail: "Images whose verification failed in the migration's latest run",
	MetricMigrationFailShards: "Shards with a failed image or check in the migration's latest run",
	MetricMigrationShards:     "Shards of the migration's current or latest run",
	MetricMigrationShardsDone: "Shards of the migration's current or latest run that have ended",
}

// metric is a gauge set to value, labelled.
func metric(name, value string, labels ...string) *wfv1.Prometheus {
	m := &wfv1.Prometheus{Name: name, Help: metricHelp[name], Gauge: &wfv1.Gauge{Value: value}}
	for i := 0; i+1 < len(labels); i += 2 {
		m.Labels = append(m.Labels, &wfv1.MetricLabel{Key: labels[i], Value: labels[i+1]})
	}
	sort.Slice(m.Labels, func(i, j int) bool { return m.Labels[i].Key < m.Labels[j].Key })
	return m
}

func out(name string) string { return "{{outputs.parameters." + name + "}}" }

// metrics of a template (nil: none).
func (p Plan) metrics(tmpl string) *wfv1.Metrics {
	mig := []string{"migration", p.Name}
	shard := "{{inputs.parameters." + paramShard + "}}"
	perShard := append([]string{"shard", shard}, mig...)
	var ms []*wfv1.Prometheus
	switch tmpl {
	case tmplShard:
		add := metric(MetricMigrationShardsDone, "1", mig...)
		add.Gauge.Operation = wfv1.GaugeOperationAdd
		return &wfv1.Metrics{Prometheus: []*wfv1.Prometheus{add}}
	case tmplExport:
		ms = append(ms, metric(MetricMigrationShards, out("shards"), mig...), metric(MetricMigrationShardsDone, "0", mig...))
	case tmplMirror:
		for _, s := range []string{contract.StatusCopied, contract.StatusSkipped, contract.StatusFailed} {
			ms = append(ms, metric(MetricShardImages, out(s), append([]string{"status", s}, perShard...)...))
		}
		ms = append(ms, metric(MetricShardBytes, out("bytes"), perShard...))
	case tmplVerify:
		ms = append(ms, metric(MetricShardVerifyFailed, out(contract.StatusFailed), perShard...))
	case tmplReport:
		for _, s := range []string{"total", contract.StatusCopied, contract.StatusSkipped, contract.StatusFailed} {
			ms = append(ms, metric(MetricMigrationImages, out(s), append([]string{"status", s}, mig...)...))
		}
		ms = append(ms,
			metric(MetricMigrationBytes, out("bytes"), mig...),
			metric(MetricMigrationVerifyFail, out("verify-failed"), mig...),
			metric(MetricMigrationFailShards, out("failed-shards"), mig...),
		)
	}
	s := ""
	switch tmpl {
	case tmplMirror, tmplBackfill, tmplVerify:
		s = shard
	}
	ms = append(ms, metric(MetricStepDuration, "{{duration}}", "migration", p.Name, "step", tmpl, "shard", s))
	return &wfv1.Metrics{Prometheus: ms}
}

// counts are the output parameters (read from OutputsDir) each step's
// metrics read, beside those the UI shows.
var metricCounts = map[string][]string{
	tmplExport: {"shards"},
	tmplMirror: {"bytes"},
	tmplVerify: {"passed", contract.StatusFailed},
	tmplReport: {"total", contract.StatusCopied, contract.StatusSkipped, contract.StatusFailed, "bytes", "verify-failed", "failed-shards"},
}

// Notify is the Workflows' exit handler: when a Workflow of the migration
// ends, its summary is posted to a webhook.
type Notify struct {
	// Secret and Key hold the webhook's URL: the pod reads it from the
	// Secret (an environment variable); it is never a parameter.
	Secret, Key string
	// Format: notify.FormatJSON (default) or notify.FormatSlack.
	Format string
	// UIBaseURL is the Argo UI's address, for a link to the Workflow.
	UIBaseURL string
}

const tmplNotify = "notify"

// notifyTemplate is the exit handler: verify's notify subcommand with the
// run directory, if the run wrote one.
func (p Plan) notifyTemplate() wfv1.Template {
	n := p.Notify
	var f flags
	f.str("format", n.Format)
	f.str("url-from", fmt.Sprintf("Secret %s, key %s", n.Secret, n.Key))
	f.str("migration", p.Name)
	f.str("workflow", "{{workflow.name}}")
	f.str("namespace", "{{workflow.namespace}}")
	f.str("status", "{{workflow.status}}")
	f.str("failures", "{{workflow.failures}}")
	f.str("ui-url", n.UIBaseURL)
	f.str("run-dir", RunDir)
	f.str("report", "artifact repository, key "+path.Join("{{workflow.name}}", "run", contract.ReportHTML))
	f.str("log-format", "json")
	run := inArtifact(artRun, RunDir, runKey)
	run.Optional = true // a run that ended before export wrote it, or a rollback
	t := p.container(tmplNotify, contract.StepVerify, append([]string{notifycmd.Name}, f...), step{
		inputs: wfv1.Inputs{Artifacts: wfv1.Artifacts{run}},
		retry:  true,
	})
	t.Container.Env = append(t.Container.Env, corev1.EnvVar{Name: notifycmd.URLEnv, ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: n.Secret}, Key: n.Key},
	}})
	return t
}

// DefaultApprovalTimeout is how long the cutover waits for a decision
// (or half the workflow deadline, when that is shorter); past it the
// approval ends with the default decision, reject: nothing is switched.
const DefaultApprovalTimeout = 24 * time.Hour

// The approval's intermediate parameters: a person supplies them when
// resuming (`argo node set` then `argo resume`, or the UI's Resume form).
const (
	ParamDecision = "decision"
	ParamApprover = "approver"
	tmplRecord    = "record-approval"
)

// approvalTemplates: the suspend that waits for a decision (at most
// ApprovalTimeout), and the step that records it in the run directory and
// fails on a rejection, before the switch.
func (p Plan) approvalTemplates() []wfv1.Template {
	enum := func(vs ...string) []wfv1.AnyString {
		var out []wfv1.AnyString
		for _, v := range vs {
			out = append(out, *wfv1.AnyStringPtr(v))
		}
		return out
	}
	timeout := p.ApprovalTimeout.String()
	decisionHelp := fmt.Sprintf("approve switches the platform to the new registry; reject ends the cutover without touching the cluster (and so does no decision within %s)", timeout)
	approverHelp := "who decides: recorded in the Workflow and in the audit bundle (approval.json, report.html)"
	suspend := wfv1.Template{
		Name:    tmplApprove,
		Suspend: &wfv1.SuspendTemplate{Duration: strconv.FormatInt(seconds(p.ApprovalTimeout), 10)},
		Inputs: wfv1.Inputs{Parameters: []wfv1.Parameter{
			{Name: ParamDecision, Default: wfv1.AnyStringPtr(approval.Reject), Enum: enum(approval.Decisions...), Description: wfv1.AnyStringPtr(decisionHelp)},
			{Name: ParamApprover, Default: wfv1.AnyStringPtr(""), Description: wfv1.AnyStringPtr(approverHelp)},
		}},
		Outputs: wfv1.Outputs{Parameters: []wfv1.Parameter{
			{Name: ParamDecision, ValueFrom: &wfv1.ValueFrom{Supplied: &wfv1.SuppliedValueFrom{}, Default: wfv1.AnyStringPtr(approval.Reject)}},
			{Name: ParamApprover, ValueFrom: &wfv1.ValueFrom{Supplied: &wfv1.SuppliedValueFrom{}, Default: wfv1.AnyStringPtr("")}},
		}},
	}
	var f flags
	f.str("run-dir", RunDir)
	f.str("decision", "{{inputs.parameters."+ParamDecision+"}}")
	f.str("approver", "{{inputs.parameters."+ParamApprover+"}}")
	f.str("workflow", "{{workflow.name}}")
	f.str("log-format", "json")
	record := p.container(tmplRecord, contract.StepVerify, append([]string{approvalcmd.Name}, f...), step{
		inputs: wfv1.Inputs{
			Parameters: []wfv1.Parameter{{Name: ParamDecision}, {Name: ParamApprover}},
			Artifacts:  wfv1.Artifacts{inArtifact(artRun, RunDir, runKey)},
		},
		outputs: wfv1.Outputs{Artifacts: wfv1.Artifacts{dirArtifact(artRun, RunDir, runKey)}},
	})
	return []wfv1.Template{suspend, record}
}

// recordArgs pass the approval's outputs to the record step.
func recordArgs() wfv1.Arguments {
	from := func(n string) string { return fmt.Sprintf("{{tasks.%s.outputs.parameters.%s}}", tmplApprove, n) }
	return wfv1.Arguments{Parameters: []wfv1.Parameter{
		{Name: ParamDecision, Value: wfv1.AnyStringPtr(from(ParamDecision))},
		{Name: ParamApprover, Value: wfv1.AnyStringPtr(from(ParamApprover))},
	}}
}

// checkObserve checks the notification and approval settings.
func (p *Plan) checkObserve() []error {
	var errs []error
	if n := p.Notify; n != nil {
		if n.Secret == "" || n.Key == "" {
			errs = append(errs, fmt.Errorf("plan: notify: the webhook URL's Secret and key are both required (secret %q, key %q)", n.Secret, n.Key))
		}
		if n.Format == "" {
			n.Format = notify.FormatJSON
		}
		if n.Format != notify.FormatJSON && n.Format != notify.FormatSlack {
			errs = append(errs, fmt.Errorf("plan: notify: format %q: want %s or %s", n.Format, notify.FormatJSON, notify.FormatSlack))
		}
		o := notify.Options{Format: notify.FormatJSON, Workflow: "{{workflow.name}}", Status: "{{workflow.status}}", UIBaseURL: n.UIBaseURL}
		if err := o.ValidateSettings(); err != nil {
			errs = append(errs, fmt.Errorf("plan: notify: %w", err))
		}
	}
	if p.ApprovalTimeout == 0 {
		p.ApprovalTimeout = DefaultApprovalTimeout
		if p.WorkflowDeadline > 0 && p.WorkflowDeadline/2 < p.ApprovalTimeout {
			p.ApprovalTimeout = p.WorkflowDeadline / 2
		}
	}
	if p.ApprovalTimeout < time.Second {
		errs = append(errs, fmt.Errorf("plan: approval timeout %s: want at least 1s", p.ApprovalTimeout))
	} else if p.WorkflowDeadline > 0 && p.ApprovalTimeout >= p.WorkflowDeadline {
		errs = append(errs, fmt.Errorf("plan: approval timeout %s: want less than the workflow deadline %s, which would end the cutover first (shorten the one or lengthen the other)", p.ApprovalTimeout, p.WorkflowDeadline))
	}
	return errs
}

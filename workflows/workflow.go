package workflows

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/regmigrate/regmigrate/steps/contract"
)

// Template and task names. The fanned-out task's nodes read
// "shard(<index>:<shard id>)" in the UI; each holds mirror, backfill and
// verify nodes whose input parameter "shard" carries the id too (for
// `argo retry --node-field-selector inputs.parameters.shard.value=ID`).
const (
	tmplMain       = string(RunMigrate)
	tmplDelta      = string(RunDelta)
	tmplCutover    = string(RunCutover)
	tmplRollback   = string(RunRollback)
	tmplExport     = contract.StepExport
	tmplShard      = "shard"
	tmplMirror     = contract.StepMirror
	tmplBackfill   = contract.StepBackfill
	tmplVerify     = "verify-shard"
	tmplReport     = "report"
	tmplApprove    = "approve"
	tmplSwitch     = contract.StepSwitchMode
	tmplSwitchBack = "switch-back"  // switch-mode --rollback
	tmplCheck      = "check-legacy" // switch-mode --check: the decommission gate
	tmplDeltaCron  = "delta-cron"   // reads the migration's CronWorkflow, if any
	tmplSuspend    = "suspend-deltas"
	tmplResume     = "resume-deltas"

	paramShard    = "shard"
	paramShardIDs = "shard-ids"
	artRun        = "run"
	artShard      = "shard"
	artInputs     = "inputs"

	volWork = "work"
	volTmp  = "tmp"
	volAuth = "registry-auth"

	// RetryExpression retries only ExitRetryable (lastRetry.exitCode is a
	// string in Argo's expression environment).
	RetryExpression = "asInt(lastRetry.exitCode) == 75"
)

// Run is what a Workflow of the migration runs: an entrypoint of the
// WorkflowTemplate (Template), which holds them all.
type Run string

const (
	RunMigrate  Run = "main"     // export, shards, report
	RunDelta    Run = "delta"    // the same, unless the CronWorkflow has been suspended since (the CronWorkflow's runs)
	RunCutover  Run = "cutover"  // deltas suspended, a last delta verified in full, approval, switch-mode
	RunRollback Run = "rollback" // switch-mode --rollback, deltas resumed if a cutover suspended them
)

// Runs are every Run, in the order a migration goes through them.
var Runs = []Run{RunMigrate, RunDelta, RunCutover, RunRollback}

// Keys of the run directory in the artifact repository, the same for
// every kind of repository (keyOnly). Directories are uploaded unarchived,
// so their keys end with "/". The shards write into the folder export
// wrote and the report reads it whole: the fan-in works by key, as Argo's
// own map-reduce example does; artifacts left to the repository's
// keyFormat would land under each pod's own key, where no later step could
// find a fanned-out shard's results.
const (
	runKey      = "{{workflow.name}}/run/"
	rollbackKey = "{{workflow.name}}/rollback/"
	shardKey    = "{{workflow.name}}/run/shards/{{inputs.parameters.shard}}/"
)

// SuspendedByAnnotation is set on the delta CronWorkflow by the cutover
// that suspended it (the cutover Workflow's name); the rollback resumes
// only a CronWorkflow that carries it, and removes it.
const SuspendedByAnnotation = "regmigrate.io/suspended-by"

// MutexName is the synchronization mutex every Workflow of a migration
// holds while it runs (a delta, a manual run, the cutover, the rollback),
// so that no two of them overlap: a second one waits, Pending, with
// "Waiting for NAMESPACE/Mutex/MUTEX lock" as its message.
func MutexName(migration string) string { return "regmigrate-" + migration }

// DeltaCronName is the name of the migration's delta CronWorkflow, which
// the cutover suspends.
func DeltaCronName(migration string) string { return migration + "-delta" }

// Workflow is the one-off migration: export → shards → report.
func Workflow(p Plan) (*wfv1.Workflow, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	return &wfv1.Workflow{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: p.Name + "-", Namespace: p.Namespace, Labels: p.labels("migrate")},
		Spec:       p.workflowSpec(RunMigrate),
	}, nil
}

// CronWorkflow runs the delta DAG on a schedule (delta syncs), never two
// at once, without switch-mode. Its name is DeltaCronName.
func CronWorkflow(p Plan, schedule string) (*wfv1.CronWorkflow, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	return p.cron(schedule, p.workflowSpec(RunDelta))
}

func (p Plan) cron(schedule string, spec wfv1.WorkflowSpec) (*wfv1.CronWorkflow, error) {
	if schedule == "" {
		return nil, fmt.Errorf("cron: the schedule is empty")
	}
	deadline := p.StartingDeadlineSeconds
	return &wfv1.CronWorkflow{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "CronWorkflow"},
		ObjectMeta: metav1.ObjectMeta{Name: DeltaCronName(p.Name), Namespace: p.Namespace, Labels: p.labels("delta")},
		Spec: wfv1.CronWorkflowSpec{
			Schedules:               []string{schedule},
			Timezone:                p.Timezone,
			ConcurrencyPolicy:       wfv1.ForbidConcurrent,
			StartingDeadlineSeconds: &deadline,
			WorkflowMetadata:        &metav1.ObjectMeta{Labels: p.labels("delta")},
			WorkflowSpec:            spec,
		},
	}, nil
}

// Cutover is the final Workflow: the delta CronWorkflow suspended (if
// there is one and it runs), a last delta whose shards verify in full,
// the report, a suspend for a person's approval, then switch-mode.
func Cutover(p Plan) (*wfv1.Workflow, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	if p.writesLayout() {
		return nil, ErrCutoverToLayout
	}
	return &wfv1.Workflow{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: p.Name + "-cutover-", Namespace: p.Namespace, Labels: p.labels("cutover")},
		Spec:       p.workflowSpec(RunCutover),
	}, nil
}

// Rollback switches the cluster back: one switch-mode step that restores
// the workloads' original images (kept on each object by the cutover) and
// records the legacy mode, then resumes the delta CronWorkflow if a
// cutover suspended it. No approval step: a rollback is the way out of
// trouble; submitting it is the decision. switch.json and switch.diff are
// kept under <workflow>/rollback/.
func Rollback(p Plan) (*wfv1.Workflow, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	return &wfv1.Workflow{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: p.Name + "-rollback-", Namespace: p.Namespace, Labels: p.labels("rollback")},
		Spec:       p.workflowSpec(RunRollback),
	}, nil
}

// Template is the migration as a WorkflowTemplate holding every Run: the
// migration (its entrypoint), the delta, the cutover and the rollback,
// with the scope, filters, strategy and verify mode as parameters whose
// defaults are the plan's. Runs are submitted from it (FromTemplate,
// CronFromTemplate, `argo submit --from workflowtemplate/NAME
// [--entrypoint cutover] [-p tag-regex=...]`, or the UI's Submit button).
// Its name is the migration's.
func Template(p Plan) (*wfv1.WorkflowTemplate, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	runs := Runs
	if p.writesLayout() { // no cutover to a layout: phase two's template has it
		runs = slices.DeleteFunc(slices.Clone(Runs), func(r Run) bool { return r == RunCutover })
	}
	spec := p.workflowSpec(runs...)
	spec.WorkflowMetadata = &wfv1.WorkflowMetadata{Labels: p.labels("")}
	return &wfv1.WorkflowTemplate{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "WorkflowTemplate"},
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.labels("template")},
		Spec:       spec,
	}, nil
}

// ClusterTemplate is Template as a ClusterWorkflowTemplate: the same
// pipeline, cluster-scoped, that a Workflow in any namespace runs
// (workflowTemplateRef with clusterScope: FromTemplate and
// CronFromTemplate of a plan with ClusterScope). What it names is looked up
// in the namespace of the Workflow that runs it: the ServiceAccount, the
// credentials Secret, the artifact repository's ConfigMap, the delta
// CronWorkflow and the mutex. Its name is the migration's.
func ClusterTemplate(p Plan) (*wfv1.ClusterWorkflowTemplate, error) {
	t, err := Template(p)
	if err != nil {
		return nil, err
	}
	t.Namespace = ""
	return &wfv1.ClusterWorkflowTemplate{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "ClusterWorkflowTemplate"},
		ObjectMeta: t.ObjectMeta,
		Spec:       t.Spec,
	}, nil
}

// FromTemplate is a Workflow that runs run from the migration's
// WorkflowTemplate (workflowTemplateRef; its ClusterWorkflowTemplate if
// the plan has ClusterScope), with args (parameter name to
// value; see Parameters) in place of the template's defaults. Everything
// else is the template's.
func FromTemplate(p Plan, run Run, args map[string]string) (*wfv1.Workflow, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	spec, err := p.refSpec(run, args)
	if err != nil {
		return nil, err
	}
	name, kind := p.Name+"-", "migrate"
	if run != RunMigrate {
		name, kind = p.Name+"-"+string(run)+"-", string(run)
	}
	return &wfv1.Workflow{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: name, Namespace: p.Namespace, Labels: p.labels(kind)},
		Spec:       spec,
	}, nil
}

// CronFromTemplate is the delta CronWorkflow running the template's delta.
func CronFromTemplate(p Plan, schedule string, args map[string]string) (*wfv1.CronWorkflow, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	spec, err := p.refSpec(RunDelta, args)
	if err != nil {
		return nil, err
	}
	return p.cron(schedule, spec)
}

// refSpec references the template. It restates the mutex: Argo takes the
// template's, but a controller that restarts re-acquires the locks its
// Workflows held from their own spec only (sync.Manager.Initialize,
// getWorkflowSyncLevelByName, v3.7), so a Workflow without it would lose
// its lock to the next one across a restart.
func (p Plan) refSpec(run Run, args map[string]string) (wfv1.WorkflowSpec, error) {
	if !slices.Contains(Runs, run) {
		return wfv1.WorkflowSpec{}, fmt.Errorf("run %q: want one of %v", run, Runs)
	}
	spec := wfv1.WorkflowSpec{
		WorkflowTemplateRef: &wfv1.WorkflowTemplateRef{Name: p.Name, ClusterScope: p.ClusterScope},
		Entrypoint:          string(run),
		Synchronization:     p.synchronization(),
	}
	names := make([]string, 0, len(args))
	for n := range args {
		names = append(names, n)
	}
	slices.Sort(names)
	params := p.parameters()
	for _, n := range names {
		i := slices.IndexFunc(params, func(par wfv1.Parameter) bool { return par.Name == n })
		if i < 0 {
			return spec, fmt.Errorf("parameter %q: no such parameter (parameters: %s)", n, strings.Join(Parameters, ", "))
		}
		if enum := params[i].Enum; len(enum) > 0 && !slices.ContainsFunc(enum, func(e wfv1.AnyString) bool { return e.String() == args[n] }) {
			return spec, fmt.Errorf("parameter %s=%q: want one of %v", n, args[n], enum)
		}
		spec.Arguments.Parameters = append(spec.Arguments.Parameters, wfv1.Parameter{Name: n, Value: wfv1.AnyStringPtr(args[n])})
	}
	return spec, nil
}

// labels of the objects and their Workflows; kind empty for the
// template's Workflows, whose kind is their entrypoint.
func (p Plan) labels(kind string) map[string]string {
	l := map[string]string{
		"app.kubernetes.io/name":       "regmigrate",
		"app.kubernetes.io/managed-by": "regmigrate",
		"regmigrate.io/migration":      p.Name,
	}
	if kind != "" {
		l["regmigrate.io/kind"] = kind
	}
	return l
}

// The DAGs. Every run but the rollback goes export → shards → report:
// the report runs whatever the shards did (failFast off: one bad shard
// does not stop the others, and the report says which failed).
func (p Plan) dag(run Run) *wfv1.DAGTemplate {
	failFast := false
	shardArgs := func(verifyMode string) wfv1.Arguments {
		return wfv1.Arguments{Parameters: []wfv1.Parameter{
			{Name: paramShard, Value: wfv1.AnyStringPtr("{{item}}")},
			{Name: ParamVerifyMode, Value: wfv1.AnyStringPtr(verifyMode)},
		}}
	}
	pipeline := func(exportDeps, when, verifyMode string) []wfv1.DAGTask {
		tasks := []wfv1.DAGTask{
			{Name: tmplExport, Template: tmplExport, Depends: exportDeps, When: when},
			{
				Name: tmplShard, Template: tmplShard, Depends: tmplExport + ".Succeeded",
				WithParam: fmt.Sprintf("{{tasks.%s.outputs.parameters.%s}}", tmplExport, paramShardIDs),
				Arguments: shardArgs(verifyMode),
			},
			{
				Name: tmplReport, Template: tmplReport,
				Depends: fmt.Sprintf("%[1]s.Succeeded || %[1]s.Failed || %[1]s.Errored || %[1]s.Skipped", tmplShard),
			},
		}
		// The layout the shards wrote, made one after the report (which
		// it carries): also when an image failed (the report fails), so
		// that what was written is named and phase two knows the rest.
		if p.writesLayout() {
			tasks = append(tasks, wfv1.DAGTask{
				Name: tmplPack, Template: tmplPack,
				Depends: fmt.Sprintf("%[1]s.Succeeded || %[1]s.Failed", tmplReport),
			})
		}
		return tasks
	}
	cron := func(out string) string { return fmt.Sprintf("{{tasks.%s.outputs.parameters.%s}}", tmplDeltaCron, out) }
	switch run {
	case RunDelta:
		// A delta that waited for the mutex while a cutover ran finds the
		// CronWorkflow suspended and copies nothing: the platform may have
		// switched.
		tasks := append([]wfv1.DAGTask{{Name: tmplDeltaCron, Template: tmplDeltaCron}},
			pipeline(tmplDeltaCron, fmt.Sprintf("'%s' != 'true'", cron(outSuspended)), globalParam(ParamVerifyMode))...)
		return &wfv1.DAGTemplate{FailFast: &failFast, Tasks: tasks}
	case RunCutover:
		// Deltas suspended first (a running one is not, but it holds the
		// mutex: the cutover waits for it), unless they already were.
		tasks := []wfv1.DAGTask{
			{Name: tmplDeltaCron, Template: tmplDeltaCron},
			{Name: tmplSuspend, Template: tmplSuspend, Depends: tmplDeltaCron, When: fmt.Sprintf("'%s' == 'false'", cron(outSuspended))},
		}
		tasks = append(tasks, pipeline(tmplSuspend, "", verifyFull)...)
		// The approval records its decision; a rejection fails the
		// record, so the switch never runs.
		tasks = append(tasks,
			wfv1.DAGTask{Name: tmplApprove, Template: tmplApprove, Depends: tmplReport},
			wfv1.DAGTask{Name: tmplRecord, Template: tmplRecord, Depends: tmplApprove, Arguments: recordArgs()},
			wfv1.DAGTask{Name: tmplSwitch, Template: tmplSwitch, Depends: tmplRecord},
			// The decommission gate after the switch: its outputs
			// (remaining, clean) say what still uses the legacy registry,
			// without failing the cutover that succeeded; check.md joins
			// the run's bundle.
			wfv1.DAGTask{Name: tmplCheck, Template: tmplCheck, Depends: tmplSwitch},
		)
		return &wfv1.DAGTemplate{FailFast: &failFast, Tasks: tasks}
	case RunRollback:
		return &wfv1.DAGTemplate{Tasks: []wfv1.DAGTask{
			{Name: tmplSwitch, Template: tmplSwitchBack},
			{Name: tmplDeltaCron, Template: tmplDeltaCron, Depends: tmplSwitch},
			{Name: tmplResume, Template: tmplResume, Depends: tmplDeltaCron, When: fmt.Sprintf("'%s' != ''", cron(outSuspendedBy))},
		}}
	default:
		return &wfv1.DAGTemplate{FailFast: &failFast, Tasks: pipeline("", "", globalParam(ParamVerifyMode))}
	}
}

// shardDAG is one shard: mirror → backfill (with a cluster) → verify.
func (p Plan) shardDAG() *wfv1.DAGTemplate {
	arg := wfv1.Arguments{Parameters: []wfv1.Parameter{{Name: paramShard, Value: wfv1.AnyStringPtr("{{inputs.parameters.shard}}")}}}
	tasks := []wfv1.DAGTask{{Name: "mirror", Template: tmplMirror, Arguments: arg}}
	last := "mirror"
	if p.Backfill != nil {
		tasks = append(tasks, wfv1.DAGTask{Name: "backfill", Template: tmplBackfill, Arguments: arg, Depends: last})
		last = "backfill"
	}
	verifyArgs := wfv1.Arguments{Parameters: append(arg.DeepCopy().Parameters,
		wfv1.Parameter{Name: ParamVerifyMode, Value: wfv1.AnyStringPtr("{{inputs.parameters." + ParamVerifyMode + "}}")})}
	tasks = append(tasks, wfv1.DAGTask{Name: "verify", Template: tmplVerify, Arguments: verifyArgs, Depends: last})
	return &wfv1.DAGTemplate{Tasks: tasks}
}

// workflowSpec is the spec of a Workflow running runs[0] (and holding the
// templates of every run given): the parameters, the mutex, the pods'
// security, limits and housekeeping.
func (p Plan) workflowSpec(runs ...Run) wfv1.WorkflowSpec {
	yes := true
	uid := int64(UID)
	deadline := seconds(p.WorkflowDeadline)
	ttlOK, ttlFailed := int32(seconds(p.TTLAfterSuccess)), int32(seconds(p.TTLAfterFailure))
	spec := wfv1.WorkflowSpec{
		Entrypoint:         string(runs[0]),
		Arguments:          wfv1.Arguments{Parameters: p.parameters()},
		ServiceAccountName: p.ServiceAccount,
		ArchiveLogs:        &yes,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Volumes:         p.volumes(),
		Synchronization: p.synchronization(),
		// Pods of succeeded nodes go as they succeed (their logs are in
		// the artifact repository: archiveLogs); failed ones stay for
		// kubectl logs and describe until the Workflow goes.
		PodGC:                 &wfv1.PodGC{Strategy: wfv1.PodGCOnPodSuccess},
		TTLStrategy:           &wfv1.TTLStrategy{SecondsAfterSuccess: &ttlOK, SecondsAfterFailure: &ttlFailed},
		ActiveDeadlineSeconds: &deadline,
		PodPriorityClassName:  p.PriorityClassName,
		PodMetadata:           p.throttleMetadata(),
	}
	if p.Parallelism > 0 {
		n := p.Parallelism
		spec.Parallelism = &n
	}
	if r := p.ArtifactRepositoryRef; r != nil {
		spec.ArtifactRepositoryRef = &wfv1.ArtifactRepositoryRef{ConfigMap: r.ConfigMap, Key: r.Key}
	}
	var pipeline, cron, cutover, rollback bool
	for _, run := range runs {
		t := wfv1.Template{Name: string(run), DAG: p.dag(run)}
		if run != RunRollback && p.ShardParallelism > 0 {
			n := p.ShardParallelism
			t.Parallelism = &n
		}
		spec.Templates = append(spec.Templates, t)
		pipeline = pipeline || run != RunRollback
		cron = cron || run != RunMigrate
		cutover = cutover || run == RunCutover
		rollback = rollback || run == RunRollback
	}
	if pipeline {
		spec.Templates = append(spec.Templates, wfv1.Template{
			Name:   tmplShard,
			Inputs: wfv1.Inputs{Parameters: []wfv1.Parameter{{Name: paramShard}, {Name: ParamVerifyMode}}},
			DAG:    p.shardDAG(),
			// The progress gauge: each shard adds 1 as it ends.
			Metrics: p.metrics(tmplShard),
		})
		spec.Templates = append(spec.Templates, p.stepTemplates()...)
	}
	if cron {
		spec.Templates = append(spec.Templates, p.deltaCronTemplate())
	}
	if cutover {
		spec.Templates = append(spec.Templates,
			p.patchDeltaCron(tmplSuspend, map[string]any{
				"metadata": map[string]any{"annotations": map[string]any{SuspendedByAnnotation: "{{workflow.name}}"}},
				"spec":     map[string]any{"suspend": true},
			}),
		)
		spec.Templates = append(spec.Templates, p.approvalTemplates()...)
		spec.Templates = append(spec.Templates,
			p.container(tmplSwitch, contract.StepSwitchMode, p.switchModeArgs(), step{
				inputs:  wfv1.Inputs{Artifacts: wfv1.Artifacts{inArtifact(artRun, RunDir, runKey)}},
				outputs: wfv1.Outputs{Artifacts: wfv1.Artifacts{dirArtifact(artRun, RunDir, runKey)}},
				counts:  []string{"rewritten", "pending", contract.StatusFailed, "unproven"},
			}),
			p.container(tmplCheck, contract.StepSwitchMode, p.checkArgs(), step{
				inputs:  wfv1.Inputs{Artifacts: wfv1.Artifacts{inArtifact(artRun, RunDir, runKey)}},
				outputs: wfv1.Outputs{Artifacts: wfv1.Artifacts{dirArtifact(artRun, RunDir, runKey)}},
				counts:  []string{"remaining", "clean"},
			}),
		)
	}
	if rollback {
		var f flags
		f.str("out", RunDir)
		f.str("migration", p.Name)
		f.boolean("rollback", true)
		f.boolean("confirm", true)
		spec.Templates = append(spec.Templates,
			p.container(tmplSwitchBack, contract.StepSwitchMode, f, step{
				outputs: wfv1.Outputs{Artifacts: wfv1.Artifacts{dirArtifact(artRun, RunDir, rollbackKey)}},
				counts:  []string{"restored", contract.StatusFailed},
			}),
			p.patchDeltaCron(tmplResume, map[string]any{
				"metadata": map[string]any{"annotations": map[string]any{SuspendedByAnnotation: nil}},
				"spec":     map[string]any{"suspend": false},
			}),
		)
	}
	if p.Notify != nil {
		spec.OnExit = tmplNotify
		spec.Templates = append(spec.Templates, p.notifyTemplate())
	}
	return spec
}

func (p Plan) synchronization() *wfv1.Synchronization {
	return &wfv1.Synchronization{Mutexes: []*wfv1.Mutex{{Name: MutexName(p.Name)}}}
}

// Outputs of the delta-cron template.
const (
	outSuspended   = "suspended"    // "true" or "false"; "" when there is no CronWorkflow
	outSuspendedBy = "suspended-by" // the cutover that suspended it, or ""
)

// deltaCronTemplate reads the migration's delta CronWorkflow, if there is
// one (kubectl get --ignore-not-found: a missing one gives the defaults).
func (p Plan) deltaCronTemplate() wfv1.Template {
	t := p.resource(tmplDeltaCron, &wfv1.ResourceTemplate{
		Action: "get",
		Flags:  []string{"cronworkflows.argoproj.io", DeltaCronName(p.Name), "--namespace={{workflow.namespace}}", "--ignore-not-found"},
	})
	t.Outputs.Parameters = []wfv1.Parameter{
		{Name: outSuspended, ValueFrom: &wfv1.ValueFrom{JQFilter: ".spec.suspend // false", Default: wfv1.AnyStringPtr("")}},
		{Name: outSuspendedBy, ValueFrom: &wfv1.ValueFrom{JQFilter: fmt.Sprintf(".metadata.annotations[%q] // \"\"", SuspendedByAnnotation), Default: wfv1.AnyStringPtr("")}},
	}
	return t
}

// patchDeltaCron merge-patches the migration's delta CronWorkflow.
func (p Plan) patchDeltaCron(name string, patch map[string]any) wfv1.Template {
	b, _ := json.Marshal(patch)
	return p.resource(name, &wfv1.ResourceTemplate{
		Action: "patch", MergeStrategy: "merge", Manifest: string(b),
		Flags: []string{"cronworkflows.argoproj.io", DeltaCronName(p.Name), "--namespace={{workflow.namespace}}"},
	})
}

// resource is a template that Argo's executor runs as kubectl, as the
// Workflow's ServiceAccount (manifests' executor Role grants it get and
// patch on CronWorkflows).
func (p Plan) resource(name string, r *wfv1.ResourceTemplate) wfv1.Template {
	d := intstr.FromInt32(int32(seconds(p.StepDeadline)))
	return wfv1.Template{Name: name, Resource: r, ActiveDeadlineSeconds: &d}
}

// step is what differs between the step containers.
type step struct {
	inputs  wfv1.Inputs
	outputs wfv1.Outputs
	retry   bool
	counts  []string // output parameters read from OutputsDir
	layout  layoutAccess
}

func (p Plan) stepTemplates() []wfv1.Template {
	shardIn := wfv1.Inputs{
		Parameters: []wfv1.Parameter{{Name: paramShard}},
		Artifacts:  wfv1.Artifacts{inArtifact(artShard, ShardDir, shardKey)},
	}
	shardOut := wfv1.Outputs{Artifacts: wfv1.Artifacts{dirArtifact(artShard, ShardDir, shardKey)}}

	exportIn := wfv1.Inputs{}
	for i, in := range p.Scope.inputs() {
		exportIn.Artifacts = append(exportIn.Artifacts, wfv1.Artifact{
			Name: fmt.Sprintf("%s-%d", artInputs, i), Path: inputPath(i, in.Name),
			ArtifactLocation: wfv1.ArtifactLocation{Raw: &wfv1.RawArtifact{Data: in.Data}},
		})
	}

	// The layout: export creates it and mirror writes it (or both read
	// it, the source); verify reads it (the target).
	mirrorLayout, verifyLayout, exportLayout := layoutNone, layoutNone, layoutNone
	switch {
	case p.writesLayout():
		mirrorLayout, verifyLayout, exportLayout = layoutWrite, layoutRead, layoutWrite
	case p.readsLayout():
		mirrorLayout, exportLayout = layoutRead, layoutRead
	}
	ts := []wfv1.Template{
		p.container(tmplExport, contract.StepExport, p.exportArgs(), step{
			layout: exportLayout,
			inputs: exportIn,
			outputs: wfv1.Outputs{
				Parameters: []wfv1.Parameter{{
					Name:      paramShardIDs,
					ValueFrom: &wfv1.ValueFrom{Path: path.Join(RunDir, contract.ShardIDsParam)},
				}},
				Artifacts: wfv1.Artifacts{dirArtifact(artRun, RunDir, runKey)},
			},
			retry: true,
		}),
		p.container(tmplMirror, contract.StepMirror, p.mirrorArgs(), step{
			inputs: shardIn, outputs: shardOut, retry: true, layout: mirrorLayout,
			counts: []string{contract.StatusCopied, contract.StatusSkipped, contract.StatusFailed},
		}),
	}
	if p.Backfill != nil {
		ts = append(ts, p.container(tmplBackfill, contract.StepBackfill, p.backfillArgs(), step{
			inputs: shardIn, outputs: shardOut, retry: true,
			counts: []string{"applied", contract.StatusSkipped, contract.StatusFailed},
		}))
	}
	verifyIn := *shardIn.DeepCopy()
	verifyIn.Parameters = append(verifyIn.Parameters, wfv1.Parameter{Name: ParamVerifyMode})
	ts = append(ts,
		p.container(tmplVerify, contract.StepVerify, p.verifyShardArgs(), step{inputs: verifyIn, outputs: shardOut, retry: true, layout: verifyLayout}),
		p.container(tmplReport, contract.StepVerify, p.reportArgs(), step{
			inputs:  wfv1.Inputs{Artifacts: wfv1.Artifacts{inArtifact(artRun, RunDir, runKey)}},
			outputs: wfv1.Outputs{Artifacts: wfv1.Artifacts{dirArtifact(artRun, RunDir, runKey)}},
		}),
	)
	if p.writesLayout() {
		ts = append(ts, p.packTemplate())
	}
	return ts
}

// container is a step's template: its binary run explicitly (the
// controller cannot read an image's entrypoint without a registry), non-root
// on a read-only root filesystem, writing only to emptyDirs, within its
// resources and deadline.
func (p Plan) container(name, binary string, args []string, s step) wfv1.Template {
	yes, no := true, false
	uid := int64(UID)
	env := []corev1.EnvVar{{Name: "REGMIGRATE_OUTPUTS_DIR", Value: OutputsDir}}
	mounts := []corev1.VolumeMount{{Name: volWork, MountPath: WorkDir}, {Name: volTmp, MountPath: TmpDir}}
	if p.CredentialsSecret != "" {
		env = append(env, corev1.EnvVar{Name: "DOCKER_CONFIG", Value: AuthDir})
		mounts = append(mounts, corev1.VolumeMount{Name: volAuth, MountPath: AuthDir, ReadOnly: true})
	}
	if s.layout != layoutNone && p.Layout != nil {
		mounts = append(mounts, p.layoutMount(s.layout == layoutRead))
	}
	deadline := intstr.FromInt32(int32(seconds(p.StepDeadline)))
	t := wfv1.Template{
		Name:                  name,
		Inputs:                s.inputs,
		Outputs:               s.outputs,
		ActiveDeadlineSeconds: &deadline,
		Container: &corev1.Container{
			Image:           p.image(binary),
			Command:         []string{path.Join(BinDir, binary)},
			Args:            args,
			Env:             env,
			VolumeMounts:    mounts,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Resources:       p.resources(name),
			SecurityContext: &corev1.SecurityContext{
				RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid,
				ReadOnlyRootFilesystem: &yes, AllowPrivilegeEscalation: &no,
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		},
	}
	t.Metrics = p.metrics(name)
	for _, c := range append(s.counts, metricCounts[name]...) {
		t.Outputs.Parameters = append(t.Outputs.Parameters, wfv1.Parameter{
			Name:      c,
			ValueFrom: &wfv1.ValueFrom{Path: path.Join(OutputsDir, c), Default: wfv1.AnyStringPtr("")},
		})
	}
	if s.retry {
		t.RetryStrategy = p.retryStrategy()
	}
	return t
}

// resources of a step's container: its own, or every step's.
func (p Plan) resources(step string) corev1.ResourceRequirements {
	if r, ok := p.StepResources[step]; ok {
		return *r.DeepCopy()
	}
	return *p.Resources.DeepCopy()
}

func (p Plan) retryStrategy() *wfv1.RetryStrategy {
	limit := intstr.FromInt32(int32(p.Retry.Limit))
	r := &wfv1.RetryStrategy{Limit: &limit, RetryPolicy: wfv1.RetryPolicyAlways, Expression: RetryExpression}
	if p.Retry.Backoff != "" {
		r.Backoff = &wfv1.Backoff{Duration: p.Retry.Backoff, MaxDuration: p.Retry.MaxDuration}
		if p.Retry.Factor > 0 {
			f := intstr.FromInt32(int32(p.Retry.Factor))
			r.Backoff.Factor = &f
		}
	}
	return r
}

func (p Plan) volumes() []corev1.Volume {
	vs := []corev1.Volume{
		{Name: volWork, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: volTmp, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	if p.CredentialsSecret != "" {
		mode := int32(0o440)
		vs = append(vs, corev1.Volume{Name: volAuth, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  p.CredentialsSecret,
			Items:       append([]corev1.KeyToPath{{Key: corev1.DockerConfigJsonKey, Path: "config.json"}}, certItems(p.CertFiles)...),
			DefaultMode: &mode,
		}}})
	}
	if p.Layout != nil {
		vs = append(vs, p.layoutVolume())
	}
	return vs
}

// dirArtifact is a run-directory folder kept whole and unarchived (a person
// greps the lists and logs in the bucket), never garbage-collected: it is
// the audit bundle.
func dirArtifact(name, p, key string) wfv1.Artifact {
	return wfv1.Artifact{
		Name: name, Path: p,
		ArtifactLocation: keyOnly(key),
		Archive:          &wfv1.ArchiveStrategy{None: &wfv1.NoneStrategy{}},
		ArtifactGC:       &wfv1.ArtifactGC{Strategy: wfv1.ArtifactGCNever},
	}
}

// inArtifact is an input read from the artifact repository: a folder of
// the run directory.
func inArtifact(name, p, key string) wfv1.Artifact {
	return wfv1.Artifact{Name: name, Path: p, ArtifactLocation: keyOnly(key)}
}

// keyOnly is a location that names only a key: Argo's key-only artifact
// (docs/key-only-artifacts.md, v3.0+). Whatever kind the Workflow's
// artifact repository is (S3, MinIO, GCS, Azure), the controller gives the
// pod the repository's location (addArchiveLocation) and the executor
// replaces this location with it, keeping only the key
// (ArtifactLocation.Relocate): no bucket, endpoint or credentials are
// written here. Argo's schema has no kind-neutral key field, so the key
// rides in the s3 field as in Argo's own examples;
// TestArtifactsTakeTheRepositorysLocation relocates every artifact with
// Argo's code onto each kind of repository.
//
// One difference between Argo's drivers (v3.7): the gcs driver reads a
// folder by its key with the final "/" cleaned off, as a bare prefix, so
// the folder of a shard whose id starts another's (ns-team, ns-team-a)
// also receives the other's files, in a subfolder. The s3 driver (also for
// MinIO and GCS's S3-compatible endpoint) and the azure driver keep the
// "/".
func keyOnly(key string) wfv1.ArtifactLocation {
	return wfv1.ArtifactLocation{S3: &wfv1.S3Artifact{Key: key}}
}

// CertsDir is where the pods find auth.certsDir's files: in the
// credentials Secret's volume.
const CertsDir = AuthDir + "/certs.d"

// CertKey is the Secret key that holds the certs.d file at rel
// (HOST[:PORT]/NAME): Secret keys allow no "/" or ":".
func CertKey(rel string) string {
	return "certs.d__" + strings.NewReplacer("/", "__", ":", "_").Replace(rel)
}

func certItems(files []string) []corev1.KeyToPath {
	out := make([]corev1.KeyToPath, 0, len(files))
	for _, rel := range files {
		out = append(out, corev1.KeyToPath{Key: CertKey(rel), Path: "certs.d/" + rel})
	}
	return out
}

package workflows

import (
	"fmt"
	"path"
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
	tmplMain     = "main"
	tmplCutover  = "cutover"
	tmplRollback = "rollback"
	tmplExport   = contract.StepExport
	tmplShard    = "shard"
	tmplMirror   = contract.StepMirror
	tmplBackfill = contract.StepBackfill
	tmplVerify   = "verify-shard"
	tmplReport   = "report"
	tmplApprove  = "approve"
	tmplSwitch   = contract.StepSwitchMode

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

// Workflow is the one-off migration: export → shards → report.
func Workflow(p Plan) (*wfv1.Workflow, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	return &wfv1.Workflow{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: p.Name + "-", Namespace: p.Namespace, Labels: p.labels("migrate")},
		Spec:       p.workflowSpec(tmplMain, p.mainDAG(), nil),
	}, nil
}

// CronWorkflow runs the same DAG as Workflow on a schedule (delta syncs),
// never two at once, without switch-mode.
func CronWorkflow(p Plan, schedule string) (*wfv1.CronWorkflow, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	if schedule == "" {
		return nil, fmt.Errorf("cron: the schedule is empty")
	}
	deadline := p.StartingDeadlineSeconds
	return &wfv1.CronWorkflow{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "CronWorkflow"},
		ObjectMeta: metav1.ObjectMeta{Name: p.Name + "-delta", Namespace: p.Namespace, Labels: p.labels("delta")},
		Spec: wfv1.CronWorkflowSpec{
			Schedules:               []string{schedule},
			Timezone:                p.Timezone,
			ConcurrencyPolicy:       wfv1.ForbidConcurrent,
			StartingDeadlineSeconds: &deadline,
			WorkflowMetadata:        &metav1.ObjectMeta{Labels: p.labels("delta")},
			WorkflowSpec:            p.workflowSpec(tmplMain, p.mainDAG(), nil),
		},
	}, nil
}

// Cutover is the final Workflow: a last delta whose shards verify in full,
// the report, a suspend for a person's approval, then switch-mode.
func Cutover(p Plan) (*wfv1.Workflow, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	p.VerifyMode = "full"
	dag := p.mainDAG()
	dag.Tasks = append(dag.Tasks,
		wfv1.DAGTask{Name: tmplApprove, Template: tmplApprove, Depends: tmplReport},
		wfv1.DAGTask{Name: tmplSwitch, Template: tmplSwitch, Depends: tmplApprove},
	)
	extra := []wfv1.Template{
		{Name: tmplApprove, Suspend: &wfv1.SuspendTemplate{}},
		p.container(tmplSwitch, contract.StepSwitchMode, p.switchModeArgs(), step{
			inputs:  wfv1.Inputs{Artifacts: wfv1.Artifacts{inArtifact(artRun, RunDir, runKey)}},
			outputs: wfv1.Outputs{Artifacts: wfv1.Artifacts{dirArtifact(artRun, RunDir, runKey)}},
			counts:  []string{"rewritten", "pending", contract.StatusFailed, "unproven"},
		}),
	}
	return &wfv1.Workflow{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: p.Name + "-cutover-", Namespace: p.Namespace, Labels: p.labels("cutover")},
		Spec:       p.workflowSpec(tmplCutover, dag, extra),
	}, nil
}

// Rollback switches the cluster back: one switch-mode step that restores
// the workloads' original images (kept on each object by the cutover) and
// records the legacy mode. No approval step: a rollback is the way out of
// trouble; submitting it is the decision. switch.json and switch.diff are
// kept under <workflow>/rollback/.
func Rollback(p Plan) (*wfv1.Workflow, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	var f flags
	f.str("out", RunDir)
	f.str("migration", p.Name)
	f.boolean("rollback", true)
	f.boolean("confirm", true)
	sw := p.container(tmplSwitch, contract.StepSwitchMode, f, step{
		outputs: wfv1.Outputs{Artifacts: wfv1.Artifacts{dirArtifact(artRun, RunDir, rollbackKey)}},
		counts:  []string{"restored", contract.StatusFailed},
	})
	spec := p.workflowSpec(tmplRollback, &wfv1.DAGTemplate{Tasks: []wfv1.DAGTask{{Name: tmplSwitch, Template: tmplSwitch}}}, nil)
	spec.Templates = []wfv1.Template{spec.Templates[0], sw}
	return &wfv1.Workflow{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: p.Name + "-rollback-", Namespace: p.Namespace, Labels: p.labels("rollback")},
		Spec:       spec,
	}, nil
}

func (p Plan) labels(kind string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "regmigrate",
		"app.kubernetes.io/managed-by": "regmigrate",
		"regmigrate.io/migration":      p.Name,
		"regmigrate.io/kind":           kind,
	}
}

// mainDAG: export, then one shard DAG per shard id, then the report, which
// runs whatever the shards did (failFast off: one bad shard does not stop
// the others, and the report says which failed).
func (p Plan) mainDAG() *wfv1.DAGTemplate {
	failFast := false
	return &wfv1.DAGTemplate{
		FailFast: &failFast,
		Tasks: []wfv1.DAGTask{
			{Name: tmplExport, Template: tmplExport},
			{
				Name: tmplShard, Template: tmplShard, Depends: tmplExport + ".Succeeded",
				WithParam: fmt.Sprintf("{{tasks.%s.outputs.parameters.%s}}", tmplExport, paramShardIDs),
				Arguments: wfv1.Arguments{Parameters: []wfv1.Parameter{{Name: paramShard, Value: wfv1.AnyStringPtr("{{item}}")}}},
			},
			{
				Name: tmplReport, Template: tmplReport,
				Depends: fmt.Sprintf("%[1]s.Succeeded || %[1]s.Failed || %[1]s.Errored || %[1]s.Skipped", tmplShard),
			},
		},
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
	tasks = append(tasks, wfv1.DAGTask{Name: "verify", Template: tmplVerify, Arguments: arg, Depends: last})
	return &wfv1.DAGTemplate{Tasks: tasks}
}

func (p Plan) workflowSpec(entry string, dag *wfv1.DAGTemplate, extra []wfv1.Template) wfv1.WorkflowSpec {
	yes := true
	uid := int64(UID)
	spec := wfv1.WorkflowSpec{
		Entrypoint:         entry,
		ServiceAccountName: p.ServiceAccount,
		ArchiveLogs:        &yes,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Volumes: p.volumes(),
	}
	if p.Parallelism > 0 {
		n := p.Parallelism
		spec.Parallelism = &n
	}
	if r := p.ArtifactRepositoryRef; r != nil {
		spec.ArtifactRepositoryRef = &wfv1.ArtifactRepositoryRef{ConfigMap: r.ConfigMap, Key: r.Key}
	}
	main := wfv1.Template{Name: entry, DAG: dag}
	if p.ShardParallelism > 0 {
		n := p.ShardParallelism
		main.Parallelism = &n
	}
	spec.Templates = append([]wfv1.Template{main, {
		Name:   tmplShard,
		Inputs: wfv1.Inputs{Parameters: []wfv1.Parameter{{Name: paramShard}}},
		DAG:    p.shardDAG(),
	}}, p.stepTemplates()...)
	spec.Templates = append(spec.Templates, extra...)
	return spec
}

// step is what differs between the step containers.
type step struct {
	inputs  wfv1.Inputs
	outputs wfv1.Outputs
	retry   bool
	counts  []string // output parameters read from OutputsDir
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

	ts := []wfv1.Template{
		p.container(tmplExport, contract.StepExport, p.exportArgs(), step{
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
			inputs: shardIn, outputs: shardOut, retry: true,
			counts: []string{contract.StatusCopied, contract.StatusSkipped, contract.StatusFailed},
		}),
	}
	if p.Backfill != nil {
		ts = append(ts, p.container(tmplBackfill, contract.StepBackfill, p.backfillArgs(), step{
			inputs: shardIn, outputs: shardOut, retry: true,
			counts: []string{"applied", contract.StatusSkipped, contract.StatusFailed},
		}))
	}
	ts = append(ts,
		p.container(tmplVerify, contract.StepVerify, p.verifyShardArgs(), step{inputs: shardIn, outputs: shardOut, retry: true}),
		p.container(tmplReport, contract.StepVerify, p.reportArgs(), step{
			inputs:  wfv1.Inputs{Artifacts: wfv1.Artifacts{inArtifact(artRun, RunDir, runKey)}},
			outputs: wfv1.Outputs{Artifacts: wfv1.Artifacts{dirArtifact(artRun, RunDir, runKey)}},
		}),
	)
	return ts
}

// container is a step's template: its binary run explicitly (the
// controller cannot read an image's entrypoint without a registry), non-root
// on a read-only root filesystem, writing only to emptyDirs.
func (p Plan) container(name, binary string, args []string, s step) wfv1.Template {
	yes, no := true, false
	uid := int64(UID)
	env := []corev1.EnvVar{{Name: "REGMIGRATE_OUTPUTS_DIR", Value: OutputsDir}}
	mounts := []corev1.VolumeMount{{Name: volWork, MountPath: WorkDir}, {Name: volTmp, MountPath: TmpDir}}
	if p.CredentialsSecret != "" {
		env = append(env, corev1.EnvVar{Name: "DOCKER_CONFIG", Value: AuthDir})
		mounts = append(mounts, corev1.VolumeMount{Name: volAuth, MountPath: AuthDir, ReadOnly: true})
	}
	t := wfv1.Template{
		Name:    name,
		Inputs:  s.inputs,
		Outputs: s.outputs,
		Container: &corev1.Container{
			Image:           p.image(binary),
			Command:         []string{path.Join(BinDir, binary)},
			Args:            args,
			Env:             env,
			VolumeMounts:    mounts,
			ImagePullPolicy: corev1.PullIfNotPresent,
			SecurityContext: &corev1.SecurityContext{
				RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid,
				ReadOnlyRootFilesystem: &yes, AllowPrivilegeEscalation: &no,
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		},
	}
	for _, c := range s.counts {
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

// Template is the migration as a WorkflowTemplate: the same DAG, kept in
// the cluster so that runs are submitted from it (`argo submit --from
// workflowtemplate/NAME`, or the UI's Submit button).
func Template(p Plan) (*wfv1.WorkflowTemplate, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	return &wfv1.WorkflowTemplate{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "WorkflowTemplate"},
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.labels("template")},
		Spec:       p.workflowSpec(tmplMain, p.mainDAG(), nil),
	}, nil
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

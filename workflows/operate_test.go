package workflows_test

import (
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/stepcli/exportcmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/mirrorcmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/verifycmd"
	"github.com/regmigrate/regmigrate/steps/verify"
	"github.com/regmigrate/regmigrate/workflows"
)

// runsOf are the entrypoint DAGs an object holds.
func runsOf(obj any) []string {
	var out []string
	for _, t := range templates(obj) {
		if t.DAG != nil && t.Name != "shard" {
			out = append(out, t.Name)
		}
	}
	return out
}

func templateNamed(obj any, name string) *wfv1.Template {
	for _, t := range templates(obj) {
		if t.Name == name {
			return &t
		}
	}
	return nil
}

// TestTemplateHoldsEveryRun: the WorkflowTemplate is the whole pipeline
// (the migration as its entrypoint, the delta, the cutover, the rollback),
// and each object generated on its own holds only its run.
func TestTemplateHoldsEveryRun(t *testing.T) {
	for name, obj := range objects(t) {
		var want []string
		switch {
		case name == "layout-template": // no cutover to a layout
			want = []string{"main", "delta", "rollback"}
		case strings.HasSuffix(name, "-template"):
			want = []string{"main", "delta", "cutover", "rollback"}
		case strings.Contains(name, "-from-template-"):
			want = nil
		case strings.HasSuffix(name, "-workflow"):
			want = []string{"main"}
		case strings.HasSuffix(name, "-cron"):
			want = []string{"delta"}
		case strings.HasSuffix(name, "-cutover"):
			want = []string{"cutover"}
		case strings.HasSuffix(name, "-rollback"):
			want = []string{"rollback"}
		}
		if got := runsOf(obj); !slices.Equal(got, want) {
			t.Errorf("%s holds the runs %v, want %v", name, got, want)
		}
		s := spec(obj)
		if ref := s.WorkflowTemplateRef; strings.Contains(name, "-from-template-") && (ref == nil || ref.Name != "acp-to-registry-v2") {
			t.Errorf("%s references %+v, want the template acp-to-registry-v2", name, ref)
		}
	}
	// A run's parameters are checked against the template's.
	p := plans()["catalog"]
	if _, err := workflows.FromTemplate(p, workflows.RunMigrate, map[string]string{"tags": "^v"}); err == nil || !strings.Contains(err.Error(), "tag-regex") {
		t.Errorf("an unknown parameter: %v, want an error listing the parameters", err)
	}
	if _, err := workflows.FromTemplate(p, workflows.RunMigrate, map[string]string{workflows.ParamVerifyMode: "thorough"}); err == nil || !strings.Contains(err.Error(), "full") {
		t.Errorf("a verify mode not in the enum: %v", err)
	}
	if _, err := workflows.FromTemplate(p, "switch", nil); err == nil {
		t.Error("a run the template does not hold was accepted")
	}
}

// TestParametersReachTheSteps: a value given to each parameter reaches
// the step's flag, parsed by the step's own parser, whatever the plan's
// default; and the cutover verifies in full whatever verify-mode says.
func TestParametersReachTheSteps(t *testing.T) {
	tmpl, err := workflows.Template(plans()["backfill"])
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]string{
		workflows.ParamSource: "other.example:5000/x", workflows.ParamIncludeNamespaces: "n1,n2", workflows.ParamExcludeNamespaces: "n3",
		workflows.ParamRepoRegex: "^n1/", workflows.ParamExcludeRepoRegex: "tmp", workflows.ParamTagRegex: `^v\d`, workflows.ParamExcludeTagRegex: "rc",
		workflows.ParamStrategy: "reuse-storage", workflows.ParamVerifyMode: "full",
	}
	if len(args) != len(workflows.Parameters) {
		t.Fatalf("the test sets %d of %d parameters", len(args), len(workflows.Parameters))
	}
	given := tmpl.DeepCopy()
	for i, par := range given.Spec.Arguments.Parameters {
		given.Spec.Arguments.Parameters[i].Value = wfv1.AnyStringPtr(args[par.Name])
		if par.Value.String() == args[par.Name] {
			t.Fatalf("parameter %s: the plan's default is the test's value", par.Name)
		}
	}
	subst := substitute(given)
	ex, err := exportcmd.Parse(subst(templateNamed(given, contract.StepExport).Container.Args), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{ex.From, ex.IncludeNS, ex.ExcludeNS, ex.RepoRegex, ex.ExcludeRepo, ex.TagRegex, ex.ExcludeTag, ex.Strategy}
	want := []string{args["source"], "n1,n2", "n3", "^n1/", "tmp", `^v\d`, "rc", "reuse-storage"}
	if !slices.Equal(got, want) {
		t.Errorf("export's flags %q, want %q", got, want)
	}
	m, err := mirrorcmd.Parse(subst(templateNamed(given, contract.StepMirror).Container.Args), io.Discard)
	if err != nil || m.Strategy != "reuse-storage" {
		t.Errorf("mirror-shard --strategy %q (%v)", m.Strategy, err)
	}
	// verify-shard's mode is its input, which the DAGs pass: the
	// parameter's in every run but the cutover's.
	vt := templateNamed(given, "verify-shard")
	if !slices.Contains(vt.Container.Args, "--mode={{inputs.parameters.verify-mode}}") {
		t.Fatalf("verify-shard args %q", vt.Container.Args)
	}
	for _, run := range []string{"main", "delta", "cutover"} {
		var mode string
		for _, task := range templateNamed(given, run).DAG.Tasks {
			for _, par := range task.Arguments.Parameters {
				if task.Name == "shard" && par.Name == workflows.ParamVerifyMode {
					mode = par.Value.String()
				}
			}
		}
		want := "{{workflow.parameters.verify-mode}}"
		if run == "cutover" {
			want = "full"
		}
		if mode != want {
			t.Errorf("%s passes the shards verify-mode %q, want %q", run, mode, want)
		}
	}
	if _, err := verifycmd.Parse([]string{"--shard-dir=/x", "--mode=" + args[workflows.ParamVerifyMode]}, io.Discard); err != nil {
		t.Error(err)
	}
	// The parameters' enums are the steps' values.
	if !slices.Equal(workflows.VerifyModes, []string{verify.ModeAuto, verify.ModeFull, verify.ModeDigest}) ||
		!slices.Equal(workflows.Strategies, []string{contract.StrategyCopy, contract.StrategyReuseStorage}) {
		t.Errorf("enums %v %v", workflows.VerifyModes, workflows.Strategies)
	}
}

// TestOneMigrationAtATime: every Workflow of a migration, whatever object
// makes it, holds the migration's mutex, and another migration's differs.
func TestOneMigrationAtATime(t *testing.T) {
	for name, obj := range objects(t) {
		plan, _, _ := strings.Cut(name, "-")
		want := workflows.MutexName(plansName(plan))
		s := spec(obj)
		if s.Synchronization == nil || len(s.Synchronization.Mutexes) != 1 || s.Synchronization.Mutexes[0].Name != want ||
			s.Synchronization.Semaphores != nil || s.Synchronization.Mutex != nil {
			t.Errorf("%s: synchronization %+v, want the one mutex %s", name, s.Synchronization, want)
		}
	}
	if workflows.MutexName("a") == workflows.MutexName("b") {
		t.Error("two migrations share a mutex")
	}
}

func plansName(plan string) string { return plans()[plan].Name }

// TestHousekeepingAndLimits: pods of succeeded nodes are deleted, failed
// ones kept; finished Workflows go after their TTL; every step pod and
// every Workflow has a deadline; every step container has resources, the
// plan's (a step's own first) or the defaults; the PriorityClass when
// given.
func TestHousekeepingAndLimits(t *testing.T) {
	for name, obj := range objects(t) {
		if strings.Contains(name, "-from-template-") {
			continue // the template's
		}
		plan, _, _ := strings.Cut(name, "-")
		p := plans()[plan]
		s := spec(obj)
		def := func(d, def time.Duration) int64 {
			if d == 0 {
				d = def
			}
			return int64(d / time.Second)
		}
		if s.PodGC == nil || s.PodGC.Strategy != wfv1.PodGCOnPodSuccess {
			t.Errorf("%s: podGC %+v, want OnPodSuccess", name, s.PodGC)
		}
		if ttl := s.TTLStrategy; ttl == nil || ttl.SecondsAfterCompletion != nil ||
			int64(*ttl.SecondsAfterSuccess) != def(p.TTLAfterSuccess, workflows.DefaultTTLAfterSuccess) ||
			int64(*ttl.SecondsAfterFailure) != def(p.TTLAfterFailure, workflows.DefaultTTLAfterFailure) {
			t.Errorf("%s: ttlStrategy %+v", name, ttl)
		}
		if d := s.ActiveDeadlineSeconds; d == nil || *d != def(p.WorkflowDeadline, workflows.DefaultWorkflowDeadline) {
			t.Errorf("%s: activeDeadlineSeconds %v", name, d)
		}
		if s.PodPriorityClassName != p.PriorityClassName {
			t.Errorf("%s: podPriorityClassName %q, want %q", name, s.PodPriorityClassName, p.PriorityClassName)
		}
		for _, tmpl := range s.Templates {
			if tmpl.Container == nil && tmpl.Resource == nil {
				if tmpl.ActiveDeadlineSeconds != nil {
					t.Errorf("%s/%s: a deadline on a template that runs no pod", name, tmpl.Name)
				}
				continue
			}
			if d := tmpl.ActiveDeadlineSeconds; d == nil || int64(d.IntValue()) != def(p.StepDeadline, workflows.DefaultStepDeadline) {
				t.Errorf("%s/%s: activeDeadlineSeconds %v", name, tmpl.Name, d)
			}
			if tmpl.Container == nil {
				continue
			}
			if !slices.Contains(workflows.StepTemplates, tmpl.Name) {
				t.Errorf("%s/%s: a step container not in StepTemplates", name, tmpl.Name)
			}
			want, ok := p.StepResources[tmpl.Name]
			if !ok {
				want = p.Resources
			}
			if want.Requests == nil && want.Limits == nil {
				want = workflows.DefaultResources
			}
			if got := tmpl.Container.Resources; !equalResources(got, want) {
				t.Errorf("%s/%s: resources %v, want %v", name, tmpl.Name, got, want)
			}
		}
	}
	// The defaults: a memory request and limit, a CPU request, no CPU
	// limit; requests within limits.
	d := workflows.DefaultResources
	if d.Requests.Memory().IsZero() || d.Limits.Memory().IsZero() || d.Requests.Cpu().IsZero() || !d.Limits.Cpu().IsZero() ||
		d.Requests.Memory().Cmp(*d.Limits.Memory()) > 0 {
		t.Errorf("DefaultResources %v", d)
	}
	p := plans()["catalog"]
	p.StepResources = map[string]corev1.ResourceRequirements{"mirror": {}}
	if _, err := workflows.Workflow(p); err == nil || !strings.Contains(err.Error(), "mirror-shard") {
		t.Errorf("resources of an unknown step: %v", err)
	}
	p = plans()["catalog"]
	p.StepDeadline = time.Millisecond
	if _, err := workflows.Workflow(p); err == nil || !strings.Contains(err.Error(), "step deadline") {
		t.Errorf("a deadline under a second: %v", err)
	}
}

func equalResources(a, b corev1.ResourceRequirements) bool {
	eq := func(x, y corev1.ResourceList) bool {
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || v.Cmp(w) != 0 {
				return false
			}
		}
		return true
	}
	return eq(a.Requests, b.Requests) && eq(a.Limits, b.Limits)
}

// TestCutoverStopsTheDeltas: the cutover reads the delta CronWorkflow,
// suspends it (marking itself) when it exists and runs, before its last
// delta; a delta that finds its CronWorkflow suspended exports nothing;
// the rollback resumes the CronWorkflow only if a cutover suspended it.
func TestCutoverStopsTheDeltas(t *testing.T) {
	p := plans()["backfill"]
	tmpl, err := workflows.Template(p)
	if err != nil {
		t.Fatal(err)
	}
	cron := workflows.DeltaCronName(p.Name)
	task := func(run, name string) *wfv1.DAGTask {
		for _, task := range templateNamed(tmpl, run).DAG.Tasks {
			if task.Name == name {
				return &task
			}
		}
		t.Fatalf("%s has no task %s", run, name)
		return nil
	}
	// The CronWorkflow is read by name, in the Workflow's namespace; a
	// missing one is no error.
	get := templateNamed(tmpl, "delta-cron")
	if r := get.Resource; r == nil || r.Action != "get" || !slices.Equal(r.Flags, []string{"cronworkflows.argoproj.io", cron, "--namespace={{workflow.namespace}}", "--ignore-not-found"}) {
		t.Fatalf("delta-cron reads %+v", get.Resource)
	}
	patch := func(name string) (flags []string, body map[string]any) {
		r := templateNamed(tmpl, name).Resource
		if r == nil || r.Action != "patch" || r.MergeStrategy != "merge" {
			t.Fatalf("%s: %+v, want a merge patch", name, r)
		}
		if err := json.Unmarshal([]byte(r.Manifest), &body); err != nil {
			t.Fatal(err)
		}
		return r.Flags, body
	}
	flags, body := patch("suspend-deltas")
	if !slices.Equal(flags, get.Resource.Flags[:3]) {
		t.Errorf("suspend-deltas patches %v", flags)
	}
	if b, _ := json.Marshal(body); string(b) != `{"metadata":{"annotations":{"`+workflows.SuspendedByAnnotation+`":"{{workflow.name}}"}},"spec":{"suspend":true}}` {
		t.Errorf("suspend-deltas patch %s", b)
	}
	_, body = patch("resume-deltas")
	if b, _ := json.Marshal(body); string(b) != `{"metadata":{"annotations":{"`+workflows.SuspendedByAnnotation+`":null}},"spec":{"suspend":false}}` {
		t.Errorf("resume-deltas patch %s", b)
	}
	// The cutover: read, suspend if it runs, then the last delta.
	if s := task("cutover", "suspend-deltas"); s.Depends != "delta-cron" || s.When != "'{{tasks.delta-cron.outputs.parameters.suspended}}' == 'false'" {
		t.Errorf("cutover's suspend-deltas: %+v", s)
	}
	if e := task("cutover", "export"); e.Depends != "suspend-deltas" {
		t.Errorf("cutover's export depends on %q, want suspend-deltas (run or skipped)", e.Depends)
	}
	// The delta: nothing exported once suspended.
	if e := task("delta", "export"); e.Depends != "delta-cron" || e.When != "'{{tasks.delta-cron.outputs.parameters.suspended}}' != 'true'" {
		t.Errorf("delta's export: %+v", e)
	}
	// The rollback: switch back, then resume what a cutover suspended.
	if r := task("rollback", "resume-deltas"); r.When != "'{{tasks.delta-cron.outputs.parameters.suspended-by}}' != ''" || task("rollback", "delta-cron").Depends != "switch-mode" {
		t.Errorf("rollback's resume-deltas: %+v", r)
	}
	// The migration itself reads no CronWorkflow: a manual run runs.
	for _, task := range templateNamed(tmpl, "main").DAG.Tasks {
		if task.When != "" || task.Name == "delta-cron" {
			t.Errorf("main's task %s: %+v", task.Name, task)
		}
	}
}

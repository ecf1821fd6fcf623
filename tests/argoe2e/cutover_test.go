//go:build e2e

package argoe2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regmigrate/regmigrate/steps/approval"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/switchmode"
	"github.com/regmigrate/regmigrate/tests/regtest"
	"github.com/regmigrate/regmigrate/workflows"
)

// scenarioCutover is scenario 4, the pipeline as a platform team runs it
// (issue 13): the migration's WorkflowTemplate and its delta CronWorkflow
// generated into a kustomization with the install manifests and applied
// with one `kubectl apply -k`; the cutover submitted from the template
// (`submit --from-template --cutover`) suspends the deltas first and stops
// at its approval step with the platform untouched, holding the
// migration's mutex: a manual run and a delta submitted meanwhile wait,
// Pending, and run only once it is over (the delta then copies nothing:
// its CronWorkflow is suspended); `argo resume` lets switch-mode point the
// workloads at the target and record the modern mode; the rollback from
// the template restores the original images and the legacy mode and
// resumes the deltas.
func scenarioCutover(t *testing.T, e *env) {
	ctx := context.Background()
	seeded := e.seed(t, regtest.Corpus{Namespaces: []string{"cut"}, ReposPerNS: 2, TagsPerRepo: 1, LayerSize: 4 << 10})
	// The platform: a Deployment (no replicas: its spec is what the cutover
	// changes) running the legacy images, an init container among them.
	deployment := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers:
      - {name: init, image: %[1]s/cut/app1:v0}
      containers:
      - {name: web, image: %[1]s/cut/app0:v0}
      - {name: sidecar, image: docker.io/library/busybox:1.36}
`, e.src.Host)
	file := filepath.Join(e.dir, "shop.yaml")
	if err := os.WriteFile(file, []byte(deployment), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := e.node.Kubectl(ctx, "apply", "-f", file); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	legacy := map[string]string{"init": e.src.Host + "/cut/app1:v0", "web": e.src.Host + "/cut/app0:v0", "sidecar": "docker.io/library/busybox:1.36"}
	original := e.deploymentSpec(t, ctx)

	// The pipeline, installed with the manifests in one kustomization.
	const migration = "e2e-cut"
	cron := workflows.DeltaCronName(migration)
	spec := e.migrationSpec(t, migration, "cut")
	pipeline := filepath.Join(e.dir, "pipeline")
	rel, _ := filepath.Rel(pipeline, e.installDir)
	e.writeFiles(t, pipeline, map[string]string{
		"workflowtemplate.yaml": e.generate(t, ctx, spec, append([]string{"--template", "--secret", authSecret}, stepImageFlags...)...),
		// a schedule that does not fire while the test runs: its deltas
		// are triggered by hand
		"cronworkflow.yaml":  e.generate(t, ctx, spec, "--from-template", "--cron", "0 0 1 1 *"),
		"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- " + rel + "\n- workflowtemplate.yaml\n- cronworkflow.yaml\n",
	})
	if code, out := regmigrate(t, ctx, "lint", filepath.Join(pipeline, "workflowtemplate.yaml"), filepath.Join(pipeline, "cronworkflow.yaml")); code != 0 {
		t.Fatalf("regmigrate lint of the pipeline: exit %d\n%s", code, out)
	}
	if out, err := e.node.Kubectl(ctx, "apply", "-k", pipeline); err != nil {
		t.Fatalf("%v\n%s", err, out)
	} else if !strings.Contains(out, "workflowtemplate.argoproj.io/"+migration+" created") || !strings.Contains(out, "cronworkflow.argoproj.io/"+cron+" created") {
		t.Errorf("kubectl apply -k %s did not create the template and the CronWorkflow:\n%s", pipeline, out)
	}

	// The cutover, from the template. It suspends the deltas, then waits
	// for a person at the approval step; nothing switched yet.
	name := e.submitFromTemplate(t, ctx, spec, "--cutover")
	e.waitNode(t, ctx, name, "approve", wfv1.NodeRunning, wfTimeout)
	if got := e.deploymentImages(t, ctx); !maps(got, legacy) {
		t.Errorf("before approval the deployment runs %v, want the legacy images %v", got, legacy)
	}
	if rec := e.modeRecord(t, ctx); rec.Mode == switchmode.ModeModern {
		t.Errorf("before approval the mode record says %+v", rec)
	}
	if c := e.cronWorkflow(t, ctx, cron); !c.Spec.Suspend || c.Annotations[workflows.SuspendedByAnnotation] != name {
		t.Errorf("CronWorkflow %s during the cutover: suspended %v, annotations %v; want suspended by %s", cron, c.Spec.Suspend, c.Annotations, name)
	}

	// One migration at a time: a manual run (its tags narrowed by a
	// parameter) and a delta of the CronWorkflow wait for the cutover.
	manual := e.submitFromTemplate(t, ctx, spec, "--param", "tag-regex=^v0$")
	out, err := e.argo(ctx, "submit", "--from", "cronwf/"+cron, "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	delta := strings.TrimSpace(out[strings.LastIndex(out, "/")+1:])
	mutex := namespace + "/Mutex/" + workflows.MutexName(migration)
	for _, w := range []string{manual, delta} {
		wf := e.waitFor(t, ctx, w, "Pending, waiting for "+mutex, func(wf *wfv1.Workflow) bool {
			return wf.Status.Phase == wfv1.WorkflowPending && strings.Contains(wf.Status.Message, "Waiting for "+mutex+" lock")
		})
		if len(wf.Status.Nodes) != 0 || len(e.pods(t, ctx, w)) != 0 {
			t.Errorf("%s runs while the cutover holds the mutex: %d nodes", w, len(wf.Status.Nodes))
		}
		if out, _ := e.argo(ctx, "list"); !strings.Contains(out, w) {
			t.Errorf("argo list does not show %s:\n%s", w, out)
		} else {
			t.Logf("argo list while the cutover waits for its approval:\n%s", out)
		}
	}
	if c := e.workflow(t, ctx, name); c.Status.Synchronization == nil || c.Status.Synchronization.Mutex == nil ||
		len(c.Status.Synchronization.Mutex.Holding) != 1 || c.Status.Synchronization.Mutex.Holding[0].Mutex != mutex {
		t.Errorf("the cutover's synchronization status %+v: want it holding %s", c.Status.Synchronization, mutex)
	}

	// Approved as the UI's Resume form does it (scenario 7 rejects one).
	e.answerApproval(t, ctx, name, approval.Approve, "e2e approver")
	wf := e.waitWorkflow(t, ctx, name, wfTimeout)
	finished = append(finished, name)
	if wf.Status.Phase != wfv1.WorkflowSucceeded {
		out, _ := e.argo(ctx, "get", name)
		t.Fatalf("cutover %s: %s (%s)\n%s", name, wf.Status.Phase, wf.Status.Message, out)
	}
	e.assertOnTarget(t, seeded.Tags)
	target := map[string]string{"init": e.dst.Host + "/cut/app1:v0", "web": e.dst.Host + "/cut/app0:v0", "sidecar": "docker.io/library/busybox:1.36"}
	if got := e.deploymentImages(t, ctx); !maps(got, target) {
		t.Errorf("after the cutover the deployment runs %v, want %v", got, target)
	}
	rec := e.modeRecord(t, ctx)
	if rec.Mode != switchmode.ModeModern || rec.PreviousMode != switchmode.ModeLegacy || rec.Target != e.dst.Host || rec.Migration != migration {
		t.Errorf("mode record after the cutover: %+v", rec)
	}
	sw := nodeOf(wf, contract.StepSwitchMode)
	if output(sw, "rewritten") != "1" || output(sw, "failed") != "0" {
		t.Errorf("switch-mode outputs rewritten=%q failed=%q, want 1 and 0", output(sw, "rewritten"), output(sw, "failed"))
	}
	if v := shardNode(wf, "verify-shard", "ns-cut"); v == nil || !slices.ContainsFunc(v.Inputs.Parameters, func(p wfv1.Parameter) bool {
		return p.Name == workflows.ParamVerifyMode && p.Value != nil && p.Value.String() == "full"
	}) {
		t.Errorf("the cutover's verify of ns-cut: %+v, want verify-mode full", v)
	}
	keys := e.s3List(t, name+"/run/")
	for _, f := range []string{contract.ReportJSON, switchmode.ResultFile, switchmode.DiffFile, contract.ApprovalFile} {
		if !slices.Contains(keys, name+"/run/"+f) {
			t.Errorf("S3 lacks %s/run/%s", name, f)
		}
	}
	var approved approval.Record
	if err := json.Unmarshal(e.s3Get(t, name+"/run/"+contract.ApprovalFile), &approved); err != nil || approved.Decision != approval.Approve || approved.Approver != "e2e approver" {
		t.Errorf("approval.json of %s: %+v %v, want approved by the e2e approver", name, approved, err)
	}
	if diff := string(e.s3Get(t, name+"/run/"+switchmode.DiffFile)); !strings.Contains(diff, "+  containers/web: "+target["web"]) {
		t.Errorf("switch.diff in S3:\n%s", diff)
	}

	// The two that waited run after the cutover, one after the other.
	ended := wf.Status.FinishedAt
	runs := map[string]*wfv1.Workflow{}
	for _, w := range []string{manual, delta} {
		runs[w] = e.waitWorkflow(t, ctx, w, wfTimeout)
		finished = append(finished, w)
		if runs[w].Status.Phase != wfv1.WorkflowSucceeded {
			out, _ := e.argo(ctx, "get", w)
			t.Fatalf("%s: %s (%s)\n%s", w, runs[w].Status.Phase, runs[w].Status.Message, out)
		}
		if first := firstStart(runs[w]); first.Before(&ended) {
			t.Errorf("%s started a node at %s, before the cutover ended at %s", w, first, ended)
		}
	}
	a, b := runs[manual], runs[delta]
	if startA, startB := firstStart(a), firstStart(b); startB.Before(&a.Status.FinishedAt) && startA.Before(&b.Status.FinishedAt) {
		t.Errorf("the manual run (%s to %s) and the delta (%s to %s) overlapped", startA, a.Status.FinishedAt, startB, b.Status.FinishedAt)
	}
	// The manual run took its parameter: scope.json records the filter.
	var scope struct{ Filters struct{ Tags string } }
	if err := json.Unmarshal(e.s3Get(t, manual+"/run/"+contract.ScopeFile), &scope); err != nil || scope.Filters.Tags != "^v0$" {
		t.Errorf("scope.json of %s: %+v %v, want the tag filter ^v0$ given as --param", manual, scope, err)
	}
	// The delta found its CronWorkflow suspended: it exported nothing and
	// copied nothing against a platform that has switched.
	exports := 0
	for _, n := range runs[delta].Status.Nodes {
		switch n.TemplateName {
		case contract.StepExport:
			exports++
			if n.Phase != wfv1.NodeSkipped {
				t.Errorf("the delta's export: %s (%s), want Skipped", n.Phase, n.Message)
			}
		case contract.StepMirror, "shard":
			if n.Phase != wfv1.NodeSkipped && n.Phase != wfv1.NodeOmitted {
				t.Errorf("the delta after the cutover ran %s (%s)", n.DisplayName, n.Phase)
			}
		}
	}
	if exports != 1 {
		t.Errorf("the delta after the cutover has %d export nodes, want one, Skipped", exports)
	}

	// The way back, from the template: the deltas resume.
	rb := e.submitFromTemplate(t, ctx, spec, "--rollback")
	wf = e.waitWorkflow(t, ctx, rb, wfTimeout)
	finished = append(finished, rb)
	if wf.Status.Phase != wfv1.WorkflowSucceeded {
		out, _ := e.argo(ctx, "get", rb)
		t.Fatalf("rollback %s: %s (%s)\n%s", rb, wf.Status.Phase, wf.Status.Message, out)
	}
	if got := e.deploymentSpec(t, ctx); got != original {
		t.Errorf("the rollback did not restore the deployment's spec:\nwant %s\ngot  %s", original, got)
	}
	if rec := e.modeRecord(t, ctx); rec.Mode != switchmode.ModeLegacy || rec.PreviousMode != switchmode.ModeModern {
		t.Errorf("mode record after the rollback: %+v", rec)
	}
	if !slices.Contains(e.s3List(t, rb+"/rollback/"), rb+"/rollback/"+switchmode.ResultFile) {
		t.Errorf("S3 lacks %s/rollback/%s", rb, switchmode.ResultFile)
	}
	if c := e.cronWorkflow(t, ctx, cron); c.Spec.Suspend || c.Annotations[workflows.SuspendedByAnnotation] != "" {
		t.Errorf("CronWorkflow %s after the rollback: suspended %v, annotations %v; want resumed", cron, c.Spec.Suspend, c.Annotations)
	}
}

// firstStart is when the first node of a Workflow started.
func firstStart(wf *wfv1.Workflow) metav1.Time {
	var first metav1.Time
	for _, n := range wf.Status.Nodes {
		if !n.StartedAt.IsZero() && (first.IsZero() || n.StartedAt.Before(&first)) {
			first = n.StartedAt
		}
	}
	return first
}

// cronWorkflow reads a CronWorkflow as Argo's own type.
func (e *env) cronWorkflow(t *testing.T, ctx context.Context, name string) *wfv1.CronWorkflow {
	t.Helper()
	out, err := e.node.Kubectl(ctx, "-n", namespace, "get", "cronworkflow", name, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var c wfv1.CronWorkflow
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// waitFor waits until the Workflow is as ok wants, for at most wfTimeout.
func (e *env) waitFor(t *testing.T, ctx context.Context, name, what string, ok func(*wfv1.Workflow) bool) *wfv1.Workflow {
	t.Helper()
	deadline := time.Now().Add(wfTimeout)
	for {
		wf := e.workflow(t, ctx, name)
		if ok(wf) {
			return wf
		}
		if time.Now().After(deadline) || wf.Status.Phase.Completed() {
			out, _ := e.argo(ctx, "get", name)
			t.Fatalf("workflow %s is %s (%s), want %s:\n%s", name, wf.Status.Phase, wf.Status.Message, what, out)
		}
		time.Sleep(time.Second)
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// nodeOf is the (last) pod node of a template.
func nodeOf(wf *wfv1.Workflow, template string) *wfv1.NodeStatus {
	var found *wfv1.NodeStatus
	for _, n := range wf.Status.Nodes {
		if n.TemplateName == template && n.Type == wfv1.NodeTypePod {
			n := n
			found = &n
		}
	}
	return found
}

// waitNode waits until a node of the template is in the phase.
func (e *env) waitNode(t *testing.T, ctx context.Context, wfName, template string, phase wfv1.NodePhase, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		wf := e.workflow(t, ctx, wfName)
		for _, n := range wf.Status.Nodes {
			if n.TemplateName == template && n.Phase == phase {
				return
			}
		}
		if wf.Status.Phase.Completed() || time.Now().After(deadline) {
			out, _ := e.argo(ctx, "get", wfName)
			t.Fatalf("workflow %s (%s): no %s node %s:\n%s", wfName, wf.Status.Phase, template, phase, out)
		}
		time.Sleep(time.Second)
	}
}

func (e *env) deploymentSpec(t *testing.T, ctx context.Context) string {
	t.Helper()
	out, err := e.node.Kubectl(ctx, "-n", "shop", "get", "deployment", "web", "-o", "jsonpath={.spec.template}")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) deploymentImages(t *testing.T, ctx context.Context) map[string]string {
	t.Helper()
	out, err := e.node.Kubectl(ctx, "-n", "shop", "get", "deployment", "web", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Spec struct {
			Template struct {
				Spec struct {
					InitContainers, Containers []struct{ Name, Image string }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range append(d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers...) {
		got[c.Name] = c.Image
	}
	return got
}

// modeRecord reads the registry mode record as a person would, with kubectl.
func (e *env) modeRecord(t *testing.T, ctx context.Context) switchmode.Record {
	t.Helper()
	out, err := e.node.Kubectl(ctx, "-n", switchmode.DefaultNamespace, "get", "configmap", switchmode.DefaultName, "-o", "jsonpath={.data}", "--ignore-not-found")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) == "" {
		return switchmode.Record{}
	}
	var d map[string]string
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("mode record %q: %v", out, err)
	}
	return switchmode.Record{Mode: d["mode"], PreviousMode: d["previousMode"], Source: d["source"], Target: d["target"], Migration: d["migration"], Time: d["time"]}
}

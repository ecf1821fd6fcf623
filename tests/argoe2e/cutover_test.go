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

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/switchmode"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// scenarioCutover is scenario 4: the cutover Workflow (last delta, full
// verify) stops at its approval step with the platform untouched; `argo
// resume` lets switch-mode run, which points the workloads at the target
// and records the modern mode; the rollback Workflow restores the original
// images and the legacy mode.
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

	spec := e.migrationSpec(t, "e2e-cut", "cut")
	name := e.submit(t, ctx, spec, "--cutover")
	// It waits for a person at the approval step; nothing switched yet.
	e.waitNode(t, ctx, name, "approve", wfv1.NodeRunning, wfTimeout)
	if got := e.deploymentImages(t, ctx); !maps(got, legacy) {
		t.Errorf("before approval the deployment runs %v, want the legacy images %v", got, legacy)
	}
	if rec := e.modeRecord(t, ctx); rec.Mode == switchmode.ModeModern {
		t.Errorf("before approval the mode record says %+v", rec)
	}
	if _, err := e.argo(ctx, "resume", name); err != nil {
		t.Fatal(err)
	}
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
	if rec.Mode != switchmode.ModeModern || rec.PreviousMode != switchmode.ModeLegacy || rec.Target != e.dst.Host || rec.Migration != "e2e-cut" {
		t.Errorf("mode record after the cutover: %+v", rec)
	}
	sw := nodeOf(wf, contract.StepSwitchMode)
	if output(sw, "rewritten") != "1" || output(sw, "failed") != "0" {
		t.Errorf("switch-mode outputs rewritten=%q failed=%q, want 1 and 0", output(sw, "rewritten"), output(sw, "failed"))
	}
	keys := e.s3List(t, name+"/run/")
	for _, f := range []string{contract.ReportJSON, switchmode.ResultFile, switchmode.DiffFile} {
		if !slices.Contains(keys, name+"/run/"+f) {
			t.Errorf("S3 lacks %s/run/%s", name, f)
		}
	}
	if diff := string(e.s3Get(t, name+"/run/"+switchmode.DiffFile)); !strings.Contains(diff, "+  containers/web: "+target["web"]) {
		t.Errorf("switch.diff in S3:\n%s", diff)
	}

	// The way back.
	rb := e.submit(t, ctx, spec, "--rollback")
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

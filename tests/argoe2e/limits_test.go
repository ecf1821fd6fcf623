//go:build e2e

package argoe2e

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/cluster"
	"github.com/regmigrate/regmigrate/workflows"
)

// scenarioLimits is scenario 6 (issue 13, housekeeping and limits): two
// migrations from a source that accepts connections and never answers,
// so their export cannot end by itself. One has a step deadline (and its
// pods a PriorityClass and their own resources, a short TTL): the kubelet
// ends the export pod at the deadline, the Workflow fails, its failed pod
// stays (podGC keeps failed pods) showing the spec's resources and
// PriorityClass, and the finished Workflow is deleted after its TTL, kept
// in the archive. The other has a Workflow deadline: the controller bounds
// its pods by what is left of it, and the Workflow fails at it; its failed
// pod ran with the default resources.
func scenarioLimits(t *testing.T, e *env) {
	ctx := context.Background()
	hole := blackHole(t)
	step := e.submit(t, ctx, e.migrationSpecWith(t, "e2e-step-deadline", hole, `argo:
  deadlines: {step: 10s}
  ttl: {afterFailure: 30s}
  priorityClassName: `+priorityClass+`
  stepResources:
    export:
      requests: {cpu: 50m, memory: 48Mi}
      limits: {memory: 200Mi}
`))
	whole := e.submit(t, ctx, e.migrationSpecWith(t, "e2e-workflow-deadline", hole, "argo:\n  deadlines: {workflow: 20s}\n"))

	// The step deadline: the export pod ends at it, and is kept.
	wf := e.waitWorkflow(t, ctx, step, wfTimeout)
	export := exportNode(wf)
	if wf.Status.Phase != wfv1.WorkflowFailed || export == nil || export.Phase != wfv1.NodeFailed || !strings.Contains(strings.ToLower(export.Message), "deadline") {
		out, _ := e.argo(ctx, "get", step)
		t.Errorf("workflow %s: %s; export %+v: want Failed at its step deadline\n%s", step, wf.Status.Phase, export, out)
	}
	pod := e.podOf(t, ctx, step, export)
	if pod != nil {
		main := container(pod, "main")
		want := corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("48Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("200Mi")},
		}
		if main == nil || !sameResources(main.Resources, want) {
			t.Errorf("export pod %s: main container resources %+v, want the spec's %+v", pod.Name, main, want)
		}
		if d := pod.Spec.ActiveDeadlineSeconds; d == nil || *d != 10 {
			t.Errorf("export pod %s: activeDeadlineSeconds %v, want 10", pod.Name, d)
		}
		if pod.Spec.PriorityClassName != priorityClass || pod.Spec.Priority == nil || *pod.Spec.Priority != 1000 {
			t.Errorf("export pod %s: priorityClassName %q priority %v, want %s (1000)", pod.Name, pod.Spec.PriorityClassName, pod.Spec.Priority, priorityClass)
		}
		if pod.Status.Reason != "DeadlineExceeded" {
			t.Errorf("export pod %s: status reason %q, want DeadlineExceeded", pod.Name, pod.Status.Reason)
		}
	}

	// The Workflow deadline: the controller gives each pod what is left
	// of it as the pod's deadline (less than the step deadline, 6 hours
	// by default), and the Workflow fails at it.
	wf2 := e.waitWorkflow(t, ctx, whole, wfTimeout)
	export2 := exportNode(wf2)
	if wf2.Status.Phase != wfv1.WorkflowFailed || export2 == nil || !strings.Contains(strings.ToLower(export2.Message), "deadline") {
		out, _ := e.argo(ctx, "get", whole)
		t.Errorf("workflow %s: %s; export %+v: want Failed, its export ended by the Workflow's deadline\n%s", whole, wf2.Status.Phase, export2, out)
	}
	if d := wf2.Spec.ActiveDeadlineSeconds; d == nil || *d != 20 {
		t.Errorf("workflow %s: activeDeadlineSeconds %v, want 20", whole, d)
	}
	if pod := e.podOf(t, ctx, whole, export2); pod != nil {
		if d := pod.Spec.ActiveDeadlineSeconds; d == nil || *d > 20 {
			t.Errorf("export pod %s: activeDeadlineSeconds %v, want at most the Workflow's 20", pod.Name, d)
		}
		if main := container(pod, "main"); main == nil || !sameResources(main.Resources, workflows.DefaultResources) {
			t.Errorf("export pod %s: main container resources %+v, want the defaults %+v", pod.Name, main, workflows.DefaultResources)
		}
	}

	// The TTL: the first Workflow goes 30 s after it failed; the archive
	// keeps it. The second (the default TTL, days) stays.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, err := e.node.Kubectl(ctx, "-n", namespace, "get", "workflow", step, "-o", "name", "--ignore-not-found")
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workflow %s still there 3 minutes after it failed, with ttlStrategy.secondsAfterFailure 30", step)
		}
		time.Sleep(2 * time.Second)
	}
	rows, err := e.node.Postgres.Query(ctx, "SELECT phase FROM argo_archived_workflows WHERE namespace = '"+namespace+"' AND name = '"+step+"'")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(rows) != string(wfv1.WorkflowFailed) {
		t.Errorf("archive row of %s after its TTL: %q, want Failed", step, rows)
	}
	if e.workflow(t, ctx, whole).Name != whole {
		t.Errorf("workflow %s is gone", whole)
	}
}

// exportNode is the export node of a Workflow (the retry node's attempt,
// if any), or nil.
func exportNode(wf *wfv1.Workflow) *wfv1.NodeStatus {
	return nodeOf(wf, contract.StepExport)
}

// podOf is the pod of a node, which podGC keeps when it failed.
func (e *env) podOf(t *testing.T, ctx context.Context, wfName string, n *wfv1.NodeStatus) *corev1.Pod {
	t.Helper()
	if n == nil {
		return nil
	}
	for _, p := range e.pods(t, ctx, wfName) {
		if p.Annotations["workflows.argoproj.io/node-id"] == n.ID {
			return &p
		}
	}
	t.Errorf("no pod of node %s (%s) left: a failed node's pod is kept (podGC OnPodSuccess)", n.DisplayName, n.Phase)
	return nil
}

func container(p *corev1.Pod, name string) *corev1.Container {
	for i, c := range p.Spec.Containers {
		if c.Name == name {
			return &p.Spec.Containers[i]
		}
	}
	return nil
}

func sameResources(a, b corev1.ResourceRequirements) bool {
	eq := func(x, y corev1.ResourceList) bool {
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || v.Cmp(w) != 0 {
				return false
			}
		}
		return true
	}
	return eq(a.Requests, b.Requests) && eq(a.Limits, b.Limits)
}

// blackHole listens on the node's address, accepts connections and never
// answers: a registry that hangs. It returns HOST:PORT.
func blackHole(t *testing.T) string {
	l, err := net.Listen("tcp", cluster.NodeIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

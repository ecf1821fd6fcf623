//go:build e2e

package argoe2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/cluster"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// scenarioUIRetry is issue 13's point 8, on a Workflow run from a
// ClusterWorkflowTemplate (point 1's option): the migration's
// ClusterWorkflowTemplate (`generate --template --cluster-scope`) applied
// with kubectl and a Workflow submitted from it (`submit --from-template
// --cluster-scope`); one shard fails (a layer of one of its images
// unreadable in the source), the others succeed; the fault removed, the
// failed shard's node is retried through the Argo Server's HTTP API with
// the request the UI's node RETRY sends (the UI's own source, v3.7.3:
// retry-workflow-node-panel.tsx, workflows-service.ts); only that shard's
// pods and the report run again, the Workflow Succeeds and its report
// passes. Then a succeeded shard is retried the same way with "Restart
// Successful" ticked: only that shard's pods and the report run again.
func scenarioUIRetry(t *testing.T, e *env) {
	ctx := context.Background()
	namespaces := []string{"ui-a", "ui-b", "ui-c"}
	seeded := e.seed(t, regtest.Corpus{Namespaces: namespaces, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 4 << 10})
	const migration = "e2e-ui-retry"
	spec := e.migrationSpec(t, migration, namespaces...)

	// The pipeline as a ClusterWorkflowTemplate, linted and applied.
	tmpl := filepath.Join(e.dir, "clusterworkflowtemplate.yaml")
	e.writeFiles(t, e.dir, map[string]string{
		"clusterworkflowtemplate.yaml": e.generate(t, ctx, spec, append([]string{"--template", "--cluster-scope", "--secret", authSecret}, stepImageFlags...)...),
	})
	if code, out := regmigrate(t, ctx, "lint", tmpl); code != 0 {
		t.Fatalf("regmigrate lint %s: exit %d\n%s", tmpl, code, out)
	}
	if out, err := e.node.Kubectl(ctx, "apply", "-f", tmpl); err != nil || !strings.Contains(out, "clusterworkflowtemplate.argoproj.io/"+migration+" created") {
		t.Fatalf("kubectl apply -f %s: %v\n%s", tmpl, err, out)
	}
	t.Cleanup(func() {
		e.node.Kubectl(context.Background(), "delete", "clusterworkflowtemplate", migration, "--ignore-not-found")
	})

	// The fault: the source forgets its link to the own layer of ui-b/app1:v1.
	restore := e.hideLayer(t, "ui-b/app1:v1")
	defer restore()
	wfName := e.submitFromTemplate(t, ctx, spec, "--cluster-scope")
	wf := e.waitWorkflow(t, ctx, wfName, wfTimeout)
	if ref := wf.Spec.WorkflowTemplateRef; ref == nil || !ref.ClusterScope || ref.Name != migration {
		t.Errorf("workflow %s runs %+v, want the ClusterWorkflowTemplate %s", wfName, ref, migration)
	}
	if wf.Status.Phase != wfv1.WorkflowFailed {
		out, _ := e.argo(ctx, "get", wfName)
		t.Fatalf("workflow %s: %s, want Failed (shard ns-ui-b)\n%s", wfName, wf.Status.Phase, out)
	}
	failed := shardNode(wf, "shard", "ns-ui-b")
	if failed == nil || failed.Phase != wfv1.NodeFailed {
		t.Fatalf("shard ns-ui-b: %+v, want a Failed node", failed)
	}
	for _, ns := range []string{"ui-a", "ui-c"} {
		if s := shardNode(wf, "shard", "ns-"+ns); s == nil || s.Phase != wfv1.NodeSucceeded {
			t.Fatalf("shard ns-%s: %+v, want Succeeded although ns-ui-b failed", ns, s)
		}
	}

	start := time.Now()
	srv, err := e.node.StartArgoServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.node.StopArgoServer(); err != nil {
			t.Errorf("stopping the Argo Server: %v", err)
		}
	})
	timing(t, "argo server up", time.Since(start))
	// What the UI's Workflow page loads first: the Workflow, with the
	// failed node the user clicks.
	var got wfv1.Workflow
	if code, body := argoAPI(t, http.MethodGet, srv.URL+"/api/v1/workflows/"+namespace+"/"+wfName, nil); code != http.StatusOK {
		t.Fatalf("GET the Workflow from the Argo Server: %d %s", code, body)
	} else if err := json.Unmarshal(body, &got); err != nil || got.Status.Phase != wfv1.WorkflowFailed || got.Status.Nodes[failed.ID].Phase != wfv1.NodeFailed {
		t.Fatalf("the Argo Server shows %s: %s, node %s %+v (%v)", wfName, got.Status.Phase, failed.ID, got.Status.Nodes[failed.ID].Phase, err)
	}

	// The fault removed, the node's RETRY as the UI sends it (Override
	// Parameters and Restart Successful left unticked).
	restore()
	before := podStarts(wf)
	e.uiRetryNode(t, srv, wfName, failed.ID, false)
	wf = e.waitRetried(t, ctx, wfName)
	if wf.Status.Phase != wfv1.WorkflowSucceeded {
		out, _ := e.argo(ctx, "get", wfName)
		t.Fatalf("after the UI's retry, workflow %s: %s (%s)\n%s", wfName, wf.Status.Phase, wf.Status.Message, out)
	}
	ranAgain(t, before, wf, "ns-ui-b")
	var mj mirrorJSON
	if err := json.Unmarshal(e.s3Get(t, wfName+"/run/shards/ns-ui-b/"+contract.MirrorResult), &mj); err != nil {
		t.Fatal(err)
	}
	if n := len(tagsIn(seeded.Tags, "ui-b")); mj.Copied != 1 || mj.Skipped != n-1 || mj.Failed != 0 {
		t.Errorf("mirror.json of ns-ui-b after the retry: %+v, want 1 copied, %d skipped (copied before the fault)", mj, n-1)
	}
	e.assertPassingReport(t, wfName, len(seeded.Tags))
	e.assertOnTarget(t, seeded.Tags)

	// A succeeded shard run again from the UI: its node's RETRY with
	// "Restart Successful" ticked (a Succeeded Workflow is retried only so).
	again := shardNode(wf, "shard", "ns-ui-a")
	if again == nil {
		t.Fatal("no shard node ns-ui-a")
	}
	before = podStarts(wf)
	e.uiRetryNode(t, srv, wfName, again.ID, true)
	wf = e.waitRetried(t, ctx, wfName)
	if wf.Status.Phase != wfv1.WorkflowSucceeded {
		out, _ := e.argo(ctx, "get", wfName)
		t.Fatalf("after restarting shard ns-ui-a, workflow %s: %s (%s)\n%s", wfName, wf.Status.Phase, wf.Status.Message, out)
	}
	ranAgain(t, before, wf, "ns-ui-a")
	if m := shardNode(wf, contract.StepMirror, "ns-ui-a"); output(m, "copied") != "0" || output(m, "skipped") != fmt.Sprint(len(tagsIn(seeded.Tags, "ui-a"))) {
		t.Errorf("mirror ns-ui-a run again: copied=%q skipped=%q, want 0 and every tag skipped (on the target already)", output(m, "copied"), output(m, "skipped"))
	}
	e.assertPassingReport(t, wfName, len(seeded.Tags))
}

// hideLayer makes an image unreadable in the source registry: the
// registry forgets its repository's link to the image's own (last) layer.
// restore puts it back (once; later calls do nothing).
func (e *env) hideLayer(t *testing.T, ref string) (restore func()) {
	t.Helper()
	r, err := name.ParseReference(e.src.Host + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, e.src.RemoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	own, err := layers[len(layers)-1].Digest()
	if err != nil {
		t.Fatal(err)
	}
	repo := r.Context().RepositoryStr()
	link := filepath.Join(e.src.DataDir, "docker/registry/v2/repositories", repo, "_layers/sha256", own.Hex)
	if err := os.Rename(link, link+".hidden"); err != nil {
		t.Fatal(err)
	}
	done := false
	return func() {
		if !done {
			done = true
			if err := os.Rename(link+".hidden", link); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// uiRetryNode sends the request the Argo UI (v3.7.3) sends when a user
// selects a node of a finished Workflow and clicks RETRY NODE, then Retry
// in the panel it opens: PUT api/v1/workflows/NS/NAME/retry with the
// panel's RetryOpts as JSON, the node named by the field selector
// "id=NODE" (ui/src/workflows/components/retry-workflow-node-panel.tsx,
// ui/src/shared/services/workflows-service.ts). restartSuccessful is the
// panel's "Restart Successful" checkbox; "Override Parameters" unticked
// sends no parameters. The answer is the Workflow, Running again.
func (e *env) uiRetryNode(t *testing.T, srv *cluster.ArgoServer, wfName, nodeID string, restartSuccessful bool) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"parameters":        []string{},
		"restartSuccessful": restartSuccessful,
		"nodeFieldSelector": "id=" + nodeID,
	})
	url := fmt.Sprintf("%s/api/v1/workflows/%s/%s/retry", srv.URL, namespace, wfName)
	code, resp := argoAPI(t, http.MethodPut, url, body)
	t.Logf("PUT %s %s -> %d", strings.TrimPrefix(url, srv.URL), body, code)
	if code != http.StatusOK {
		t.Fatalf("the UI's retry of node %s: %d %s", nodeID, code, resp)
	}
	var wf wfv1.Workflow
	if err := json.Unmarshal(resp, &wf); err != nil || wf.Name != wfName || wf.Status.Phase != wfv1.WorkflowRunning {
		t.Fatalf("the UI's retry answered %s %s (%v), want the Workflow %s Running", wf.Name, wf.Status.Phase, err, wfName)
	}
}

// argoAPI sends a request to the Argo Server as the UI's requests do (no
// token: --auth-mode=server) and returns the status and the body.
func argoAPI(t *testing.T, method, url string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// waitRetried waits for a retried Workflow to run and end again.
func (e *env) waitRetried(t *testing.T, ctx context.Context, wfName string) *wfv1.Workflow {
	t.Helper()
	e.waitFor(t, ctx, wfName, "running again", func(wf *wfv1.Workflow) bool { return !wf.Status.Phase.Completed() })
	return e.waitWorkflow(t, ctx, wfName, wfTimeout)
}

// podStarts are the start times of a Workflow's pod nodes, by node ID (a
// node's ID is a hash of its name: a node run again keeps it).
func podStarts(wf *wfv1.Workflow) map[string]time.Time {
	out := map[string]time.Time{}
	for id, n := range wf.Status.Nodes {
		if n.Type == wfv1.NodeTypePod {
			out[id] = n.StartedAt.Time
		}
	}
	return out
}

// ranAgain checks that exactly the pods of shard (mirror, backfill,
// verify) and the report ran again since before: every other pod node is
// the one that ran before, started when it did.
func ranAgain(t *testing.T, before map[string]time.Time, wf *wfv1.Workflow, shard string) {
	t.Helper()
	var again, kept []string
	for id, n := range wf.Status.Nodes {
		if n.Type != wfv1.NodeTypePod {
			continue
		}
		what := n.TemplateName
		if s := inputParam(&n, "shard"); s != "" {
			what += " " + s
		}
		if start, ok := before[id]; ok && start.Equal(n.StartedAt.Time) {
			kept = append(kept, what)
			continue
		}
		again = append(again, what)
		if n.Phase != wfv1.NodeSucceeded {
			t.Errorf("%s ran again: %s (%s)", what, n.Phase, n.Message)
		}
	}
	slices.Sort(again)
	slices.Sort(kept)
	want := []string{contract.StepBackfill + " " + shard, contract.StepMirror + " " + shard, "report", "verify-shard " + shard}
	if !slices.Equal(again, want) {
		t.Errorf("pods run again: %v, want only %v", again, want)
	}
	for _, w := range []string{contract.StepExport, contract.StepMirror + " ns-ui-c"} {
		if !slices.Contains(kept, w) {
			t.Errorf("%s ran again, or is gone; kept: %v", w, kept)
		}
	}
	t.Logf("pods run again: %v; kept as they ran: %v", again, kept)
}

func inputParam(n *wfv1.NodeStatus, param string) string {
	if n.Inputs == nil {
		return ""
	}
	for _, p := range n.Inputs.Parameters {
		if p.Name == param && p.Value != nil {
			return p.Value.String()
		}
	}
	return ""
}

// assertPassingReport reads the run's report.json from the artifact
// repository: every image, none failed, verified.
func (e *env) assertPassingReport(t *testing.T, wfName string, total int) {
	t.Helper()
	var rep struct {
		Total, Failed int
		Verified      bool
	}
	if err := json.Unmarshal(e.s3Get(t, wfName+"/run/"+contract.ReportJSON), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Total != total || rep.Failed != 0 || !rep.Verified {
		t.Errorf("report.json of %s: %+v, want %d images, none failed, verified", wfName, rep, total)
	}
}

//go:build e2e

package argoe2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/approval"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/notify"
	"github.com/regmigrate/regmigrate/steps/report"
	"github.com/regmigrate/regmigrate/steps/switchmode"
	"github.com/regmigrate/regmigrate/tests/cluster"
	"github.com/regmigrate/regmigrate/tests/regtest"
	"github.com/regmigrate/regmigrate/workflows"
)

// scenarioWatch is scenario 7, a migration watched and approved as a
// platform team would (issue 13, points 4-6): a webhook receiver on the
// node's address (where the pods reach the registries) behind a URL kept
// in a Secret; a migration that succeeds and one with a broken shard, each
// posting its summary from the exit handler (regmigrate's JSON for the
// one, Slack's message for the other), their figures read back from the
// real controller's /metrics equal to the runs' own counts; and a cutover
// whose approval is answered "reject" as the UI's Resume does it (the
// node's output parameters set, then resumed by node field selector):
// the Workflow ends Failed, the decision and its author are in the
// Workflow and in the audit bundle, and nothing in the cluster changed.
func scenarioWatch(t *testing.T, e *env) {
	ctx := context.Background()
	hook := startWebhook(t)
	const secret = "regmigrate-webhook"
	if out, err := e.node.Kubectl(ctx, "-n", namespace, "create", "secret", "generic", secret, "--from-literal=url="+hook.url); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	const ui = "https://argo.e2e.example"
	notifySpec := func(format string) string {
		return fmt.Sprintf("argo:\n  notify:\n    webhookSecret: {name: %s, key: url}\n    format: %s\n    uiURL: %s\n", secret, format, ui)
	}

	// A migration that succeeds, notified in regmigrate's JSON.
	namespaces := []string{"watch-a", "watch-b"}
	seeded := e.seed(t, regtest.Corpus{Namespaces: namespaces, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 8 << 10})
	const okMig = "e2e-watch"
	okName := e.submit(t, ctx, e.migrationSpecWith(t, okMig, e.src.Host, notifySpec(notify.FormatJSON), namespaces...))
	okWF := e.waitWorkflow(t, ctx, okName, wfTimeout)
	finished = append(finished, okName)
	if okWF.Status.Phase != wfv1.WorkflowSucceeded {
		out, _ := e.argo(ctx, "get", okName)
		t.Fatalf("%s: %s (%s)\n%s", okName, okWF.Status.Phase, okWF.Status.Message, out)
	}
	e.assertOnTarget(t, seeded.Tags)
	var okRep report.Report
	if err := json.Unmarshal(e.s3Get(t, okName+"/run/"+contract.ReportJSON), &okRep); err != nil {
		t.Fatal(err)
	}
	if okRep.Copied != len(seeded.Tags) || okRep.Bytes == 0 {
		t.Fatalf("report of %s: %d copied, %d bytes; want the %d seeded tags copied", okName, okRep.Copied, okRep.Bytes, len(seeded.Tags))
	}

	// A migration with a broken shard (the source lost a layer of one
	// image), notified in Slack's format.
	failNS := []string{"watch-c", "watch-d"}
	failSeeded := e.seed(t, regtest.Corpus{Namespaces: failNS, ReposPerNS: 1, TagsPerRepo: 2, LayerSize: 8 << 10})
	restore := e.hideOwnLayer(t, "watch-d/app0:v1")
	const failMig = "e2e-watch-fail"
	failName := e.submit(t, ctx, e.migrationSpecWith(t, failMig, e.src.Host, notifySpec(notify.FormatSlack), failNS...))
	failWF := e.waitWorkflow(t, ctx, failName, wfTimeout)
	finished = append(finished, failName)
	restore()
	if failWF.Status.Phase != wfv1.WorkflowFailed {
		t.Fatalf("%s: %s, want Failed (a broken shard)", failName, failWF.Status.Phase)
	}

	// What the webhook received: one post per Workflow, after it ended.
	okPost := hook.waitFor(t, okName)
	var got notify.Summary
	if err := json.Unmarshal(okPost.body, &got); err != nil {
		t.Fatalf("the JSON notification of %s: %v\n%s", okName, err, okPost.body)
	}
	if got.Migration != okMig || got.Workflow != okName || got.Namespace != namespace || got.Status != "Succeeded" || !got.HasReport ||
		got.Total != okRep.Total || got.Copied != okRep.Copied || got.Skipped != okRep.Skipped || got.Failed != 0 || got.Bytes != okRep.Bytes ||
		len(got.FailedShards) != 0 || len(got.FailedNodes) != 0 ||
		got.WorkflowURL != ui+"/workflows/"+namespace+"/"+okName || got.Report != "artifact repository, key "+okName+"/run/report.html" {
		t.Errorf("the notification of %s:\n%+v\nwant Succeeded with the report's counts %+v, its UI link and report", okName, got, okRep)
	}
	if ct := okPost.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("notification Content-Type %q", ct)
	}
	failPost := hook.waitFor(t, failName)
	var slack struct {
		Text   string
		Blocks []struct {
			Type string
			Text struct{ Type, Text string }
		}
	}
	if err := json.Unmarshal(failPost.body, &slack); err != nil {
		t.Fatalf("the Slack notification of %s: %v\n%s", failName, err, failPost.body)
	}
	for _, w := range []string{
		"❌ regmigrate " + failMig + ": <" + ui + "/workflows/" + namespace + "/" + failName + "|" + failName + "> Failed",
		fmt.Sprintf("%d images: %d copied, 0 skipped, 1 failed", len(failSeeded.Tags), len(failSeeded.Tags)-1),
		"failed shards: ns-watch-d\n", "failed steps: ", "mirror(0): main: Error (exit code 1)", "report: artifact repository, key " + failName + "/run/report.html",
	} {
		if !strings.Contains(slack.Text, w) {
			t.Errorf("the Slack notification of %s lacks %q:\n%s", failName, w, slack.Text)
		}
	}
	if len(slack.Blocks) != 1 || slack.Blocks[0].Type != "section" || slack.Blocks[0].Text.Type != "mrkdwn" || slack.Blocks[0].Text.Text != slack.Text {
		t.Errorf("the Slack notification's blocks: %+v", slack.Blocks)
	}
	t.Logf("the Slack notification of %s:\n%s", failName, slack.Text)
	for _, w := range []*wfv1.Workflow{okWF, failWF} {
		if n := nodeOf(w, "notify"); n == nil || n.Phase != wfv1.NodeSucceeded {
			t.Errorf("%s: the exit handler's node %+v, want Succeeded", w.Name, n)
		}
	}

	// The metrics, scraped from the controller as Prometheus would.
	m := scrape(t)
	want := func(metric string, value float64, labels ...string) {
		t.Helper()
		if got, ok := m.get(workflows.MetricPrefix+metric, labels...); !ok || got != value {
			t.Errorf("%s%v = %v (present %v), want %v", metric, labels, got, ok, value)
		}
	}
	for _, run := range []struct {
		mig        string
		wf         *wfv1.Workflow
		namespaces []string
		rep        report.Report
	}{{okMig, okWF, namespaces, okRep}, {failMig, failWF, failNS, report.Report{}}} {
		if run.mig == failMig {
			if err := json.Unmarshal(e.s3Get(t, failName+"/run/"+contract.ReportJSON), &run.rep); err != nil {
				t.Fatal(err)
			}
		}
		var bytes float64
		failedShards := 0
		for _, ns := range run.namespaces {
			shard := "ns-" + ns
			mirror := shardNode(run.wf, "mirror-shard", shard)
			for _, s := range []string{"copied", "skipped", "failed"} {
				v, err := strconv.Atoi(output(mirror, s))
				if err != nil {
					t.Fatalf("%s mirror %s output %s: %v", run.mig, shard, s, err)
				}
				want(workflows.MetricShardImages, float64(v), "migration", run.mig, "shard", shard, "status", s)
			}
			b, _ := strconv.ParseFloat(output(mirror, "bytes"), 64)
			bytes += b
			want(workflows.MetricShardBytes, b, "migration", run.mig, "shard", shard)
			// A shard whose mirror failed is not verified: no verify metric.
			if v := shardNode(run.wf, "verify-shard", shard); v != nil {
				vf, _ := strconv.Atoi(output(v, "failed"))
				want(workflows.MetricShardVerifyFailed, float64(vf), "migration", run.mig, "shard", shard)
			} else if _, ok := m.get(workflows.MetricPrefix+workflows.MetricShardVerifyFailed, "migration", run.mig, "shard", shard); ok {
				t.Errorf("%s %s: a verify metric for a shard never verified", run.mig, shard)
			}
			if d, ok := m.get(workflows.MetricPrefix+workflows.MetricStepDuration, "migration", run.mig, "shard", shard, "step", "mirror-shard"); !ok || d <= 0 {
				t.Errorf("%s: the duration of mirror %s: %v (present %v)", run.mig, shard, d, ok)
			}
			if output(mirror, "failed") != "0" {
				failedShards++
			}
		}
		r := run.rep
		want(workflows.MetricMigrationImages, float64(r.Total), "migration", run.mig, "status", "total")
		want(workflows.MetricMigrationImages, float64(r.Copied), "migration", run.mig, "status", "copied")
		want(workflows.MetricMigrationImages, float64(r.Skipped), "migration", run.mig, "status", "skipped")
		want(workflows.MetricMigrationImages, float64(r.Failed), "migration", run.mig, "status", "failed")
		want(workflows.MetricMigrationBytes, float64(r.Bytes), "migration", run.mig)
		if float64(r.Bytes) != bytes {
			t.Errorf("%s: the report's bytes %d, the shards' %v", run.mig, r.Bytes, bytes)
		}
		want(workflows.MetricMigrationVerifyFail, float64(r.VerifyFailed), "migration", run.mig)
		want(workflows.MetricMigrationFailShards, float64(failedShards), "migration", run.mig)
		want(workflows.MetricMigrationShards, float64(len(run.namespaces)), "migration", run.mig)
		want(workflows.MetricMigrationShardsDone, float64(len(run.namespaces)), "migration", run.mig)
		if d, ok := m.get(workflows.MetricPrefix+workflows.MetricStepDuration, "migration", run.mig, "shard", "", "step", "report"); !ok || d <= 0 {
			t.Errorf("%s: the report's duration: %v (present %v)", run.mig, d, ok)
		}
	}
	if okRep.Copied != len(seeded.Tags) {
		t.Errorf("copied %d of %d", okRep.Copied, len(seeded.Tags))
	}
	t.Logf("regmigrate's metrics on the controller's /metrics:\n%s", strings.Join(m.lines("argo_workflows_regmigrate_"), "\n"))

	// The cutover of the first migration, rejected as the UI's Resume
	// does it: nothing in the cluster changes.
	before, beforeCM := e.modeRecord(t, ctx), e.allImages(t, ctx)
	cut := e.submit(t, ctx, e.migrationSpecWith(t, okMig, e.src.Host, notifySpec(notify.FormatJSON)+"  approval: {timeout: 30m}\n", namespaces...), "--cutover")
	e.waitNode(t, ctx, cut, "approve", wfv1.NodeRunning, wfTimeout)
	const approver = "Jane Doe (platform team)"
	e.answerApproval(t, ctx, cut, approval.Reject, approver)
	cutWF := e.waitWorkflow(t, ctx, cut, wfTimeout)
	finished = append(finished, cut)
	if cutWF.Status.Phase != wfv1.WorkflowFailed {
		out, _ := e.argo(ctx, "get", cut)
		t.Fatalf("rejected cutover %s: %s, want Failed\n%s", cut, cutWF.Status.Phase, out)
	}
	ap := nodeOf(cutWF, "approve")
	if ap == nil {
		for _, n := range cutWF.Status.Nodes {
			if n.TemplateName == "approve" {
				n := n
				ap = &n
			}
		}
	}
	if output(ap, workflows.ParamDecision) != approval.Reject || output(ap, workflows.ParamApprover) != approver {
		t.Errorf("the approval node's outputs: decision %q approver %q, want %q by %q", output(ap, workflows.ParamDecision), output(ap, workflows.ParamApprover), approval.Reject, approver)
	}
	if rec := nodeOf(cutWF, "record-approval"); rec == nil || rec.Phase != wfv1.NodeFailed || !strings.Contains(rec.Message, "exit code 1") {
		t.Errorf("record-approval: %+v, want Failed", rec)
	}
	for _, n := range cutWF.Status.Nodes {
		if n.TemplateName == contract.StepSwitchMode && n.Phase != wfv1.NodeOmitted && n.Phase != wfv1.NodeSkipped {
			t.Errorf("switch-mode ran after a rejection: %s", n.Phase)
		}
	}
	if got := e.modeRecord(t, ctx); got != before {
		t.Errorf("the mode record changed after a rejected cutover: %+v, was %+v", got, before)
	}
	if got := e.allImages(t, ctx); got != beforeCM {
		t.Errorf("workload images changed after a rejected cutover:\n%s\nwere\n%s", got, beforeCM)
	}
	keys := e.s3List(t, cut+"/run/")
	if slices.Contains(keys, cut+"/run/"+switchmode.ResultFile) {
		t.Errorf("a rejected cutover wrote %s", switchmode.ResultFile)
	}
	var rec approval.Record
	if err := json.Unmarshal(e.s3Get(t, cut+"/run/"+contract.ApprovalFile), &rec); err != nil {
		t.Fatalf("approval.json of %s: %v", cut, err)
	}
	if rec.Decision != approval.Reject || rec.Approver != approver || rec.Workflow != cut {
		t.Errorf("approval.json: %+v", rec)
	}
	if html := string(e.s3Get(t, cut+"/run/"+contract.ReportHTML)); !strings.Contains(html, "rejected</span> by "+approver) {
		t.Errorf("report.html of %s does not show the rejection by %s", cut, approver)
	}
	var cutSummary notify.Summary
	if err := json.Unmarshal(hook.waitFor(t, cut).body, &cutSummary); err != nil {
		t.Fatal(err)
	}
	if cutSummary.Status != "Failed" || cutSummary.Approval == nil || cutSummary.Approval.Decision != approval.Reject || cutSummary.Approval.Approver != approver ||
		!slices.ContainsFunc(cutSummary.FailedNodes, func(s string) bool { return strings.HasPrefix(s, "record-approval") }) {
		t.Errorf("the notification of the rejected cutover: %+v", cutSummary)
	}

	// A cutover nobody answers: past its approval timeout it takes the
	// default decision, reject, by nobody; nothing switched either.
	late := e.submit(t, ctx, e.migrationSpecWith(t, okMig, e.src.Host, notifySpec(notify.FormatJSON)+"  approval: {timeout: 20s}\n", namespaces...), "--cutover")
	lateWF := e.waitWorkflow(t, ctx, late, wfTimeout)
	finished = append(finished, late)
	if lateWF.Status.Phase != wfv1.WorkflowFailed {
		t.Errorf("cutover %s past its approval timeout: %s, want Failed", late, lateWF.Status.Phase)
	}
	var lateRec approval.Record
	if err := json.Unmarshal(e.s3Get(t, late+"/run/"+contract.ApprovalFile), &lateRec); err != nil || lateRec.Decision != approval.Reject || lateRec.Approver != "" {
		t.Errorf("approval.json of %s: %+v %v, want rejected by nobody", late, lateRec, err)
	}
	if got := e.modeRecord(t, ctx); got != before {
		t.Errorf("the mode record changed after a timed-out cutover: %+v, was %+v", got, before)
	}
	if got := e.allImages(t, ctx); got != beforeCM {
		t.Errorf("workload images changed after a timed-out cutover:\n%s\nwere\n%s", got, beforeCM)
	}
	if slices.Contains(e.s3List(t, late+"/run/"), late+"/run/"+switchmode.ResultFile) {
		t.Errorf("a timed-out cutover wrote %s", switchmode.ResultFile)
	}

	// The webhook's URL is a secret: it is in no Workflow, no pod log, no
	// controller log.
	token := hook.token
	for _, w := range []string{okName, failName, cut, late} {
		out, err := e.node.Kubectl(ctx, "-n", namespace, "get", "workflow", w, "-o", "yaml")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, token) {
			t.Errorf("Workflow %s holds the webhook URL", w)
		}
		if logs, _ := e.argo(ctx, "logs", w); strings.Contains(logs, token) {
			t.Errorf("the logs of %s hold the webhook URL", w)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(e.node.Dir, "workflow-controller.log")); strings.Contains(string(b), token) {
		t.Error("the controller's log holds the webhook URL")
	}
}

// answerApproval answers the cutover's approval as the UI's Resume form
// does: the suspended node's output parameters set (PUT .../set, `argo
// node set`), then the node resumed (PUT .../resume, `argo resume`), both
// selecting the node by its id.
func (e *env) answerApproval(t *testing.T, ctx context.Context, wfName, decision, approver string) {
	t.Helper()
	wf := e.workflow(t, ctx, wfName)
	id := ""
	for _, n := range wf.Status.Nodes {
		if n.TemplateName == "approve" && n.Type == wfv1.NodeTypeSuspend {
			id = n.ID
		}
	}
	if id == "" {
		t.Fatalf("%s has no approval node", wfName)
	}
	sel := "id=" + id
	if out, err := e.argo(ctx, "node", "set", wfName, "--node-field-selector", sel,
		"--output-parameter", workflows.ParamDecision+"="+decision, "--output-parameter", workflows.ParamApprover+"="+approver); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := e.argo(ctx, "resume", wfName, "--node-field-selector", sel); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// allImages are the images of every workload in the cluster, a line per
// workload with its images sorted (kubectl's {..image} walks maps in no
// fixed order: a Deployment with an init container printed its images in
// either order, and scenario 7 failed after scenario 4 left one).
func (e *env) allImages(t *testing.T, ctx context.Context) string {
	t.Helper()
	out, err := e.node.Kubectl(ctx, "get", "deployments,statefulsets,daemonsets,cronjobs", "-A", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Items []struct {
			Kind     string
			Metadata struct{ Namespace, Name string }
			Spec     any
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	var images func(v any) []string
	images = func(v any) (found []string) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "image" {
					found = append(found, s)
				} else {
					found = append(found, images(x)...)
				}
			}
		case []any:
			for _, x := range v {
				found = append(found, images(x)...)
			}
		}
		return found
	}
	var lines []string
	for _, it := range list.Items {
		im := images(it.Spec)
		slices.Sort(im)
		lines = append(lines, fmt.Sprintf("%s %s/%s: %s", it.Kind, it.Metadata.Namespace, it.Metadata.Name, strings.Join(im, " ")))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// hideOwnLayer makes the source lose its link to the last layer of an
// image (the image fails to copy); the returned func restores it.
func (e *env) hideOwnLayer(t *testing.T, image string) func() {
	t.Helper()
	ref, _ := name.ParseReference(e.src.Host + "/" + image)
	img, err := remote.Image(ref, e.src.RemoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	own, _ := layers[len(layers)-1].Digest()
	repo, _, _ := strings.Cut(image, ":")
	link := filepath.Join(e.src.DataDir, "docker/registry/v2/repositories", repo, "_layers/sha256", own.Hex)
	if err := os.Rename(link, link+".hidden"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	restore := func() {
		once.Do(func() {
			if err := os.Rename(link+".hidden", link); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(restore)
	return restore
}

// webhook is a receiver of notifications on the node's address, where the
// pods reach it (as they reach the registries).
type webhook struct {
	url, token string
	mu         sync.Mutex
	posts      []post
}

type post struct {
	header http.Header
	body   []byte
}

func startWebhook(t *testing.T) *webhook {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(cluster.NodeIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	h := &webhook{token: fmt.Sprintf("T0KEN%dSECRET", time.Now().UnixNano())}
	h.url = "http://" + l.Addr().String() + "/services/" + h.token
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/services/"+h.token {
			http.Error(w, "no such hook", http.StatusNotFound)
			return
		}
		h.mu.Lock()
		h.posts = append(h.posts, post{header: r.Header.Clone(), body: b})
		h.mu.Unlock()
		io.WriteString(w, "ok")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return h
}

// waitFor returns the one post that names the Workflow, waiting for it
// (the exit handler runs after the Workflow's nodes end) at most two
// minutes; it fails on none or several.
func (h *webhook) waitFor(t *testing.T, wfName string) post {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		h.mu.Lock()
		var found []post
		for _, p := range h.posts {
			// JSON: "workflow":"NAME"; Slack: <UI/workflows/NS/NAME|NAME>
			if strings.Contains(string(p.body), "\""+wfName+"\"") || strings.Contains(string(p.body), "/"+wfName+"|") {
				found = append(found, p)
			}
		}
		h.mu.Unlock()
		if len(found) == 1 {
			return found[0]
		}
		if len(found) > 1 || time.Now().After(deadline) {
			t.Fatalf("the webhook received %d posts about %s, want 1", len(found), wfName)
		}
		time.Sleep(time.Second)
	}
}

// metrics are a scrape of Prometheus' text format: series to value.
type metrics map[string]float64

// scrape reads the controller's /metrics.
func scrape(t *testing.T) metrics {
	t.Helper()
	resp, err := http.Get(cluster.MetricsURL)
	if err != nil {
		t.Fatalf("scraping the controller: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", cluster.MetricsURL, resp.Status)
	}
	m := metrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m
}

// get is the value of a series: its name and every label (name, value
// pairs, in any order; the controller writes them sorted).
func (m metrics) get(metric string, labels ...string) (float64, bool) {
	type kv struct{ k, v string }
	var ls []kv
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, kv{labels[i], labels[i+1]})
	}
	slices.SortFunc(ls, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	var parts []string
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s=%q", l.k, l.v))
	}
	v, ok := m[metric+"{"+strings.Join(parts, ",")+"}"]
	return v, ok
}

// lines are the series whose names start with prefix, sorted.
func (m metrics) lines(prefix string) []string {
	var out []string
	for s, v := range m {
		if strings.HasPrefix(s, prefix) {
			out = append(out, fmt.Sprintf("%s %v", s, v))
		}
	}
	slices.Sort(out)
	return out
}

//go:build e2e

package argoe2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/regtest"
	"github.com/regmigrate/regmigrate/workflows"
)

// Workflows that run longer than this are stuck.
const wfTimeout = 10 * time.Minute

// names of the scenarios' Workflows, for the archive scenario.
var finished []string

// Secrets `submit --create-secret` created, owned by their Workflows: the
// archive scenario sees them go when it deletes the Workflows.
var createdSecrets []string

// repositories returns the repositories ("ns/repo") of seeded tags
// ("ns/repo:tag"), sorted.
func repositories(tags map[string]string) []string {
	seen := map[string]bool{}
	var repos []string
	for ref := range tags {
		repo, _, _ := strings.Cut(ref, ":")
		if !seen[repo] {
			seen[repo] = true
			repos = append(repos, repo)
		}
	}
	slices.Sort(repos)
	return repos
}

// shardNode returns the node of a template run for a shard (the shard's
// DAG: template "shard"; its steps' pods: "mirror-shard", ...), or nil.
// Retry nodes (the parents of a step's attempts) are left out.
func shardNode(wf *wfv1.Workflow, template, shard string) *wfv1.NodeStatus {
	for _, n := range wf.Status.Nodes {
		if n.TemplateName != template || n.Inputs == nil || n.Type == wfv1.NodeTypeRetry {
			continue
		}
		for _, p := range n.Inputs.Parameters {
			if p.Name == "shard" && p.Value != nil && p.Value.String() == shard {
				n := n
				return &n
			}
		}
	}
	return nil
}

func output(n *wfv1.NodeStatus, param string) string {
	if n == nil || n.Outputs == nil {
		return ""
	}
	for _, p := range n.Outputs.Parameters {
		if p.Name == param && p.Value != nil {
			return p.Value.String()
		}
	}
	return ""
}

// tagsIn are the seeded tags of a namespace.
func tagsIn(tags map[string]string, ns string) map[string]string {
	out := map[string]string{}
	for ref, d := range tags {
		if strings.HasPrefix(ref, ns+"/") {
			out[ref] = d
		}
	}
	return out
}

type mirrorJSON struct{ Total, Copied, Skipped, Failed int }

// scenarioMigration is issue 6's scenario 1, as issue 11 has a user do
// it: `regmigrate submit` of the migration Workflow from a spec whose image
// lists are files on the submitting machine (nothing uploaded by hand) and
// whose credentials are an image-migrator auth.json (the source's password
// from the submitter's environment) that `submit --create-secret` turns
// into the Workflow's Secret; run by the real controller on real pods.
func scenarioMigration(t *testing.T, e *env) {
	ctx := context.Background()
	namespaces := []string{"team-a", "team-b", "team-c"}
	seeded := e.seed(t, regtest.Corpus{Namespaces: namespaces, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 4 << 10,
		MultiArch: true, Signature: true, HelmChart: true})
	// Two lists of one file name in two folders: every repository of the
	// three namespaces, one `ns/repo` line each (every tag, as the catalog).
	lists := map[string][]string{}
	for _, repo := range repositories(seeded.Tags) {
		file := "lists/images.txt"
		if strings.HasPrefix(repo, "team-c/") {
			file = "more/images.txt"
		}
		lists[file] = append(lists[file], repo)
	}
	spec := e.listsSpec(t, "e2e-migrate", lists)
	memory := watchPodMemory()
	name := e.submitEnv(t, ctx, map[string]string{sourcePasswordVar: e.src.Password}, spec, "--create-secret")
	wf := e.waitWorkflow(t, ctx, name, wfTimeout)
	finished = append(finished, name)
	// What the step pods used, seen from the node (the default resources).
	cgroupPeaks, emissaryPeaks, stepPeaks := memory.Stop()
	logPodMemory(t, cgroupPeaks, emissaryPeaks, stepPeaks, workflows.DefaultResources.Requests.Memory().Value())
	if wf.Status.Phase != wfv1.WorkflowSucceeded {
		out, _ := e.argo(ctx, "get", name)
		t.Fatalf("workflow %s: %s (%s)\n%s", name, wf.Status.Phase, wf.Status.Message, out)
	}

	// The credentials: one Secret, made by submit, named in the Workflow
	// and owned by it; no password in the Workflow.
	out, err := e.node.Kubectl(ctx, "-n", namespace, "get", "secrets", "-l", "regmigrate.io/migration=e2e-migrate", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var secrets struct {
		Items []struct {
			Metadata struct {
				Name            string
				OwnerReferences []struct{ APIVersion, Kind, Name, UID string }
			}
			Type string
		}
	}
	if err := json.Unmarshal([]byte(out), &secrets); err != nil {
		t.Fatalf("kubectl get secrets: not the JSON of a list: %v", err)
	}
	if len(secrets.Items) != 1 {
		t.Fatalf("%d Secrets labelled regmigrate.io/migration=e2e-migrate, want the one submit --create-secret made", len(secrets.Items))
	}
	secret := secrets.Items[0]
	createdSecrets = append(createdSecrets, secret.Metadata.Name)
	if secret.Type != "kubernetes.io/dockerconfigjson" {
		t.Errorf("Secret %s is of type %q", secret.Metadata.Name, secret.Type)
	}
	if o := secret.Metadata.OwnerReferences; len(o) != 1 || o[0].Kind != "Workflow" || o[0].Name != name || o[0].UID != string(wf.UID) {
		t.Errorf("Secret %s is owned by %+v, want the Workflow %s (%s)", secret.Metadata.Name, o, name, wf.UID)
	}
	mounted := slices.ContainsFunc(wf.Spec.Volumes, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == secret.Metadata.Name
	})
	if !mounted {
		t.Errorf("the Workflow does not mount Secret %s: %+v", secret.Metadata.Name, wf.Spec.Volumes)
	}
	if b, _ := json.Marshal(wf); strings.Contains(string(b), e.src.Password) || strings.Contains(string(b), e.dst.Password) {
		t.Error("a registry password is in the Workflow")
	}

	// Every image on the target with its source digest.
	e.assertOnTarget(t, seeded.Tags)

	// podGC OnPodSuccess: the pods of a Workflow that succeeded go as
	// their nodes succeed (their logs are in the artifact repository).
	e.waitPods(t, ctx, name, "every pod deleted (podGC: OnPodSuccess)", func(pods []corev1.Pod) bool { return len(pods) == 0 })
	logs := slices.DeleteFunc(e.s3List(t, name+"/"), func(k string) bool { return !strings.HasSuffix(k, "/main.log") })
	if len(logs) == 0 {
		t.Errorf("no pod log of %s in S3 (archiveLogs) now that its pods are deleted", name)
	}

	// ImageStreamTags, as `kubectl get imagestreamtags` shows them.
	for _, ns := range namespaces {
		out, err := e.node.Kubectl(ctx, "-n", ns, "get", "imagestreamtags."+imageAPI, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Items []struct {
				Metadata struct{ Name string }
				Image    struct {
					Metadata             struct{ Name string }
					DockerImageReference string
				}
			}
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, it := range list.Items {
			got[it.Metadata.Name] = it.Image.Metadata.Name
			if !strings.HasPrefix(it.Image.DockerImageReference, e.dst.Host+"/"+ns+"/") {
				t.Errorf("istag %s/%s references %s, want the target registry", ns, it.Metadata.Name, it.Image.DockerImageReference)
			}
		}
		for ref, digest := range tagsIn(seeded.Tags, ns) {
			repo, tag, _ := strings.Cut(ref, ":")
			if strings.Count(repo, "/") != 1 { // ns/a/b cannot be an ImageStream
				continue
			}
			if strings.HasPrefix(tag, "sha256-") { // a signature travels with its image; it is no image of the scope
				continue
			}
			istag := repo[len(ns)+1:] + ":" + tag
			if got[istag] != digest {
				t.Errorf("imagestreamtag %s/%s -> %q, want %s", ns, istag, got[istag], digest)
			}
		}
	}

	// Shard nodes named by namespace, their counts as outputs, the audit
	// bundle in S3 under the run directory's layout.
	run := name + "/run/"
	keys := e.s3List(t, run)
	for _, f := range []string{contract.ImagesFile, contract.DigestsFile, contract.ShardsFile, contract.ReportJSON, contract.ReportMD, contract.ReportHTML, contract.RunFile, contract.HistoryFile} {
		if !slices.Contains(keys, run+f) {
			t.Errorf("S3 lacks %s%s (have %v)", run, f, keys)
		}
	}
	copied := 0
	for i, ns := range namespaces {
		shard := "ns-" + ns
		node := shardNode(wf, "shard", shard)
		if node == nil || node.Phase != wfv1.NodeSucceeded || !strings.Contains(node.DisplayName, shard) {
			t.Errorf("shard node for %s: %+v, want a Succeeded node named after the shard", shard, node)
		} else if node.DisplayName != "shard("+strconv.Itoa(i)+":"+shard+")" {
			t.Logf("shard node %q", node.DisplayName)
		}
		dir := run + contract.ShardsDir + "/" + shard + "/"
		for _, f := range []string{contract.ShardImages, contract.ShardMapping, contract.MirrorLog, contract.MirrorResult, contract.BackfillJSON, contract.VerifyResult} {
			if !slices.Contains(keys, dir+f) {
				t.Errorf("S3 lacks %s%s", dir, f)
			}
		}
		if !slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, dir+contract.MetadataDir+"/") }) {
			t.Errorf("S3 lacks %s%s/", dir, contract.MetadataDir)
		}
		want := len(tagsIn(seeded.Tags, ns))
		m := shardNode(wf, "mirror-shard", shard)
		if c := output(m, "copied"); c != strconv.Itoa(want) || output(m, "failed") != "0" {
			t.Errorf("mirror %s outputs copied=%q failed=%q, want %d and 0", shard, c, output(m, "failed"), want)
		}
		if b := shardNode(wf, "backfill-shard", shard); output(b, "failed") != "0" {
			t.Errorf("backfill %s outputs failed=%q applied=%q", shard, output(b, "failed"), output(b, "applied"))
		}
		copied += want
		if lines := strings.Count(string(e.s3Get(t, dir+contract.MirrorLog)), "Copied "); lines != want {
			t.Errorf("%smirror.log has %d Copied lines, want %d", dir, lines, want)
		}
	}
	var rep struct {
		Total, Copied, Skipped, Failed                   int
		Verified                                         bool
		Backfill                                         string
		BackfillApplied, BackfillSkipped, BackfillFailed int
		ImageAPIPassed, ImageAPIFailed                   int
	}
	if err := json.Unmarshal(e.s3Get(t, run+contract.ReportJSON), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Total != len(seeded.Tags) || rep.Copied != len(seeded.Tags) || rep.Failed != 0 || !rep.Verified || copied != len(seeded.Tags) {
		t.Errorf("report.json in S3: %+v; shards copied %d; want %d copied and verified", rep, copied, len(seeded.Tags))
	}
	// The aggregate carries the backfill and the verify pods' ImageStreamTag
	// checks, as the local run's report does.
	if !strings.HasPrefix(rep.Backfill, imageAPI+"/v1") || rep.BackfillFailed != 0 || rep.BackfillApplied+rep.BackfillSkipped != rep.Total {
		t.Errorf("report.json in S3: backfill %q %d applied %d skipped %d failed; want every tag through %s", rep.Backfill, rep.BackfillApplied, rep.BackfillSkipped, rep.BackfillFailed, imageAPI)
	}
	if rep.ImageAPIPassed != rep.Total || rep.ImageAPIFailed != 0 {
		t.Errorf("report.json in S3: ImageStreamTag checks %d passed %d failed; want all %d passed", rep.ImageAPIPassed, rep.ImageAPIFailed, rep.Total)
	}

	// What this Workflow says of one with the generator's maximum of shards.
	var shardIDs []string
	for _, ns := range namespaces {
		shardIDs = append(shardIDs, "ns-"+ns)
	}
	assertScale(t, wf, workflows.Plan{Backfill: &workflows.Backfill{}}, shardIDs)
}

// scenarioRetry is scenario 2: one repository of one namespace unreadable
// in the source; the other shards complete, the Workflow fails naming the
// shard; the fault removed, `argo retry` with the node field selector the
// UI's node Retry sends reruns only what failed; the Workflow succeeds and
// what was copied is not copied again.
func scenarioRetry(t *testing.T, e *env) {
	ctx := context.Background()
	namespaces := []string{"shop-a", "shop-b", "shop-c"}
	seeded := e.seed(t, regtest.Corpus{Namespaces: namespaces, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 4 << 10})

	// The fault: the source forgets its link to the own layer of shop-b/app1:v1.
	broken := "shop-b/app1:v1"
	ref, _ := name.ParseReference(e.src.Host + "/" + broken)
	img, err := remote.Image(ref, e.src.RemoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	own, _ := layers[len(layers)-1].Digest()
	link := filepath.Join(e.src.DataDir, "docker/registry/v2/repositories/shop-b/app1/_layers/sha256", own.Hex)
	if err := os.Rename(link, link+".hidden"); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := os.Rename(link+".hidden", link); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()

	name := e.submit(t, ctx, e.migrationSpec(t, "e2e-retry", namespaces...))
	wf := e.waitWorkflow(t, ctx, name, wfTimeout)
	if wf.Status.Phase != wfv1.WorkflowFailed {
		t.Fatalf("workflow %s: %s, want Failed", name, wf.Status.Phase)
	}
	before := map[string]wfv1.NodeStatus{}
	for _, ns := range []string{"shop-a", "shop-c"} {
		m := shardNode(wf, "mirror-shard", "ns-"+ns)
		if s := shardNode(wf, "shard", "ns-"+ns); s == nil || s.Phase != wfv1.NodeSucceeded || m == nil {
			t.Fatalf("shard ns-%s: %+v, want Succeeded although another shard failed (failFast: false)", ns, s)
		}
		before[ns] = *m
	}
	failed := shardNode(wf, "shard", "ns-shop-b")
	if failed == nil || failed.Phase != wfv1.NodeFailed || !strings.Contains(failed.DisplayName, "ns-shop-b") {
		t.Fatalf("shard ns-shop-b: %+v, want a Failed node named after it", failed)
	}
	for _, n := range wf.Status.Nodes {
		if n.Type == wfv1.NodeTypePod && n.Phase == wfv1.NodeFailed && n.TemplateName != "report" &&
			!strings.Contains(n.Name, "ns-shop-b") {
			t.Errorf("failed node %s (%s): only shard ns-shop-b should fail", n.Name, n.Message)
		}
	}
	if m := shardNode(wf, "mirror-shard", "ns-shop-b"); output(m, "failed") != "1" {
		t.Errorf("mirror ns-shop-b outputs failed=%q copied=%q, want 1 failed", output(m, "failed"), output(m, "copied"))
	}
	// podGC OnPodSuccess: the failed shard's pod stays for its logs; the
	// succeeded ones go.
	failedNode := shardNode(wf, "mirror-shard", "ns-shop-b")
	podName := ""
	e.waitPods(t, ctx, name, "only failed pods left, the failed mirror among them", func(pods []corev1.Pod) bool {
		podName = ""
		for _, p := range pods {
			if p.Status.Phase == corev1.PodSucceeded {
				return false
			}
			if failedNode != nil && p.Annotations["workflows.argoproj.io/node-id"] == failedNode.ID {
				podName = p.Name
			}
		}
		return podName != ""
	})
	if out, err := e.node.Kubectl(ctx, "-n", namespace, "logs", podName, "-c", "main"); err != nil || !strings.Contains(out, "shop-b/app1:v1") {
		t.Errorf("kubectl logs of the failed mirror pod %s: %v\n%s", podName, err, out)
	}

	restore()
	if out, err := e.argo(ctx, "retry", name, "--node-field-selector", "inputs.parameters.shard.value=ns-shop-b"); err != nil {
		t.Fatal(err)
	} else {
		t.Log(out)
	}
	// The retry resets the Workflow to Running; wait for it to end again.
	deadline := time.Now().Add(time.Minute)
	for e.workflow(t, ctx, name).Status.Phase == wfv1.WorkflowFailed && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	wf = e.waitWorkflow(t, ctx, name, wfTimeout)
	finished = append(finished, name)
	if wf.Status.Phase != wfv1.WorkflowSucceeded {
		out, _ := e.argo(ctx, "get", name)
		t.Fatalf("after argo retry, workflow %s: %s\n%s", name, wf.Status.Phase, out)
	}
	for ns, m := range before {
		after := shardNode(wf, "mirror-shard", "ns-"+ns)
		if after == nil || after.ID != m.ID || !after.StartedAt.Equal(&m.StartedAt) {
			t.Errorf("mirror ns-%s ran again: before %s %v, after %+v", ns, m.ID, m.StartedAt, after)
		}
	}
	var mj mirrorJSON
	if err := json.Unmarshal(e.s3Get(t, name+"/run/shards/ns-shop-b/"+contract.MirrorResult), &mj); err != nil {
		t.Fatal(err)
	}
	want := len(tagsIn(seeded.Tags, "shop-b"))
	if mj.Copied != 1 || mj.Skipped != want-1 || mj.Failed != 0 {
		t.Errorf("mirror.json of ns-shop-b after the retry: %+v, want 1 copied, %d skipped (copied before the fault)", mj, want-1)
	}
	e.assertOnTarget(t, seeded.Tags)
}

// scenarioArchive is scenario 5: the finished Workflows are in the
// archive (PostgreSQL), and their artifacts stay in S3 after the Workflow
// objects are deleted.
func scenarioArchive(t *testing.T, e *env) {
	ctx := context.Background()
	if len(finished) == 0 {
		t.Fatal("no finished Workflow from the scenarios before")
	}
	archived := func() map[string]string {
		rows, err := e.node.Postgres.Query(ctx, "SELECT name, phase FROM argo_archived_workflows WHERE namespace = '"+namespace+"'")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(rows), "\n") {
			if n, p, ok := strings.Cut(l, "|"); ok {
				got[n] = p
			}
		}
		return got
	}
	deadline := time.Now().Add(time.Minute)
	for {
		got := archived()
		missing := slices.DeleteFunc(slices.Clone(finished), func(n string) bool { return got[n] == string(wfv1.WorkflowSucceeded) })
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("archive (argo_archived_workflows): %v; want %v Succeeded", got, finished)
		}
		time.Sleep(time.Second)
	}
	if out, err := e.node.Kubectl(ctx, "-n", namespace, "delete", "workflows", "--all", "--wait=true"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, _ := e.node.Kubectl(ctx, "-n", namespace, "get", "workflows", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Fatalf("workflows left: %s", out)
	}
	// The Secret submit --create-secret made went with its Workflow
	// (ownerReferences, the controller-manager's garbage collector).
	for _, secret := range createdSecrets {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			out, err := e.node.Kubectl(ctx, "-n", namespace, "get", "secret", secret, "-o", "name", "--ignore-not-found")
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(out) == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("Secret %s is still there 2 minutes after its Workflow was deleted", secret)
				break
			}
			time.Sleep(time.Second)
		}
	}
	got := archived()
	for _, n := range finished {
		if got[n] != string(wfv1.WorkflowSucceeded) {
			t.Errorf("%s: archived %q after the Workflow was deleted, want Succeeded", n, got[n])
		}
		var rep struct{ Verified bool }
		if err := json.Unmarshal(e.s3Get(t, n+"/run/"+contract.ReportJSON), &rep); err != nil || !rep.Verified {
			t.Errorf("%s/run/report.json in S3 after the Workflow was deleted: %+v %v", n, rep, err)
		}
		if keys := e.s3List(t, n+"/run/shards/"); len(keys) == 0 {
			t.Errorf("no shard artifacts of %s left in S3", n)
		}
	}
}

// scenarioCron is scenario 3: new tags pushed to the source after
// scenario 1; the delta-sync CronWorkflow, triggered now (`argo submit
// --from cronwf/...`, not waited for), copies exactly those; while that run
// is active, the schedule fires and concurrencyPolicy: Forbid holds.
func scenarioCron(t *testing.T, e *env) {
	ctx := context.Background()
	namespaces := []string{"team-a", "team-b", "team-c"} // scenario 1's, all on the target already
	fresh := map[string]string{}
	for _, ref := range []string{"team-a/app0:v9", "team-c/app1:v9"} {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := name.ParseReference(e.src.Host + "/" + ref)
		if err := remote.Write(r, img, e.src.RemoteOptions()...); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		fresh[ref] = d.String()
	}
	// Trigger well inside a minute: a run triggered in the last seconds
	// before the schedule fires can race the controller's view of active
	// runs (seen: both ran, the schedule's first), which is Argo's race, not
	// the one this scenario is about.
	if left := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)); left < 25*time.Second {
		time.Sleep(left + 2*time.Second)
	}
	cron := e.submit(t, ctx, e.migrationSpec(t, "e2e", namespaces...), "--cron", "* * * * *")
	out, err := e.argo(ctx, "submit", "--from", "cronwf/"+cron, "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimSpace(out[strings.LastIndex(out, "/")+1:])
	// Hold the triggered run active until the schedule has fired once.
	if _, err := e.argo(ctx, "suspend", name); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	next := now.Truncate(time.Minute).Add(time.Minute)
	time.Sleep(time.Until(next) + 15*time.Second)
	runs, err := e.node.Kubectl(ctx, "-n", namespace, "get", "workflows", "-l", "workflows.argoproj.io/cron-workflow="+cron, "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(runs); len(got) != 1 {
		t.Errorf("workflows of %s while one was active: %v, want only the triggered one (concurrencyPolicy: Forbid)", cron, got)
	}
	log, _ := os.ReadFile(filepath.Join(e.node.Dir, "workflow-controller.log"))
	if !strings.Contains(string(log), cron+" has 'ConcurrencyPolicy: Forbid' and has an active Workflow so it was not run") {
		t.Errorf("the controller did not say it skipped the scheduled run of %s for Forbid", cron)
	}
	if _, err := e.argo(ctx, "resume", name); err != nil {
		t.Fatal(err)
	}
	// No more scheduled runs: suspend the CronWorkflow, as before a freeze,
	// once this run has exported (a delta that starts after its
	// CronWorkflow was suspended copies nothing: scenario 4).
	e.waitNode(t, ctx, name, "export", wfv1.NodeSucceeded, wfTimeout)
	if _, err := e.argo(ctx, "cron", "suspend", cron); err != nil {
		t.Fatal(err)
	}
	wf := e.waitWorkflow(t, ctx, name, wfTimeout)
	finished = append(finished, name)
	if wf.Status.Phase != wfv1.WorkflowSucceeded {
		out, _ := e.argo(ctx, "get", name)
		t.Fatalf("delta run %s: %s\n%s", name, wf.Status.Phase, out)
	}
	copied, skipped := 0, 0
	for _, ns := range namespaces {
		m := shardNode(wf, "mirror-shard", "ns-"+ns)
		c, _ := strconv.Atoi(output(m, "copied"))
		s, _ := strconv.Atoi(output(m, "skipped"))
		copied, skipped = copied+c, skipped+s
	}
	if copied != len(fresh) || skipped == 0 {
		t.Errorf("delta run copied %d, skipped %d: want exactly the %d new tags copied, the rest skipped", copied, skipped, len(fresh))
	}
	e.assertOnTarget(t, fresh)
}

package workflows_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/stepcli/approvalcmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/backfillcmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/exportcmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/mirrorcmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/notifycmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/packcmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/switchmodecmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/verifycmd"
	"github.com/regmigrate/regmigrate/steps/throttle"
	"github.com/regmigrate/regmigrate/workflows"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// plans are representative migrations.
func plans() map[string]workflows.Plan {
	return map[string]workflows.Plan{
		// the whole catalog, copy, no cluster: the smallest pipeline
		"catalog": {
			Name: "legacy-to-new", Source: "legacy.example:5000", Target: "newreg.example:5000",
			ImageTag: "v1.2.3",
		},
		// the runbook's scenario B with Image API backfill, credentials,
		// an artifact repository, bounds and every filter
		"backfill": {
			Name: "acp-to-registry-v2", Namespace: "regmigrate",
			Source: "legacy.example:5000/team", Target: "registry-v2.example/platform",
			Insecure:    []string{"legacy.example:5000"},
			ImagePrefix: "registry.example/regmigrate/", ImageTag: "v1.2.3",
			ArtifactRepositoryRef: &workflows.ArtifactRepositoryRef{ConfigMap: "artifact-repositories", Key: "audit"},
			CredentialsSecret:     "regmigrate-registry-auth", ServiceAccount: "regmigrate-runner",
			Parallelism: 40, ShardParallelism: 20,
			Retry: workflows.Retry{Limit: 5, Backoff: "1m", Factor: 2, MaxDuration: "2h"},
			Scope: workflows.Scope{
				IncludeNamespaces: []string{"team-a", "team-b"}, ExcludeNamespaces: []string{"sandbox"},
				RepoRegex: "^team-.*/", ExcludeRepoRegex: "-tmp$", TagRegex: `^v\d+`, ExcludeTagRegex: "-rc$",
			},
			Shards:     workflows.Shards{Size: 500, MinSize: 20, Max: 200},
			Copy:       workflows.Copy{Jobs: 16, MaxPerRegistry: 8, Retries: 6, IdleTimeout: "90s", Platforms: []string{"linux/amd64", "linux/arm64"}, NoReferrers: true, NoAttachments: true},
			Strategy:   "copy",
			Backfill:   &workflows.Backfill{ImageAPI: "image.alauda.io/v1", QPS: 200, Burst: 400},
			VerifyMode: "digest",
			Timezone:   "Asia/Shanghai",
			// every pod option: resources for every step and for one,
			// a PriorityClass, deadlines and TTLs
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("96Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("384Mi")},
			},
			StepResources: map[string]corev1.ResourceRequirements{
				contract.StepMirror: {
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("256Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")},
				},
			},
			PriorityClassName: "migration-batch",
			StepDeadline:      2 * time.Hour, WorkflowDeadline: 24 * time.Hour,
			TTLAfterSuccess: time.Hour, TTLAfterFailure: 48 * time.Hour,
			// notifications in Slack's format with a link to the UI, and
			// an approval that waits 2 hours
			Notify:          &workflows.Notify{Secret: "regmigrate-webhook", Key: "url", Format: "slack", UIBaseURL: "https://argo.example.com"},
			ApprovalTimeout: 2 * time.Hour,
		},
		// image lists and rules instead of a catalog, reuse-storage
		"lists": {
			Name: "from-lists", Target: "newreg.example:5000",
			Scope: workflows.Scope{
				Lists: []workflows.Input{
					{Name: "ac-images.txt", Data: "NAME                  TAG     DIGEST\nteam-a/web            v1      sha256:" + strings.Repeat("a", 64) + "\n"},
					{Name: "mapping.txt", Data: "legacy.example:5000/team-b/api:v2=newreg.example:5000/platform/api:v2\n"},
				},
				Rules: &workflows.Input{Name: "images.json", Data: `{"legacy.example:5000/team-c/db": "newreg.example:5000/team-c/db"}` + "\n"},
			},
			Strategy: "reuse-storage", Backfill: &workflows.Backfill{},
			ImageTag: "v1.2.3",
			// notifications in regmigrate's JSON, no UI link
			Notify: &workflows.Notify{Secret: "webhook", Key: "teams-url"},
		},
		// a Docker Hub organisation, throttled: each pod gets the total
		// divided by the 4 shards at once
		"hub": {
			Name: "from-hub", Source: "docker.io/acme", Target: "newreg.example:5000/mirror",
			ImageTag: "v1.2.3", ShardParallelism: 4,
			Throttles: map[string]throttle.Limits{
				"docker.io":           {Requests: 40, Bytes: 100 << 20},
				"newreg.example:5000": {Bytes: 200 << 20},
			},
			Hub: &workflows.Hub{Org: "acme", NoLibraryNamespace: true},
		},
		// phase one of a disconnected move on a volume: the shards write
		// one OCI layout on a PersistentVolumeClaim, pack-layout makes it one
		"layout": {
			Name: "to-media", Source: "legacy.example:5000", Target: "oci:/export",
			Layout:   &workflows.LayoutVolume{ClaimName: "regmigrate-export", SubPath: "site-a"},
			ImageTag: "v1.2.3",
		},
		// phase two: the layout on the volume as the source
		"fromlayout": {
			Name: "from-media", Source: "oci:/export", Target: "newreg.example:5000",
			Layout:   &workflows.LayoutVolume{ClaimName: "regmigrate-export"},
			ImageTag: "v1.2.3",
		},
	}
}

// objects generates every kind of object for every plan, by golden name:
// the Workflow, the CronWorkflow, the cutover, the rollback and the
// WorkflowTemplate of each, and for one the objects that reference its
// template.
func objects(t testing.TB) map[string]any {
	t.Helper()
	out := map[string]any{}
	for name, p := range plans() {
		tmpl, err := workflows.Template(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name+"-template"] = tmpl
		wf, err := workflows.Workflow(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name+"-workflow"] = wf
		cron, err := workflows.CronWorkflow(p, "0 2 * * *")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name+"-cron"] = cron
		cut, err := workflows.Cutover(p)
		switch {
		case name == "layout":
			if !errors.Is(err, workflows.ErrCutoverToLayout) {
				t.Fatalf("%s: the cutover to a layout: %v, want %v", name, err, workflows.ErrCutoverToLayout)
			}
		case err != nil:
			t.Fatalf("%s: %v", name, err)
		default:
			out[name+"-cutover"] = cut
		}
		rb, err := workflows.Rollback(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name+"-rollback"] = rb
	}
	p := plans()["backfill"]
	for _, run := range workflows.Runs {
		args := map[string]string(nil)
		if run == workflows.RunMigrate {
			args = map[string]string{workflows.ParamTagRegex: `^v2\.`, workflows.ParamVerifyMode: "full"}
		}
		wf, err := workflows.FromTemplate(p, run, args)
		if err != nil {
			t.Fatalf("from template, %s: %v", run, err)
		}
		out["backfill-from-template-"+string(run)] = wf
	}
	cron, err := workflows.CronFromTemplate(p, "0 */6 * * *", nil)
	if err != nil {
		t.Fatal(err)
	}
	out["backfill-from-template-cron"] = cron
	return out
}

// templateOf is the WorkflowTemplate an object of the golden set runs
// against (its plan's), or nil.
func templateOf(t testing.TB, name string) *wfv1.WorkflowTemplate {
	t.Helper()
	plan, _, _ := strings.Cut(name, "-")
	tmpl, err := workflows.Template(plans()[plan])
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// spec is the Workflow spec of any generated object.
func spec(obj any) *wfv1.WorkflowSpec {
	switch o := obj.(type) {
	case *wfv1.Workflow:
		return &o.Spec
	case *wfv1.CronWorkflow:
		return &o.Spec.WorkflowSpec
	case *wfv1.WorkflowTemplate:
		return &o.Spec
	}
	panic(fmt.Sprintf("%T", obj))
}

// templates of any generated object (none for one that references a
// WorkflowTemplate).
func templates(obj any) []wfv1.Template { return spec(obj).Templates }

func TestGolden(t *testing.T) {
	objs := objects(t)
	names := make([]string, 0, len(objs))
	for n := range objs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		got, err := workflows.YAML(objs[name])
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join("testdata", name+".yaml")
		if *update {
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%v (go test ./workflows -update writes it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generated object (go test ./workflows -update, then review the diff):\n%s", file, lineDiff(string(want), string(got)))
		}
	}
}

// lineDiff shows the first lines that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, a, b)
		}
	}
	return ""
}

func TestEveryObjectPassesArgosValidator(t *testing.T) {
	for name, obj := range objects(t) {
		tmpl := templateOf(t, name)
		if err := workflows.Validate(obj, tmpl); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		// and through YAML, as `regmigrate lint` reads a printed file
		// (with the template's file, for an object that references it)
		b, err := workflows.YAML(obj)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := workflows.Lint(name, b, tmpl); err != nil {
			t.Errorf("lint %s: %v", name, err)
		}
	}
}

func TestValidatorRejectsABrokenWorkflow(t *testing.T) {
	wf, err := workflows.Workflow(plans()["catalog"])
	if err != nil {
		t.Fatal(err)
	}
	wf.Spec.Templates[0].DAG.Tasks[1].Template = "no-such-template"
	if err := workflows.Validate(wf); err == nil || !strings.Contains(err.Error(), "no-such-template") {
		t.Errorf("Validate = %v, want an error naming the missing template", err)
	}
}

// TestArgsParseWithTheStepsParsers renders every step container's args from
// the generated objects and parses them with the step binaries' own parsers.
func TestArgsParseWithTheStepsParsers(t *testing.T) {
	parsers := map[string]func([]string, io.Writer) error{
		contract.StepExport: func(a []string, w io.Writer) error {
			f, err := exportcmd.Parse(a, w)
			if err == nil && f.Out != workflows.RunDir {
				err = fmt.Errorf("--out %q, want %q", f.Out, workflows.RunDir)
			}
			return err
		},
		contract.StepMirror: func(a []string, w io.Writer) error {
			f, err := mirrorcmd.Parse(a, w)
			if err == nil && f.ShardDir != workflows.ShardDir {
				err = fmt.Errorf("--shard-dir %q", f.ShardDir)
			}
			return err
		},
		contract.StepBackfill: func(a []string, w io.Writer) error {
			f, err := backfillcmd.Parse(a, w)
			if err == nil && f.Cluster.Kubeconfig != "" {
				err = fmt.Errorf("--kubeconfig %q: in a pod the ServiceAccount is the credential", f.Cluster.Kubeconfig)
			}
			return err
		},
		contract.StepVerify: func(a []string, w io.Writer) error {
			switch a[0] {
			case notifycmd.Name:
				_, err := notifycmd.Parse(a[1:], w)
				return err
			case approvalcmd.Name:
				_, err := approvalcmd.Parse(a[1:], w)
				return err
			case packcmd.Name:
				_, err := packcmd.Parse(a[1:], w)
				return err
			}
			f, err := verifycmd.Parse(a, w)
			if err == nil && f.Cluster.Kubeconfig != "" {
				err = fmt.Errorf("--kubeconfig %q: in a pod the ServiceAccount is the credential", f.Cluster.Kubeconfig)
			}
			return err
		},
		contract.StepSwitchMode: func(a []string, w io.Writer) error {
			c, err := switchmodecmd.Parse(a, w)
			switch {
			case err != nil:
			case c.CheckGate:
				// The decommission gate reads, changes nothing, and never
				// fails the cutover that succeeded.
				if c.Kubeconfig != "" || c.Confirm || !c.CheckExitZero || c.RunDir == "" {
					err = fmt.Errorf("in a pod the gate runs as the ServiceAccount on the run's report, read-only, exit 0 (its outputs say what is left): %+v", c)
				}
			case c.Kubeconfig != "" || !c.Confirm || c.Force:
				err = fmt.Errorf("in a pod switch-mode runs as the ServiceAccount, confirmed (the approval is the suspend before it), never forced: %+v", c)
			}
			return err
		},
	}
	seen := map[string]bool{}
	for name, obj := range objects(t) {
		for _, tmpl := range templates(obj) {
			c := tmpl.Container
			if c == nil {
				continue
			}
			subst := substitute(obj)
			bin := path.Base(c.Command[0])
			if c.Command[0] != path.Join(workflows.BinDir, bin) || !strings.HasSuffix(strings.Split(c.Image, ":")[0], "/"+bin) {
				t.Errorf("%s/%s: command %q does not run the image's step %s", name, tmpl.Name, c.Command, c.Image)
			}
			parse, ok := parsers[bin]
			if !ok {
				t.Errorf("%s/%s: no parser for %s", name, tmpl.Name, bin)
				continue
			}
			var stderr bytes.Buffer
			args := subst(c.Args)
			if err := parse(args, &stderr); err != nil {
				t.Errorf("%s/%s: %s %q: %v\n%s", name, tmpl.Name, bin, args, err, stderr.String())
			}
			for _, a := range args {
				if strings.Contains(a, "{{") {
					t.Errorf("%s/%s: arg %q carries an Argo expression: shard contents travel as artifacts", name, tmpl.Name, a)
				}
			}
			seen[bin] = true
		}
	}
	for bin := range parsers {
		if !seen[bin] {
			t.Errorf("no container runs %s", bin)
		}
	}
}

// TestVerifyChecksTheImageStreamTagsBackfillWrote: with a cluster, every
// shard's verify checks ImageStreamTags through the same Image API as its
// backfill (the args parsed by the steps' own parsers); without one it
// names no cluster.
func TestVerifyChecksTheImageStreamTagsBackfillWrote(t *testing.T) {
	for name, p := range plans() {
		if name == "layout" {
			continue // no cluster, no cutover: phase one of a disconnected move
		}
		for kind, build := range map[string]func(workflows.Plan) (*wfv1.Workflow, error){"workflow": workflows.Workflow, "cutover": workflows.Cutover} {
			wf, err := build(p)
			if err != nil {
				t.Fatalf("%s-%s: %v", name, kind, err)
			}
			var verifies []*verifycmd.Flags
			var backfills []*backfillcmd.Flags
			for _, tmpl := range wf.Spec.Templates {
				c := tmpl.Container
				if c == nil {
					continue
				}
				switch path.Base(c.Command[0]) {
				case contract.StepVerify:
					if _, sub := verifycmd.Subcommands[c.Args[0]]; sub {
						continue // notify, approval
					}
					f, err := verifycmd.Parse(substitute(wf)(c.Args), io.Discard)
					if err != nil {
						t.Fatalf("%s-%s/%s: %v", name, kind, tmpl.Name, err)
					}
					if f.ShardDir != "" {
						verifies = append(verifies, f)
					} else if f.CheckImageAPI {
						t.Errorf("%s-%s/%s: the aggregate checks no cluster", name, kind, tmpl.Name)
					}
				case contract.StepBackfill:
					f, err := backfillcmd.Parse(substitute(wf)(c.Args), io.Discard)
					if err != nil {
						t.Fatalf("%s-%s/%s: %v", name, kind, tmpl.Name, err)
					}
					backfills = append(backfills, f)
				}
			}
			if len(verifies) != 1 || len(backfills) != map[bool]int{true: 1, false: 0}[p.Backfill != nil] {
				t.Fatalf("%s-%s: %d per-shard verify and %d backfill templates", name, kind, len(verifies), len(backfills))
			}
			v := verifies[0]
			if v.CheckImageAPI != (p.Backfill != nil) {
				t.Errorf("%s-%s: verify --check-image-api=%v, want %v (backfilled: %v)", name, kind, v.CheckImageAPI, p.Backfill != nil, p.Backfill != nil)
			}
			if p.Backfill != nil && v.Cluster != backfills[0].Cluster {
				t.Errorf("%s-%s: verify's cluster %+v, backfill's %+v: want the same Image API", name, kind, v.Cluster, backfills[0].Cluster)
			}
		}
	}
}

// TestNoSecretInTheObjects: the Secret is mounted by name; no parameter,
// argument or env value carries credentials.
func TestCredentialsAreMountedNeverPassed(t *testing.T) {
	p := plans()["backfill"]
	wf, err := workflows.Workflow(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, par := range wf.Spec.Arguments.Parameters {
		if !slices.Contains(workflows.Parameters, par.Name) {
			t.Errorf("workflow parameter %s: not one of the scope's, filters', strategy's or verify mode's", par.Name)
		}
	}
	var mounted bool
	for _, v := range wf.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == p.CredentialsSecret {
			mounted = true
		}
	}
	if !mounted {
		t.Error("the credentials Secret is not a volume")
	}
	for _, tmpl := range wf.Spec.Templates {
		if c := tmpl.Container; c != nil {
			var env []string
			for _, e := range c.Env {
				env = append(env, e.Name+"="+e.Value)
				// The webhook's URL is the one secret a step reads from
				// the environment, by reference to its Secret.
				webhook := tmpl.Name == "notify" && e.Name == notifycmd.URLEnv && e.Value == "" && e.ValueFrom != nil &&
					e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == p.Notify.Secret && e.ValueFrom.SecretKeyRef.Key == p.Notify.Key
				if e.ValueFrom != nil && !webhook {
					t.Errorf("%s: env %s from a reference", tmpl.Name, e.Name)
				}
			}
			if !strings.Contains(strings.Join(env, " "), "DOCKER_CONFIG="+workflows.AuthDir) {
				t.Errorf("%s: env %v: want DOCKER_CONFIG=%s", tmpl.Name, env, workflows.AuthDir)
			}
		}
	}
}

func TestShardFanOutAndRetries(t *testing.T) {
	wf, err := workflows.Workflow(plans()["backfill"])
	if err != nil {
		t.Fatal(err)
	}
	main := wf.Spec.Templates[0]
	if main.DAG == nil || main.DAG.FailFast == nil || *main.DAG.FailFast {
		t.Fatal("the main DAG must not fail fast")
	}
	var fan *wfv1.DAGTask
	for i, task := range main.DAG.Tasks {
		if task.WithParam != "" {
			fan = &main.DAG.Tasks[i]
		}
	}
	if fan == nil || fan.WithParam != "{{tasks.export.outputs.parameters.shard-ids}}" || fan.Arguments.Parameters[0].Value.String() != "{{item}}" {
		t.Fatalf("fan-out task %+v", fan)
	}
	for _, tmpl := range wf.Spec.Templates {
		switch tmpl.Name {
		case contract.StepExport, contract.StepMirror, contract.StepBackfill, "verify-shard":
			r := tmpl.RetryStrategy
			if r == nil || r.Expression != "asInt(lastRetry.exitCode) == 75" || r.RetryPolicy != wfv1.RetryPolicyAlways || r.Backoff == nil || r.Limit.IntValue() != 5 {
				t.Errorf("%s: retryStrategy %+v", tmpl.Name, r)
			}
		}
	}
}

// TestScale: 100,000 images in 5,000 namespaces packed into at most 200
// shards. Shard ids come at run time (withParam), so the Workflow is the
// same size as for a handful of images, and far under Argo's limits.
func TestScale(t *testing.T) {
	const maxShards = workflows.DefaultMaxShards
	items := make([]artifacts.Item, 0, 100000)
	for i := 0; i < 100000; i++ {
		ns := fmt.Sprintf("ns-%04d", i%5000)
		src := imageref.Ref{Registry: "legacy.example:5000", Repository: fmt.Sprintf("%s/app-%d", ns, i%7), Tag: fmt.Sprintf("v%d", i)}
		dst := src
		dst.Registry = "newreg.example:5000"
		items = append(items, artifacts.Item{Source: src, Target: dst})
	}
	plan, _ := export.Cut(items, export.DefaultShardSize, export.DefaultMinShardSize, maxShards)
	if len(plan.Shards) == 0 || len(plan.Shards) > maxShards {
		t.Fatalf("%d shards, want 1..%d", len(plan.Shards), maxShards)
	}
	var ids []string
	for _, s := range plan.Shards {
		ids = append(ids, s.ID)
	}
	idsJSON, _ := json.Marshal(ids)

	big := plans()["backfill"] // no shards.max: the default bound
	big.Shards = workflows.Shards{}
	small := big
	// Same knobs, any scope: another migration (a name as long: it is
	// in every object and the export's args) to another target.
	small.Name, small.Target = strings.Repeat("x", len(big.Name)), "y.example"

	size := func(p workflows.Plan) []byte {
		wf, err := workflows.Workflow(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := workflows.Validate(wf); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(wf)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := size(big)
	t.Logf("Workflow %d bytes (JSON); shard-ids parameter for %d shards of %d images in 5000 namespaces: %d bytes", len(b), len(ids), len(items), len(idsJSON))
	if len(b) > 256<<10 {
		t.Errorf("Workflow is %d bytes, want under 256 KiB", len(b))
	}
	if d := len(b) - len(size(small)); d < -64 || d > 64 {
		t.Errorf("Workflow size depends on the scope (%d bytes apart)", d)
	}
	for _, id := range ids[:3] {
		if bytes.Contains(b, []byte(id)) {
			t.Errorf("Workflow carries shard id %s", id)
		}
	}
	if len(idsJSON) > 64<<10 {
		t.Errorf("shard-ids parameter is %d bytes", len(idsJSON))
	}
	if !bytes.Contains(b, []byte(fmt.Sprintf(`"--max-shards=%d"`, maxShards))) {
		t.Errorf("export is not told to cut at most %d shards", maxShards)
	}
	if n := big.NodesPerShard(); n != 7 {
		t.Errorf("a shard with backfill adds %d nodes, want 7", n)
	}

	// More shards than one Workflow comfortably holds: refused, saying so.
	big.Shards.Max = workflows.MaxShardsCeiling + 1
	_, err := workflows.Workflow(big)
	if err == nil || !strings.Contains(err.Error(), "shards.max 1001") || !strings.Contains(err.Error(), "split the migration") {
		t.Errorf("shards.max %d: %v, want a refusal that says what to do", big.Shards.Max, err)
	}
	big.Shards.Max = workflows.MaxShardsCeiling
	if _, err := workflows.Workflow(big); err != nil {
		t.Errorf("shards.max %d: %v", big.Shards.Max, err)
	}
}

func BenchmarkGenerate(b *testing.B) {
	p := plans()["backfill"]
	p.Shards.Max = 200
	var n int
	for b.Loop() {
		wf, err := workflows.Workflow(p)
		if err != nil {
			b.Fatal(err)
		}
		y, err := workflows.YAML(wf)
		if err != nil {
			b.Fatal(err)
		}
		n = len(y)
	}
	b.ReportMetric(float64(n), "yaml-bytes")
}

func BenchmarkGenerateAndValidate(b *testing.B) {
	p := plans()["backfill"]
	for b.Loop() {
		wf, err := workflows.Workflow(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := workflows.Validate(wf); err != nil {
			b.Fatal(err)
		}
	}
}

// substitute returns what replaces the Argo variables the steps'
// arguments carry with what the controller would put there: the Workflow's
// creation time (for the report), its parameters (their values in obj),
// and a shard's verify mode (auto). Any other expression stays for the
// caller to refuse.
func substitute(obj any) func([]string) []string {
	pairs := []string{"{{workflow.creationTimestamp.RFC3339}}", "2026-11-30T06:00:00Z", "{{inputs.parameters.verify-mode}}", "auto",
		// the exit handler's and the approval record's
		"{{workflow.name}}", "legacy-to-new-x7k2p", "{{workflow.namespace}}", "regmigrate", "{{workflow.status}}", "Failed",
		"{{workflow.failures}}", `[{"displayName":"mirror-shard","message":"exit code 1"}]`,
		"{{inputs.parameters.shard}}", "ns-team-a-0", // a shard's id (its own part of a layout on a volume)
		"{{inputs.parameters.decision}}", "approve", "{{inputs.parameters.approver}}", "Jane Doe (platform team)"}
	for _, par := range spec(obj).Arguments.Parameters {
		pairs = append(pairs, "{{workflow.parameters."+par.Name+"}}", par.Value.String())
	}
	r := strings.NewReplacer(pairs...)
	return func(args []string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			out[i] = r.Replace(a)
		}
		return out
	}
}

//go:build e2e

package argoe2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"

	"github.com/regmigrate/regmigrate/generator/cli"
	"github.com/regmigrate/regmigrate/images/builder"
	"github.com/regmigrate/regmigrate/tests/cluster"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// Where the Workflows run and what they are called, as manifests/ installs them.
const (
	namespace   = "regmigrate"
	imagePrefix = "localhost/regmigrate" // imported into containerd; "localhost" is never pulled from off the machine
	imageTag    = "e2e"
	authSecret  = "regmigrate-registry-auth"
	imageAPI    = "image.alauda.io"
)

// env is what every scenario shares: one node, two registries, the Image API.
type env struct {
	node       *cluster.Node
	src, dst   *regtest.Registry
	dir        string // the test's files (migration specs)
	installDir string // the kustomization install applied
}

// TestArgo stands up the node once and runs the scenarios of issue 6 on it,
// in order. Timings go to the log (and to $REGMIGRATE_E2E_TIMINGS, a file,
// when set).
func TestArgo(t *testing.T) {
	e := setup(t)
	for _, s := range []struct {
		name string
		run  func(*testing.T, *env)
	}{
		{"1-migration", scenarioMigration},
		{"2-failed-shard-retried", scenarioRetry},
		{"5-archive-and-artifacts-outlive-workflows", scenarioArchive},
		{"3-cron-delta", scenarioCron},
		{"4-template-cutover-one-at-a-time-rollback", scenarioCutover},
		{"6-deadlines-ttl-and-pods", scenarioLimits},
		{"7-metrics-notifications-approval", scenarioWatch},
		{"8-ui-retry-through-argo-server-cluster-template", scenarioUIRetry},
		{"9-node-mirror-and-decommission-gate", scenarioNodeMirror},
		{"10-layout-on-a-volume", scenarioLayoutOnAVolume},
	} {
		start, ran := time.Now(), false
		ok := t.Run(s.name, func(t *testing.T) { ran = true; s.run(t, e) })
		if ran {
			timing(t, "scenario "+s.name, time.Since(start))
		}
		if !ok {
			t.Logf("node state, logs and PID files: %s", e.node.Dir)
		}
	}
}

// downOnce returns what stops the node, once: at the end of the test, or
// earlier when the test binary is interrupted or is about to hit `go test
// -timeout` (a panic that skips t.Cleanup), so that no pod, mount or
// network change outlives the run. A signal during the stop waits for it.
func downOnce(t *testing.T, n *cluster.Node) func(why string) error {
	var once sync.Once
	var err error
	down := func(why string) error {
		once.Do(func() {
			fmt.Fprintf(os.Stderr, "argoe2e: %s: stopping the node\n", why)
			err = n.Down()
		})
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		if s, ok := <-sig; ok {
			down(s.String())
			os.Exit(1)
		}
	}()
	t.Cleanup(func() { signal.Stop(sig); close(sig) }) // after the stop: cleanups run last-in first-out
	if dl, ok := t.Deadline(); ok {
		timer := time.AfterFunc(time.Until(dl)-time.Minute, func() { down("the test deadline is a minute away") })
		t.Cleanup(func() { timer.Stop() })
	}
	return down
}

func timing(t *testing.T, what string, d time.Duration) {
	line := fmt.Sprintf("%-48s %s", what, d.Round(100*time.Millisecond))
	t.Log("timing: " + line)
	if f := os.Getenv("REGMIGRATE_E2E_TIMINGS"); f != "" {
		if fh, err := os.OpenFile(f, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(fh, line)
			fh.Close()
		}
	}
}

func setup(t *testing.T) *env {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	logf := func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, "argoe2e: "+f+"\n", a...) // a cold build takes long: show progress now
	}
	start := time.Now()
	if _, err := cluster.Build(ctx, logf); err != nil {
		t.Fatalf("building Kubernetes and Argo: %v", err)
	}
	timing(t, "build k8s+argo binaries (cached when warm)", time.Since(start))

	start = time.Now()
	n, err := cluster.Up(ctx, cluster.Options{Logf: logf})
	if err != nil {
		t.Fatal(err)
	}
	down := downOnce(t, n)
	t.Cleanup(func() {
		if err := down("the test ends"); err != nil {
			t.Errorf("node down: %v", err)
		}
	})
	for _, tm := range n.Timings {
		timing(t, "node: "+tm.What, tm.Took)
	}
	e := &env{node: n, dir: t.TempDir()}

	start = time.Now()
	e.src = regtest.StartDistribution(t, regtest.Options{TLS: true, Auth: true, Host: cluster.NodeIP})
	e.dst = regtest.StartDistribution(t, regtest.Options{TLS: true, Auth: true, Host: cluster.NodeIP})
	timing(t, "registries", time.Since(start))

	start = time.Now()
	e.importStepImages(t, ctx)
	timing(t, "step images built and imported", time.Since(start))

	start = time.Now()
	kubeapi.RegisterImageAPI(t, n.API, imageAPI)
	e.install(t, ctx)
	timing(t, "Image API, manifests/overlays/acp, secrets", time.Since(start))
	return e
}

// importStepImages builds the step images as `make images` does (linux/amd64
// only), with a CA bundle that also trusts the test registries, and imports
// them into the node's containerd.
func (e *env) importStepImages(t *testing.T, ctx context.Context) {
	bundle := filepath.Join(e.dir, "ca-bundle.crt")
	var pem []byte
	for _, f := range []string{builder.DefaultCABundle, e.src.CAFile, e.dst.CAFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pem = append(append(pem, b...), '\n')
	}
	if err := os.WriteFile(bundle, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(e.dir, "images")
	var log bytes.Buffer
	results, err := builder.Run(ctx, builder.Config{
		Out: out, Version: imageTag, Tag: imageTag, CABundle: bundle,
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}},
	}, io.Discard, &log)
	if err != nil {
		t.Fatalf("building the step images: %v\n%s", err, log.String())
	}
	for _, r := range results {
		idx, err := layout.ImageIndexFromPath(r.Layout)
		if err != nil {
			t.Fatal(err)
		}
		img, err := stepImage(idx)
		if err != nil {
			t.Fatalf("%s: %v", r.Step, err)
		}
		if err := e.node.ImportImage(ctx, imagePrefix+"/"+r.Step+":"+imageTag, img); err != nil {
			t.Fatalf("importing %s: %v", r.Step, err)
		}
	}
}

// stepImage finds the linux/amd64 image in a step's OCI layout.
func stepImage(l v1.ImageIndex) (v1.Image, error) {
	m, err := l.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if d.MediaType.IsIndex() {
			child, err := l.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			return stepImage(child)
		}
		if d.Platform != nil && d.Platform.Architecture == "amd64" {
			return l.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("no linux/amd64 image")
}

// install applies, as a platform team would, one kustomization: the ACP
// overlay of manifests/ (namespace, ServiceAccount, RBAC, the example
// WorkflowTemplate and CronWorkflow) with the artifact repository patched
// to the node's S3; then creates the two secrets it names and the
// PriorityClass the pods scenario asks for.
func (e *env) install(t *testing.T, ctx context.Context) {
	e.installDir = filepath.Join(e.dir, "install")
	overlay, err := filepath.Abs("../../manifests/overlays/acp")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(e.installDir, overlay)
	if err != nil {
		t.Fatal(err)
	}
	e.writeFiles(t, e.installDir, map[string]string{
		"kustomization.yaml": fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- %s\npatches:\n- path: artifact-repositories.yaml\n", rel),
		"artifact-repositories.yaml": fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: artifact-repositories
  namespace: %s
data:
  audit: |
    archiveLogs: true
    s3:
      bucket: %s
      endpoint: %s
      insecure: true
      accessKeySecret: {name: regmigrate-artifacts-s3, key: accessKey}
      secretKeySecret: {name: regmigrate-artifacts-s3, key: secretKey}
`, namespace, cluster.S3Bucket, strings.TrimPrefix(e.node.S3, "http://")),
	})
	if out, err := e.node.Kubectl(ctx, "apply", "-k", e.installDir); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	auths := map[string]any{}
	for _, r := range []*regtest.Registry{e.src, e.dst} {
		auths[r.Host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(r.Username + ":" + r.Password))}
	}
	dockerConfig, _ := json.Marshal(map[string]any{"auths": auths})
	cfg := filepath.Join(e.dir, "config.json")
	if err := os.WriteFile(cfg, dockerConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	pc := filepath.Join(e.dir, "priorityclass.yaml")
	os.WriteFile(pc, []byte("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: "+priorityClass+"}\nvalue: 1000\n"), 0o644)
	for _, args := range [][]string{
		{"-n", namespace, "create", "secret", "generic", "regmigrate-artifacts-s3",
			"--from-literal=accessKey=" + cluster.S3Key, "--from-literal=secretKey=" + cluster.S3Secret},
		{"-n", namespace, "create", "secret", "docker-registry", authSecret, "--from-file=.dockerconfigjson=" + cfg},
		{"apply", "-f", pc},
	} {
		if out, err := e.node.Kubectl(ctx, args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
}

// priorityClass is the PriorityClass install creates for the pods
// scenario's spec (argo.priorityClassName).
const priorityClass = "regmigrate-e2e"

// writeFiles writes files (name to content) into dir.
func (e *env) writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// migrationSpec writes a migration.yaml from the source to the target
// registry, one shard per namespace, with the Image API backfilled.
func (e *env) migrationSpec(t *testing.T, name string, namespaces ...string) string {
	return e.migrationSpecWith(t, name, e.src.Host, "", namespaces...)
}

// migrationSpecWith writes a migration.yaml from source to the target
// registry with more YAML (an argo section) appended.
func (e *env) migrationSpecWith(t *testing.T, name, source, more string, namespaces ...string) string {
	spec := fmt.Sprintf(`apiVersion: regmigrate.io/v1alpha1
kind: Migration
metadata:
  name: %s
source:
  registry: %s
target:
  registry: %s
shards:
  minSize: 1
cluster:
  kubeconfig: %s
  imageAPI: %s/v1
`, name, source, e.dst.Host, e.node.Kubeconfig, imageAPI)
	if len(namespaces) > 0 {
		spec += "filters:\n  includeNamespaces: [" + strings.Join(namespaces, ", ") + "]\n"
	}
	spec += more
	path := filepath.Join(e.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sourcePasswordVar holds the source registry's password in the
// submitter's environment; auth.json refers to it as ${...}.
const sourcePasswordVar = "E2E_SOURCE_PASSWORD"

// listsSpec writes, in a folder of its own, a migration.yaml whose scope
// is image lists on this machine (one `ns/repo` line per repository: every
// tag, as the catalog gives) and whose credentials are an image-migrator
// auth.json, the source's password as ${E2E_SOURCE_PASSWORD}. lists maps a
// list's path, relative to the spec, to the repositories it names.
func (e *env) listsSpec(t *testing.T, name string, lists map[string][]string) string {
	dir := filepath.Join(e.dir, name)
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var paths []string
	for rel, repos := range lists {
		write(rel, strings.Join(repos, "\n")+"\n")
		paths = append(paths, rel)
	}
	sort.Strings(paths)
	auth, _ := json.Marshal(map[string]map[string]string{
		e.src.Host: {"username": e.src.Username, "password": "${" + sourcePasswordVar + "}"},
		e.dst.Host: {"username": e.dst.Username, "password": e.dst.Password},
	})
	write("auth.json", string(auth))
	write("migration.yaml", fmt.Sprintf(`apiVersion: regmigrate.io/v1alpha1
kind: Migration
metadata:
  name: %s
source:
  registry: %s
target:
  registry: %s
images:
  lists: [%s]
auth:
  imageMigratorAuth: auth.json
shards:
  minSize: 1
cluster:
  kubeconfig: %s
  imageAPI: %s/v1
`, name, e.src.Host, e.dst.Host, strings.Join(paths, ", "), e.node.Kubeconfig, imageAPI))
	return filepath.Join(dir, "migration.yaml")
}

// regmigrate runs the CLI in-process, as `regmigrate ARGS...`, with an
// empty environment.
func regmigrate(t *testing.T, ctx context.Context, args ...string) (int, string) {
	t.Helper()
	return regmigrateEnv(t, ctx, nil, args...)
}

// regmigrateEnv runs the CLI in-process with environ as its environment.
// Its output may name a Secret, never hold one.
func regmigrateEnv(t *testing.T, ctx context.Context, environ map[string]string, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(ctx, cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return environ[k] }}, args)
	for k, v := range environ {
		if v != "" && strings.Contains(out.String()+errb.String(), v) {
			t.Errorf("regmigrate %s -> %d printed the value of $%s (output not logged)", args[0], code, k)
			return code, out.String()
		}
	}
	t.Logf("regmigrate %s -> %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return code, out.String()
}

// generate runs `regmigrate generate` of a spec with the flags a user of
// this cluster gives plus extra, and returns what it printed.
func (e *env) generate(t *testing.T, ctx context.Context, spec string, extra ...string) string {
	t.Helper()
	args := append([]string{"generate", "-f", spec, "--namespace-for-workflow", namespace}, extra...)
	code, out := regmigrate(t, ctx, args...)
	if code != 0 {
		t.Fatalf("regmigrate generate exit %d", code)
	}
	return out
}

// stepImageFlags name the step images the node has.
var stepImageFlags = []string{"--image-prefix", imagePrefix, "--image-tag", imageTag, "--artifact-repository-ref", "artifact-repositories:audit"}

// submitFromTemplate runs `regmigrate submit --from-template` of a spec
// (no credentials, no images: the template's) plus extra, and returns the
// created object's name.
func (e *env) submitFromTemplate(t *testing.T, ctx context.Context, spec string, extra ...string) string {
	t.Helper()
	args := append([]string{"submit", "-f", spec, "--from-template", "--namespace-for-workflow", namespace, "--argo-kubeconfig", e.node.Kubeconfig}, extra...)
	code, out := regmigrate(t, ctx, args...)
	if code != 0 {
		t.Fatalf("regmigrate submit exit %d", code)
	}
	f := strings.Fields(out)
	if len(f) == 0 || !strings.Contains(f[0], ".argoproj.io/") {
		t.Fatalf("submit printed %q: want the created object", out)
	}
	return f[0][strings.Index(f[0], "/")+1:]
}

// submit runs `regmigrate submit` of a spec with the flags a user of this
// cluster gives, the credentials from the Secret install created, plus
// extra, and returns the created object's name.
func (e *env) submit(t *testing.T, ctx context.Context, spec string, extra ...string) string {
	t.Helper()
	return e.submitEnv(t, ctx, nil, spec, append([]string{"--secret", authSecret}, extra...)...)
}

// submitEnv runs `regmigrate submit` of a spec with the flags a user of
// this cluster gives plus extra (which say where the credentials come
// from), in the environment environ, and returns the created object's
// name.
func (e *env) submitEnv(t *testing.T, ctx context.Context, environ map[string]string, spec string, extra ...string) string {
	t.Helper()
	args := append([]string{"submit", "-f", spec, "--image-prefix", imagePrefix, "--image-tag", imageTag,
		"--namespace-for-workflow", namespace,
		"--artifact-repository-ref", "artifact-repositories:audit", "--argo-kubeconfig", e.node.Kubeconfig}, extra...)
	code, out := regmigrateEnv(t, ctx, environ, args...)
	if code != 0 {
		t.Fatalf("regmigrate submit exit %d", code)
	}
	// "workflow.argoproj.io/NAME created in namespace NS"
	f := strings.Fields(out)
	if len(f) == 0 || !strings.Contains(f[0], ".argoproj.io/") {
		t.Fatalf("submit printed %q: want the created object", out)
	}
	return f[0][strings.Index(f[0], "/")+1:]
}

// workflow reads a Workflow as Argo's own type.
func (e *env) workflow(t *testing.T, ctx context.Context, name string) *wfv1.Workflow {
	t.Helper()
	out, err := e.node.Kubectl(ctx, "-n", namespace, "get", "workflow", name, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var wf wfv1.Workflow
	if err := json.Unmarshal([]byte(out), &wf); err != nil {
		t.Fatal(err)
	}
	return &wf
}

// waitWorkflow waits until the Workflow has ended and returns it; on a
// timeout it logs `argo get` and fails.
func (e *env) waitWorkflow(t *testing.T, ctx context.Context, name string, timeout time.Duration) *wfv1.Workflow {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		wf := e.workflow(t, ctx, name)
		if wf.Status.Phase.Completed() && !wf.Status.FinishedAt.IsZero() {
			return wf
		}
		if time.Now().After(deadline) {
			out, _ := e.argo(ctx, "get", name)
			t.Fatalf("workflow %s still %s after %s:\n%s", name, wf.Status.Phase, timeout, out)
		}
		time.Sleep(time.Second)
	}
}

// argo runs the argo CLI (v3.7.3, built with the node) against the node.
func (e *env) argo(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(e.node.Bin, "argo"), append([]string{"-n", namespace}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.node.Kubeconfig, "ARGO_SERVER=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("argo %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// seed pushes a corpus to the source registry.
func (e *env) seed(t *testing.T, c regtest.Corpus) regtest.Seeded {
	t.Helper()
	s, err := regtest.Seed(context.Background(), e.src.Host, e.src.RemoteOptions(), c)
	if err != nil {
		t.Fatalf("seeding: %v", err)
	}
	return s
}

// assertOnTarget reads every tag back from the target registry by name and
// wants the source's digest.
func (e *env) assertOnTarget(t *testing.T, tags map[string]string) {
	t.Helper()
	for ref, want := range tags {
		r, err := name.ParseReference(e.dst.Host + "/" + ref)
		if err != nil {
			t.Fatal(err)
		}
		d, err := remote.Head(r, e.dst.RemoteOptions()...)
		if err != nil {
			t.Errorf("%s missing on the target: %v", ref, err)
			continue
		}
		if d.Digest.String() != want {
			t.Errorf("%s: target digest %s, source %s", ref, d.Digest, want)
		}
	}
}

// s3List lists the keys under prefix in the artifact bucket (S3 ListObjectsV2).
func (e *env) s3List(t *testing.T, prefix string) []string {
	t.Helper()
	var keys []string
	token := ""
	for {
		q := url.Values{"list-type": {"2"}, "prefix": {prefix}}
		if token != "" {
			q.Set("continuation-token", token)
		}
		body := e.s3Get(t, "?"+q.Encode())
		var res struct {
			Contents              []struct{ Key string }
			IsTruncated           bool
			NextContinuationToken string
		}
		if err := xml.Unmarshal(body, &res); err != nil {
			t.Fatalf("S3 list %s: %v", prefix, err)
		}
		for _, c := range res.Contents {
			keys = append(keys, c.Key)
		}
		if !res.IsTruncated {
			return keys
		}
		token = res.NextContinuationToken
	}
}

// s3Get reads an object (or a bucket query) from the artifact bucket.
func (e *env) s3Get(t *testing.T, key string) []byte {
	t.Helper()
	u := e.node.S3 + "/" + cluster.S3Bucket
	if !strings.HasPrefix(key, "?") {
		u += "/"
	}
	resp, err := http.Get(u + key)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("S3 GET %s: %s: %s", key, resp.Status, b)
	}
	return b
}

// pods are the pods of a Workflow, as kubectl lists them.
func (e *env) pods(t *testing.T, ctx context.Context, wfName string) []corev1.Pod {
	t.Helper()
	out, err := e.node.Kubectl(ctx, "-n", namespace, "get", "pods", "-l", "workflows.argoproj.io/workflow="+wfName, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list corev1.PodList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// waitPods waits until the Workflow's pods are as ok wants (the pod
// garbage collector works asynchronously), for at most two minutes.
func (e *env) waitPods(t *testing.T, ctx context.Context, wfName, what string, ok func([]corev1.Pod) bool) []corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pods := e.pods(t, ctx, wfName)
		if ok(pods) {
			return pods
		}
		if time.Now().After(deadline) {
			var names []string
			for _, p := range pods {
				names = append(names, p.Name+" "+string(p.Status.Phase))
			}
			t.Errorf("pods of %s: %v; want %s", wfName, names, what)
			return pods
		}
		time.Sleep(time.Second)
	}
}

package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/generator/cli"
	"github.com/regmigrate/regmigrate/workflows"
)

// runCLI runs `regmigrate args...` in-process and returns exit code, stdout, stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), cli.Env{
		Stdout: &out, Stderr: &errb,
		Getenv: func(string) string { return "" },
	}, args)
	t.Logf("regmigrate %s -> %d\nstderr:\n%s", strings.Join(args, " "), code, errb.String())
	return code, out.String(), errb.String()
}

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const secretValue = "s3cr3t-password-never-printed"

func migrationYAML(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"config.json": `{"auths":{"legacy.example:5000":{"auth":"` + secretValue + `"}}}`,
		"images.txt":  "team-a/app:v1\n",
		"migration.yaml": `apiVersion: regmigrate.io/v1alpha1
kind: Migration
metadata:
  name: acp-to-registry-v2
source:
  registry: legacy.example:5000
  insecure: true
target:
  registry: registry-v2.example
images:
  lists: [images.txt]
auth:
  authFile: config.json
shards:
  max: 100
cluster:
  kubeconfig: admin.kubeconfig
  imageAPI: image.alauda.io/v1
`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "migration.yaml")
}

func TestGenerateThenLint(t *testing.T) {
	spec := migrationYAML(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"workflow", nil, []string{"kind: Workflow", "generateName: acp-to-registry-v2-", "withParam: '{{tasks.export.outputs.parameters.shard-ids}}'", "/usr/local/bin/backfill-shard", "--image-api=image.alauda.io/v1", "--images=/work/inputs/0-images.txt",
			"path: /work/inputs/0-images.txt\n        raw:\n          data: |\n            team-a/app:v1\n"}},
		{"cron", []string{"--cron", "0 2 * * *", "--timezone", "Asia/Shanghai"}, []string{"kind: CronWorkflow", "concurrencyPolicy: Forbid", "timezone: Asia/Shanghai", "- 0 2 * * *"}},
		{"cutover", []string{"--cutover"}, []string{"suspend:\n      duration: \"86400\"", "supplied: {}", "/usr/local/bin/switch-mode", "--confirm", "- name: verify-mode\n            value: full\n", "name: suspend-deltas"}},
		{"template", []string{"--template"}, []string{"kind: WorkflowTemplate", "name: acp-to-registry-v2\n", "name: cutover\n", "name: rollback\n", "name: delta\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"generate", "-f", spec, "--secret", "registry-auth", "--image-prefix", "registry.example/rm",
				"--image-tag", "v9.9.9", "--namespace-for-workflow", "migration", "--service-account", "rm-runner",
				"--artifact-repository-ref", "artifact-repositories:audit", "--parallelism", "30"}, tc.args...)
			code, out, stderr := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, w := range append(tc.want, "secretName: registry-auth", "image: registry.example/rm/mirror-shard:v9.9.9",
				"namespace: migration", "serviceAccountName: rm-runner", "key: audit", "--insecure=legacy.example:5000") {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if strings.Contains(out+stderr, secretValue) || strings.Contains(out, "config.json\n") && strings.Contains(out, "authfile") {
				t.Error("a credential or the local credentials file reached the output")
			}
			if strings.Contains(out, "key: inputs/") {
				t.Error("an input list became a key in the artifact repository that nothing uploads")
			}
			if strings.Contains(out, "--kubeconfig") {
				t.Error("the local kubeconfig reached a step: in the pod the ServiceAccount is the credential")
			}
			file := write(t, tc.name+".yaml", out)
			if code, lintOut, lintErr := runCLI(t, "lint", file); code != 0 || !strings.Contains(lintOut, "ok") {
				t.Errorf("lint of the generated file: exit %d\n%s%s", code, lintOut, lintErr)
			}
		})
	}
}

func TestGenerateFromFlags(t *testing.T) {
	code, out, stderr := runCLI(t, "generate", "--from", "legacy.example:5000", "--to", "newreg.example:5000", "--include-namespace", "team-a,team-b", "--image-tag", "v1.2.3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, w := range []string{"--include-namespace={{workflow.parameters.include-namespaces}}", "name: include-namespaces\n      value: team-a,team-b\n", "image: ghcr.io/regmigrate/export:v1.2.3", "verify-shard"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
	if strings.Contains(out, "backfill-shard") {
		t.Error("backfill without a cluster")
	}
}

func TestGenerateUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"generate", "--from", "legacy.example:5000", "--image-tag", "v1"}, "target.registry is empty"},
		{[]string{"generate", "--from", "a.example", "--to", "b.example", "--cron", "@daily", "--cutover", "--image-tag", "v1"}, "give one"},
		{[]string{"generate", "--from", "a.example", "--to", "b.example", "--cron", "not a schedule", "--image-tag", "v1"}, "not a schedule"},
		{[]string{"generate", "--from", "a.example", "--to", "b.example", "--image-tag", "v1:2"}, "v1:2"},
		{[]string{"generate", "--from", "a.example", "--to", "b.example", "--image-tag", "v1", "--image-prefix", "r.example/rm:v1"}, "r.example/rm:v1"},
		{[]string{"generate", "--from", "a.example", "--to", "b.example", "--image-tag", "v1", "--images", "/no/such/list.txt"}, "/no/such/list.txt"},
		{[]string{"generate", "--from", "a.example", "--to", "b.example", "--image-tag", "v1", "--param", "tag-regex=^v"}, "--param sets a parameter of a Workflow run from the template"},
		{[]string{"generate", "--from", "a.example", "--to", "b.example", "--from-template", "--param", "tags=^v"}, `--param "tags=^v": want NAME=VALUE with NAME one of source,`},
		{[]string{"generate", "--from", "a.example", "--to", "b.example", "--from-template", "--param", "strategy=move"}, "move"},
		{[]string{"generate", "--from", "a.example", "--to", "b.example", "--from-template", "--template"}, "--template and --from-template: give one"},
		{[]string{"generate", "--from", "a.example", "--to", "b.example", "--from-template", "--secret", "x"}, "the WorkflowTemplate names the credentials Secret"},
		{[]string{"generate", "--from", "a.example", "--to", "oci:/media/export", "--image-tag", "v1"}, "the target oci:/media/export is a path on this machine, which the workflow's pods cannot reach: name the PersistentVolumeClaim the layout lives on in the spec, argo.layoutVolume: {claimName: NAME}"},
		{[]string{"generate", "--from", "oci:/media/export", "--to", "b.example", "--image-tag", "v1"}, "then `regmigrate run --from oci:DIR --to NEW`"},
	} {
		code, out, stderr := runCLI(t, tc.args...)
		if code != 2 || out != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2, nothing printed and a message about %q", tc.args, code, out, stderr, tc.want)
		}
	}
}

// TestGenerateRefusesADevelopmentBuildsDefaultTag: this test binary's
// version is "dev", as a plain go build's: without a tag there is no
// published image to run, and the message says how to build and name them.
func TestGenerateRefusesADevelopmentBuildsDefaultTag(t *testing.T) {
	code, out, stderr := runCLI(t, "generate", "--from", "legacy.example:5000", "--to", "newreg.example:5000")
	if code != 2 || out != "" {
		t.Fatalf("exit %d, stdout %q: want 2 and nothing printed", code, out)
	}
	for _, w := range []string{`development build (version "dev")`, "make images REGISTRY=registry.example/regmigrate", "--image-prefix registry.example/regmigrate --image-tag TAG", "argo.imageTag"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q", w)
		}
	}
}

// TestStepImagesFromTheSpecAndFlags: the spec's argo section names the
// step images; a flag overrides its field.
func TestStepImagesFromTheSpecAndFlags(t *testing.T) {
	dir := t.TempDir()
	specFile := filepath.Join(dir, "migration.yaml")
	if err := os.WriteFile(specFile, []byte(`source: {registry: legacy.example:5000}
target: {registry: newreg.example:5000}
argo:
  imagePrefix: registry.example:5000/rm
  imageTag: v2.0.0-rc.1
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{nil, "image: registry.example:5000/rm/mirror-shard:v2.0.0-rc.1"},
		{[]string{"--image-tag", "abc123"}, "image: registry.example:5000/rm/mirror-shard:abc123"},
		{[]string{"--image-prefix", "other.example/x"}, "image: other.example/x/mirror-shard:v2.0.0-rc.1"},
	} {
		code, out, stderr := runCLI(t, append([]string{"generate", "-f", specFile}, tc.flags...)...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%q: exit %d, want %q in the output\n%s", tc.flags, code, tc.want, stderr)
		}
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("source: {registry: a.example}\ntarget: {registry: b.example}\nargo: {imageTag: ':x'}\n"), 0o600)
	if code, _, stderr := runCLI(t, "generate", "-f", bad); code != 2 || !strings.Contains(stderr, "argo.imageTag") {
		t.Errorf("invalid argo.imageTag: exit %d, %s", code, stderr)
	}
}

// TestGenerateWritesALayoutOnAVolume: with argo.layoutVolume the spec's
// oci:DIR target is generated (the shards write it, pack-layout packs
// it); the cutover to a layout, and a bad claim name, are refused.
func TestGenerateWritesALayoutOnAVolume(t *testing.T) {
	dir := t.TempDir()
	specFile := filepath.Join(dir, "migration.yaml")
	if err := os.WriteFile(specFile, []byte(`source: {registry: legacy.example:5000}
target: {registry: "oci:/export"}
argo:
  imageTag: v1
  layoutVolume: {claimName: regmigrate-export}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "generate", "-f", specFile)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, w := range []string{"claimName: regmigrate-export", "mountPath: /export", "--layout=oci:/export", "--layout-part={{inputs.parameters.shard}}", "- pack-layout", "name: pack-layout"} {
		if !strings.Contains(out, w) {
			t.Errorf("the Workflow lacks %q", w)
		}
	}
	if code, _, stderr := runCLI(t, "generate", "-f", specFile, "--cutover"); code != 2 || !strings.Contains(stderr, "generate the cutover from phase two's spec") {
		t.Errorf("--cutover to a layout: exit %d, %s", code, stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("source: {registry: a.example}\ntarget: {registry: \"oci:/export\"}\nargo: {imageTag: v1, layoutVolume: {claimName: Bad_Name}}\n"), 0o600)
	if code, _, stderr := runCLI(t, "generate", "-f", bad); code != 2 || !strings.Contains(stderr, `argo.layoutVolume.claimName "Bad_Name"`) {
		t.Errorf("invalid argo.layoutVolume.claimName: exit %d, %s", code, stderr)
	}
}

// TestGenerateWantsASecretForTheSpecsCredentials: credentials named in the
// spec never enter the Workflow, so without --secret generate says how the
// pods get them instead of dropping them.
func TestGenerateWantsASecretForTheSpecsCredentials(t *testing.T) {
	spec := migrationYAML(t)
	code, out, stderr := runCLI(t, "generate", "-f", spec, "--image-tag", "v1")
	if code != 2 || out != "" {
		t.Fatalf("exit %d, stdout %q: want 2 and nothing printed", code, out)
	}
	for _, w := range []string{"auth.authFile (" + filepath.Join(filepath.Dir(spec), "config.json") + ")", "--secret NAME", "regmigrate submit --create-secret"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q", w)
		}
	}
	if strings.Contains(stderr, secretValue) {
		t.Error("the credential reached stderr")
	}
	if code, out, stderr := runCLI(t, "generate", "-f", spec, "--image-tag", "v1", "--rollback"); code != 0 || !strings.Contains(out, "--rollback") {
		t.Errorf("the rollback talks to no registry and needs no Secret: exit %d %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "generate", "-f", spec, "--image-tag", "v1", "--create-secret"); code != 2 || !strings.Contains(stderr, "unknown flag: --create-secret") {
		t.Errorf("generate --create-secret: exit %d %s: only submit creates", code, stderr)
	}
}

// TestGenerateRefusesListsThatDoNotFit: the lists travel inside the
// Workflow; beyond the bound the error says what to do.
func TestGenerateRefusesListsThatDoNotFit(t *testing.T) {
	dir := t.TempDir()
	var big strings.Builder
	for i := 0; big.Len() <= 60<<10; i++ {
		fmt.Fprintf(&big, "team-%d/app:v%d\n", i%50, i)
	}
	a, b := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")
	os.WriteFile(a, []byte(big.String()), 0o600)
	os.WriteFile(b, []byte(big.String()), 0o600)
	code, out, stderr := runCLI(t, "generate", "--from", "l.example", "--to", "n.example", "--image-tag", "v1", "--images", a)
	if code != 0 || !strings.Contains(out, "team-49/app:v49\n") {
		t.Fatalf("one list of %d bytes: exit %d %s", big.Len(), code, stderr)
	}
	code, out, stderr = runCLI(t, "generate", "--from", "l.example", "--to", "n.example", "--image-tag", "v1", "--images", a, "--images", b)
	if code != 2 || out != "" {
		t.Fatalf("two lists: exit %d, want 2", code)
	}
	for _, w := range []string{"a.txt", "b.txt", "at most 100.0 KiB", "ns/repo copies every tag"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q", w)
		}
	}
}

func TestLintRejectsBrokenWorkflows(t *testing.T) {
	code, good, _ := runCLI(t, "generate", "--from", "legacy.example:5000", "--to", "newreg.example:5000", "--image-tag", "v1.2.3")
	if code != 0 {
		t.Fatal(code)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"missing-template", strings.Replace(good, "template: mirror-shard", "template: mirror-shards", 1), "mirror-shards"},
		{"bad-withparam", strings.Replace(good, "outputs.parameters.shard-ids", "outputs.parameters.nope", 1), "nope"},
		{"unknown-field", strings.Replace(good, "failFast: false", "failFast: false\n      failFastt: false", 1), "failFastt"},
		{"not-argo", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n", "ConfigMap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.yaml == good {
				t.Fatal("the test's edit did not apply")
			}
			code, _, stderr := runCLI(t, "lint", write(t, tc.name+".yaml", tc.yaml))
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q: want 2 and the validator's message about %q", code, stderr, tc.want)
			}
		})
	}
	if code, _, _ := runCLI(t, "lint"); code != 2 {
		t.Errorf("lint without files: exit %d, want 2", code)
	}
	if code, _, _ := runCLI(t, "lint", filepath.Join(t.TempDir(), "missing.yaml")); code != 2 {
		t.Errorf("lint of a missing file: exit %d, want 2", code)
	}
}

// TestCertsDirTravelsInTheCredentialsSecret: auth.certsDir (a private CA
// for the registries) reaches the pods as files of the credentials Secret,
// mounted in containerd's certs.d layout with --certs-dir pointing there;
// it is never dropped silently.
func TestCertsDirTravelsInTheCredentialsSecret(t *testing.T) {
	spec := migrationYAML(t)
	dir := filepath.Dir(spec)
	if err := os.MkdirAll(filepath.Join(dir, "certs.d", "legacy.example:5000"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "certs.d", "legacy.example:5000", "ca.crt"), []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(spec)
	if err := os.WriteFile(spec, []byte(strings.Replace(string(b), "  authFile: config.json\n", "  authFile: config.json\n  certsDir: certs.d\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "generate", "-f", spec, "--image-tag", "v1")
	if code != 2 || !strings.Contains(stderr, "auth.certsDir ("+filepath.Join(dir, "certs.d")+")") {
		t.Errorf("without a Secret: exit %d, %s: want 2 naming auth.certsDir", code, stderr)
	}
	code, out, stderr := runCLI(t, "generate", "-f", spec, "--image-tag", "v1", "--secret", "registry-auth")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	key := workflows.CertKey("legacy.example:5000/ca.crt")
	for _, w := range []string{"--certs-dir=" + workflows.CertsDir, "key: " + key, "path: certs.d/legacy.example:5000/ca.crt"} {
		if !strings.Contains(out, w) {
			t.Errorf("the Workflow lacks %q", w)
		}
	}
	if strings.ContainsAny(key, "/:") {
		t.Errorf("Secret key %q: Kubernetes allows no / or :", key)
	}
}

// TestGenerateFromTemplate: the template and what runs from it, as a
// platform team installs them (generate --template, --from-template
// --cron) and submits runs; each lints against the template's file, and
// the two are written for kubectl apply (names, no generateName).
func TestGenerateFromTemplate(t *testing.T) {
	spec := migrationYAML(t)
	base := []string{"generate", "-f", spec, "--namespace-for-workflow", "migration"}
	code, tmpl, stderr := runCLI(t, append(base, "--template", "--secret", "registry-auth", "--image-tag", "v9.9.9")...)
	if code != 0 {
		t.Fatalf("--template: exit %d: %s", code, stderr)
	}
	for _, w := range []string{"kind: WorkflowTemplate", "name: acp-to-registry-v2\n", "name: regmigrate-acp-to-registry-v2", "workflowMetadata:"} {
		if !strings.Contains(tmpl, w) {
			t.Errorf("the template lacks %q", w)
		}
	}
	tmplFile := write(t, "workflowtemplate.yaml", tmpl)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"run", []string{"--param", "tag-regex=^v2\\.", "--param", "verify-mode=full"},
			[]string{"kind: Workflow", "generateName: acp-to-registry-v2-\n", "entrypoint: main", "name: tag-regex\n      value: ^v2\\.\n", "name: verify-mode\n      value: full"}},
		{"cron", []string{"--cron", "0 */6 * * *"}, []string{"kind: CronWorkflow", "name: acp-to-registry-v2-delta\n", "entrypoint: delta", "concurrencyPolicy: Forbid"}},
		{"cutover", []string{"--cutover"}, []string{"generateName: acp-to-registry-v2-cutover-", "entrypoint: cutover"}},
		{"rollback", []string{"--rollback"}, []string{"generateName: acp-to-registry-v2-rollback-", "entrypoint: rollback"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// No --secret, no image tag (a development build): the
			// template carries both.
			code, out, stderr := runCLI(t, append(append(base, "--from-template"), tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, w := range append(tc.want, "workflowTemplateRef:\n", "  name: acp-to-registry-v2\n", "name: regmigrate-acp-to-registry-v2") {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "templates:") || strings.Contains(out, "image:") {
				t.Error("an object run from the template carries the pipeline")
			}
			file := write(t, tc.name+".yaml", out)
			if code, lintOut, lintErr := runCLI(t, "lint", tmplFile, file); code != 0 || strings.Count(lintOut, ": ok") != 2 {
				t.Errorf("lint with the template: exit %d\n%s%s", code, lintOut, lintErr)
			}
			if code, _, lintErr := runCLI(t, "lint", file); code != 2 || !strings.Contains(lintErr, "acp-to-registry-v2") {
				t.Errorf("lint without the template: exit %d %s: want 2 naming the template it cannot find", code, lintErr)
			}
		})
	}
}

// TestGeneratePodSettingsFromTheSpec: the argo section's resources,
// per-step resources, priority class, deadlines and TTLs reach the
// objects; a wrong value is refused with the spec's line.
func TestGeneratePodSettingsFromTheSpec(t *testing.T) {
	spec := write(t, "migration.yaml", `source: {registry: legacy.example:5000}
target: {registry: newreg.example:5000}
argo:
  imageTag: v1
  resources:
    requests: {cpu: 50m, memory: 40Mi}
    limits: {memory: 300Mi}
  stepResources:
    mirror-shard:
      requests: {cpu: "1", memory: 200Mi}
      limits: {memory: 2Gi}
  priorityClassName: migration-batch
  deadlines: {step: 90m, workflow: 30h}
  ttl: {afterSuccess: 1h, afterFailure: 48h}
`)
	code, out, stderr := runCLI(t, "generate", "-f", spec)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, w := range []string{
		"podPriorityClassName: migration-batch", "activeDeadlineSeconds: 108000\n", "activeDeadlineSeconds: 5400\n",
		"secondsAfterSuccess: 3600", "secondsAfterFailure: 172800", "podGC:\n    strategy: OnPodSuccess",
		"limits:\n          memory: 2Gi\n        requests:\n          cpu: \"1\"\n          memory: 200Mi",
		"limits:\n          memory: 300Mi\n        requests:\n          cpu: 50m\n          memory: 40Mi",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
	for _, tc := range []struct{ argo, want string }{
		{"  stepResources: {mirror: {limits: {memory: 1Gi}}}\n", `migration.yaml:4: argo.stepResources: step "mirror": want one of export, mirror-shard,`},
		{"  resources: {requests: {memory: 1Gi}, limits: {memory: 512Mi}}\n", "migration.yaml:4: argo.resources: requests.memory 1Gi is more than limits.memory 512Mi"},
		{"  resources: {limits: {cpu: lots}}\n", `argo.resources: limits.cpu "lots": want a positive quantity such as 250m, 1`},
		{"  deadlines: {step: 6}\n", `migration.yaml:4: argo.deadlines.step "6": want a duration`},
		{"  ttl: {afterFailure: 7d}\n", `argo.ttl.afterFailure "7d"`},
		{"  priorityClassName: Batch_Jobs\n", `argo.priorityClassName "Batch_Jobs"`},
	} {
		bad := write(t, "migration.yaml", "source: {registry: a.example}\ntarget: {registry: b.example}\nargo:\n"+tc.argo)
		if code, _, stderr := runCLI(t, "generate", "-f", bad, "--image-tag", "v1"); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d %s: want 2 and %q", tc.argo, code, stderr, tc.want)
		}
	}
}

// TestGenerateNotifyAndApprovalFromTheSpec: argo.notify makes the exit
// handler (the URL by reference to its Secret, never in the output),
// argo.approval.timeout bounds the cutover's approval; bad settings are
// usage errors that say what to write.
func TestGenerateNotifyAndApprovalFromTheSpec(t *testing.T) {
	spec := write(t, "migration.yaml", `source: {registry: legacy.example:5000}
target: {registry: newreg.example:5000}
argo:
  imageTag: v1
  notify:
    webhookSecret: {name: regmigrate-webhook, key: url}
    format: slack
    uiURL: https://argo.example.com
  approval: {timeout: 90m}
`)
	code, out, stderr := runCLI(t, "generate", "-f", spec, "--cutover")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, w := range []string{
		"onExit: notify", "- --format=slack", "- --ui-url=https://argo.example.com", "- --status={{workflow.status}}",
		"name: REGMIGRATE_WEBHOOK_URL\n        valueFrom:\n          secretKeyRef:\n            key: url\n            name: regmigrate-webhook",
		"suspend:\n      duration: \"5400\"", "supplied: {}", "name: record-approval",
		"name: regmigrate_shard_images", "name: regmigrate_migration_shards_done",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
	if code, out, _ := runCLI(t, "generate", "-f", write(t, "plain.yaml", "source: {registry: a.example}\ntarget: {registry: b.example}\n"), "--image-tag", "v1", "--cutover"); code != 0 ||
		strings.Contains(out, "onExit") || !strings.Contains(out, "duration: \"86400\"") {
		t.Errorf("without argo.notify and argo.approval: exit %d; want no exit handler and a 24h approval", code)
	}
	for _, tc := range []struct{ argo, want string }{
		{"  notify: {format: slack}\n", "argo.notify.webhookSecret: want the name and key of the Secret holding the webhook URL"},
		{"  notify: {webhookSecret: {name: hook, key: url}, format: teams}\n", `argo.notify.format "teams": want json or slack`},
		{"  notify: {webhookSecret: {name: Hook_1, key: url}}\n", `argo.notify.webhookSecret.name "Hook_1"`},
		{"  notify: {webhookSecret: {name: hook, key: url}, uiURL: argo.example.com}\n", `argo.notify.uiURL "argo.example.com": want the Argo UI's address`},
		{"  approval: {timeout: 1d}\n", `argo.approval.timeout "1d": want a duration`},
		{"  approval: {timeout: 80h}\n", "argo.approval.timeout 80h: want less than argo.deadlines.workflow 72h"},
	} {
		argo := tc.argo
		if strings.Contains(argo, "80h") {
			argo += "  deadlines: {workflow: 72h}\n"
		}
		bad := write(t, "migration.yaml", "source: {registry: a.example}\ntarget: {registry: b.example}\nargo:\n"+argo)
		if code, _, stderr := runCLI(t, "generate", "-f", bad, "--image-tag", "v1"); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d %s: want 2 and %q", tc.argo, code, stderr, tc.want)
		}
	}
}

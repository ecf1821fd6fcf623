package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/generator/cli"
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
		{"workflow", nil, []string{"kind: Workflow", "generateName: acp-to-registry-v2-", "withParam: '{{tasks.export.outputs.parameters.shard-ids}}'", "/usr/local/bin/backfill-shard", "--image-api=image.alauda.io/v1", "--images=/work/inputs/0-images.txt", "key: inputs/images.txt"}},
		{"cron", []string{"--cron", "0 2 * * *", "--timezone", "Asia/Shanghai"}, []string{"kind: CronWorkflow", "concurrencyPolicy: Forbid", "timezone: Asia/Shanghai", "- 0 2 * * *"}},
		{"cutover", []string{"--cutover"}, []string{"suspend: {}", "/usr/local/bin/switch-mode", "--confirm", "--mode=full"}},
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
	code, out, stderr := runCLI(t, "generate", "--from", "legacy.example:5000", "--to", "newreg.example:5000", "--namespace", "team-a,team-b")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, w := range []string{"--namespace=team-a,team-b", "image: ghcr.io/regmigrate/export:", "verify-shard"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
	if strings.Contains(out, "backfill-shard") {
		t.Error("backfill without a cluster")
	}
}

func TestGenerateUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"generate", "--from", "legacy.example:5000"}, // no target
		{"generate", "--from", "a.example", "--to", "b.example", "--cron", "@daily", "--cutover"},
		{"generate", "--from", "a.example", "--to", "b.example", "--cron", "not a schedule"},
	} {
		if code, out, _ := runCLI(t, args...); code != 2 || out != "" {
			t.Errorf("%q: exit %d, stdout %q; want 2 and nothing printed", args, code, out)
		}
	}
}

func TestLintRejectsBrokenWorkflows(t *testing.T) {
	code, good, _ := runCLI(t, "generate", "--from", "legacy.example:5000", "--to", "newreg.example:5000")
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

package cli_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/regmigrate/regmigrate/steps/cloudauth"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/stepcli/mirrorcmd"
)

// A migration to ECR with cloud keychains and no credential files: the
// Workflow runs the steps as the spec's ServiceAccount (the one IRSA or
// workload identity binds), mounts no Secret and needs none, and its
// mirror-shard args, parsed by the step's own parser, carry the keychains
// and the settings of the repositories to create.
func TestGenerateCloudKeychainsNeedNoSecret(t *testing.T) {
	dir := t.TempDir()
	policy := "{\n  \"rules\": [{\"rulePriority\": 1, \"selection\": {\"tagStatus\": \"untagged\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 5}, \"action\": {\"type\": \"expire\"}}]\n}\n"
	for name, content := range map[string]string{
		"lifecycle.json": policy,
		"migration.yaml": `apiVersion: regmigrate.io/v1alpha1
kind: Migration
metadata:
  name: to-ecr
source:
  registry: europe-docker.pkg.dev/proj/legacy
target:
  registry: ecr-proxy.internal.example/team
  keychain: ecr
  ecr:
    region: eu-west-1
    account: "123456789012"
    tagImmutability: true
    scanOnPush: true
    encryption: KMS
    kmsKey: alias/regmigrate
    lifecyclePolicyFile: lifecycle.json
argo:
  imageTag: test
  serviceAccount: regmigrate-irsa
`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := runCLI(t, "generate", "-f", filepath.Join(dir, "migration.yaml"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var wf wfv1.Workflow
	if err := yaml.Unmarshal([]byte(out), &wf); err != nil {
		t.Fatal(err)
	}
	if sa := wf.Spec.ServiceAccountName; sa != "regmigrate-irsa" {
		t.Errorf("serviceAccountName %q, want the spec's regmigrate-irsa", sa)
	}
	if strings.Contains(out, "DOCKER_CONFIG") || strings.Contains(out, "secretName") {
		t.Error("the Workflow mounts a credentials Secret although no credential file is named")
	}
	found := false
	for _, tmpl := range wf.Spec.Templates {
		if tmpl.Container == nil || filepath.Base(tmpl.Container.Command[0]) != contract.StepMirror {
			continue
		}
		found = true
		var args []string // the Workflow's parameters as Argo substitutes them
		for _, a := range tmpl.Container.Args {
			args = append(args, strings.ReplaceAll(a, "{{workflow.parameters.strategy}}", contract.StrategyCopy))
		}
		f, err := mirrorcmd.Parse(args, io.Discard)
		if err != nil {
			t.Fatalf("mirror-shard args %q: %v", tmpl.Container.Args, err)
		}
		want := cloudauth.Registry{Kind: cloudauth.ECR, Region: "eu-west-1", Account: "123456789012"}
		if got := f.Keychains["ecr-proxy.internal.example"]; got != want {
			t.Errorf("--keychain: %+v, want %+v", f.Keychains, want)
		}
		s := f.ECR.Settings
		if f.ECR.NoCreate || !s.TagImmutable || !s.ScanOnPush || s.Encryption != "KMS" || s.KMSKey != "alias/regmigrate" ||
			s.LifecyclePolicy != `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}` {
			t.Errorf("ECR flags: %+v", f.ECR)
		}
	}
	if !found {
		t.Error("no mirror-shard container")
	}
}

func TestSpecCloudMistakes(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown keychain":    {"target:\n  registry: r.example\n  keychain: vault\n", "target.keychain"},
		"ecr on a non-ECR":    {"target:\n  registry: r.example\n  ecr:\n    region: eu-west-1\n", "keychain: ecr"},
		"bad account":         {"target:\n  registry: r.example\n  keychain: ecr\n  ecr:\n    account: \"12\"\n", "12-digit"},
		"kms key without KMS": {"target:\n  registry: r.example\n  keychain: ecr\n  ecr:\n    kmsKey: k\n", "encryption: KMS"},
		"missing policy file": {"target:\n  registry: r.example\n  keychain: ecr\n  ecr:\n    lifecyclePolicyFile: nope.json\n", "lifecyclePolicyFile"},
		"bad service account": {"target:\n  registry: r.example\nargo:\n  serviceAccount: Not_A_Name\n", "argo.serviceAccount"},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
			if err := os.WriteFile(p, []byte("apiVersion: regmigrate.io/v1alpha1\nkind: Migration\nmetadata:\n  name: m\nsource:\n  registry: s.example\n"+tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runCLI(t, "generate", "-f", p, "--image-tag", "test")
			if code != contract.ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q: want %d and %q", code, stderr, contract.ExitUsage, tc.want)
			}
		})
	}
}

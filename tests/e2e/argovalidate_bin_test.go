package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/workflows"
)

// TestArgoValidatorIsItsOwnBinary: the regmigrate binary does not link
// Argo's validator (it would add 15 MiB to the resident memory of every
// command, run included); generate and lint run it as
// regmigrate-argo-validate, found beside regmigrate, on PATH or through
// $REGMIGRATE_ARGO_VALIDATE, and say what to install when it is missing.
func TestArgoValidatorIsItsOwnBinary(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "github.com/regmigrate/regmigrate/generator/cmd/regmigrate").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/argoproj/argo-workflows/v3/workflow/validate" || strings.HasPrefix(dep, "k8s.io/client-go/kubernetes") ||
			dep == "github.com/regmigrate/regmigrate/workflows/argovalidate" {
			t.Errorf("the regmigrate binary links %s", dep)
		}
	}

	bin := buildCLI(t) // regmigrate and regmigrate-argo-validate, side by side
	run := func(regmigrate string, env []string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(regmigrate, args...)
		cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, env...)
		return runCommand(t, cmd)
	}
	generate := []string{"generate", "--from", "legacy.example:5000", "--to", "newreg.example:5000", "--include-namespace", "team-a", "--image-tag", "v1.2.3"}

	code, wf, stderr := run(bin, nil, generate...)
	if code != 0 || !strings.Contains(wf, "kind: Workflow") {
		t.Fatalf("generate: exit %d, stderr %s\nstdout %.300s", code, stderr, wf)
	}
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	broken := regexp.MustCompile(`(?m)^(\s*)entrypoint: \S+$`).ReplaceAllString(wf, "${1}entrypoint: no-such-template")
	if broken == wf {
		t.Fatal("the generated Workflow has no entrypoint line to break")
	}
	if err := os.WriteFile(good, []byte(wf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := run(bin, nil, "lint", good); code != 0 || !strings.Contains(stdout, "good.yaml: ok") {
		t.Errorf("lint of the generated Workflow: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// Argo's own verdict comes back through the pipe.
	if code, _, stderr := run(bin, nil, "lint", bad); code == 0 || !strings.Contains(stderr, "no-such-template") {
		t.Errorf("lint of a Workflow whose entrypoint is no template: exit %d, stderr %q; want Argo's error naming no-such-template", code, stderr)
	}

	// regmigrate alone: nothing validates, so nothing is printed as valid.
	lone := filepath.Join(t.TempDir(), "regmigrate")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lone, b, 0o755); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(lone, nil, generate...)
	if code == 0 || stdout != "" || !strings.Contains(stderr, workflows.ValidatorBinary) || !strings.Contains(stderr, "install both") {
		t.Errorf("generate without %s: exit %d, stdout %.100q, stderr %q; want a failure that says what to install", workflows.ValidatorBinary, code, stdout, stderr)
	}
	if code, _, stderr := run(lone, nil, "lint", good); code == 0 || !strings.Contains(stderr, workflows.ValidatorBinary) {
		t.Errorf("lint without %s: exit %d, stderr %q", workflows.ValidatorBinary, code, stderr)
	}
	// Installed elsewhere (a libexec directory) and named.
	validator := filepath.Join(filepath.Dir(bin), workflows.ValidatorBinary)
	if code, stdout, stderr := run(lone, []string{workflows.ValidatorEnv + "=" + validator}, "lint", good); code != 0 || !strings.Contains(stdout, "ok") {
		t.Errorf("lint with $%s: exit %d, stderr %q", workflows.ValidatorEnv, code, stderr)
	}
	// On PATH.
	if code, stdout, stderr := run(lone, []string{"PATH=" + filepath.Dir(bin) + ":/usr/bin:/bin"}, "lint", good); code != 0 || !strings.Contains(stdout, "ok") {
		t.Errorf("lint with %s on PATH: exit %d, stderr %q", workflows.ValidatorBinary, code, stderr)
	}
}

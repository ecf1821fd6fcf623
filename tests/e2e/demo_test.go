package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMakeDemo runs `make demo` as a newcomer would (into a bin folder of
// its own, so the checkout is left alone) and reads what it prints: what
// it does while it builds, then the demo. The demo needs only what it
// uses: the recipe installs Debian's docker-registry and nothing else,
// builds regmigrate and the demo and no step binary, downloads no module
// the build does not need; and the demo runs with an empty PATH (no etcd,
// no htpasswd, no go), its registries from docker-registry's Debian path.
func TestMakeDemo(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()

	plan, err := exec.Command("make", "-C", root, "-n", "demo", "BIN="+bin).CombinedOutput()
	if err != nil {
		t.Fatalf("make -n demo: %v\n%s", err, plan)
	}
	for _, unused := range []string{"etcd", "htpasswd", "apache2-utils", "./steps/cmd", "mirror-shard", "go mod download"} {
		if strings.Contains(string(plan), unused) {
			t.Errorf("make demo would use %q, which the demo does not need:\n%s", unused, plan)
		}
	}

	cmd := exec.Command("make", "-s", "-C", root, "demo", "BIN="+bin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("make demo:\n%s", out.String())
	if err != nil {
		t.Fatalf("make demo: %v", err)
	}
	want := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^== demo: resolving the Go modules regmigrate and the demo use`),
		regexp.MustCompile(`(?m)^== demo: building ` + regexp.QuoteMeta(bin) + `/regmigrate and ` + regexp.QuoteMeta(bin) + `/demo: \d+ packages`),
		regexp.MustCompile(`(?m)^   compiled \d+ of \d+ packages; nothing else needed compiling$`),
		regexp.MustCompile(`(?m)^== demo: starting$`),
		regexp.MustCompile(`(?m)^# dry run: \+ to copy, = already on the target`),
		regexp.MustCompile(`(?m)^27 images: 27 copied, 0 skipped, 0 failed; verified; `),
		regexp.MustCompile(`(?m)^27 images: 0 copied, 27 skipped, 0 failed; verified; `),
		regexp.MustCompile(`(?m)^== the second run copied nothing`),
	}
	last := 0
	for _, re := range want {
		loc := re.FindStringIndex(out.String()[last:])
		if loc == nil {
			t.Errorf("make demo's output lacks, after what came before, %s", re)
			continue
		}
		last += loc[1]
	}
	entries, err := os.ReadDir(bin)
	if err != nil {
		t.Fatal(err)
	}
	var built []string
	for _, e := range entries {
		built = append(built, e.Name())
	}
	if strings.Join(built, " ") != "demo regmigrate" {
		t.Errorf("make demo built %v: want regmigrate and the demo alone", built)
	}

	// The demo itself, with nothing on PATH.
	demo := exec.Command(filepath.Join(bin, "demo"), "--regmigrate", filepath.Join(bin, "regmigrate"))
	demo.Env = []string{"PATH=" + t.TempDir(), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir()}
	b, err := demo.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "== the second run copied nothing") {
		t.Errorf("the demo with an empty PATH: %v\n%s", err, b)
	}
}

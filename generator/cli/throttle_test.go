package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/contract"
)

// Bad throttles and Hub settings are the user's mistake (exit 2), said
// with what to write instead, before any registry is reached.
func TestThrottleAndHubMistakesSayWhatToWrite(t *testing.T) {
	t.Parallel()
	spec := filepath.Join(t.TempDir(), "migration.yaml")
	if err := os.WriteFile(spec, []byte("source:\n  registry: legacy.invalid:5000\n  bandwidth: 50 megs\ntarget:\n  registry: new.invalid:5000\n  rateLimit: lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--from", "a.invalid:5000", "--to", "b.invalid:5000", "--rate-limit", "fast"}, []string{`rate "fast": want N/s`}},
		{[]string{"run", "--from", "a.invalid:5000", "--to", "b.invalid:5000", "--bandwidth", "50 megs/s"}, []string{`unknown unit "megs"`, "100Mbit/s"}},
		{[]string{"run", "--from", "a.invalid:5000", "--to", "b.invalid:5000", "--rate-limit", "c.invalid=5/s"}, []string{"c.invalid is neither the source (a.invalid:5000) nor the target (b.invalid:5000)"}},
		{[]string{"run", "--from", "docker.io", "--to", "b.invalid:5000"}, []string{"Docker Hub, which has no catalog", "--hub-org ORG"}},
		{[]string{"run", "--from", "a.invalid:5000", "--hub-org", "acme/web", "--to", "b.invalid:5000"}, []string{`source.hub.org "acme/web": want one organisation`}},
		{[]string{"run", "-f", spec}, []string{"migration.yaml:3: source.bandwidth", "migration.yaml:6: target.rateLimit"}},
		{[]string{"generate", "--from", "a.invalid:5000", "--to", "b.invalid:5000", "--rate-limit", "20/s", "--image-tag", "v1"}, []string{"give --shard-parallelism N"}},
	} {
		code, _, stderr := runWithStdin(t, "", tc.args...)
		if code != contract.ExitUsage {
			t.Errorf("%v: exit %d, want %d", tc.args, code, contract.ExitUsage)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, w, stderr)
			}
		}
	}
}

// generate gives each pod its share of the throttle, and says so on the pods.
func TestGenerateDividesTheThrottleAmongTheShards(t *testing.T) {
	t.Parallel()
	code, stdout, _ := runWithStdin(t, "", "generate", "--from", "docker.io/acme", "--to", "b.invalid:5000", "--image-tag", "v1",
		"--rate-limit", "docker.io=40/s", "--bandwidth", "100MiB/s", "--shard-parallelism", "4", "--no-library-namespace")
	if code != contract.ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"--rate-limit=docker.io=10/s", "--bandwidth=docker.io=25MiB/s", "--bandwidth=b.invalid:5000=25MiB/s",
		"regmigrate.io/throttle:", "--no-library-namespace", "--from="} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the Workflow lacks %q", want)
		}
	}
}

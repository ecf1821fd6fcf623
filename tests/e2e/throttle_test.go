package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// A throttled run (both registries: requests and bytes) copies every
// shard completely and says what it is throttled to; the limits are one
// per registry for the whole run (BenchmarkThrottle in steps/registry
// measures how closely they hold).
func TestRunThrottledCopiesEveryShard(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, src, regtest.Corpus{Namespaces: []string{"ns1", "ns2", "ns3"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 64 << 10, MultiArch: true})
	out := filepath.Join(t.TempDir(), "run")
	code, _, stderr := runCLI(t, nil, "run", "--from", src.Host, "--to", dst.Host, "--insecure", "--out", out, "--progress", "none",
		"--rate-limit", "300/s", "--bandwidth", src.Host+"=8MiB/s", "--min-shard-size", "1")
	if code != contract.ExitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	assertMirrored(t, dst.Host, seeded.Tags)
	for _, want := range []string{"throttled: ", src.Host + ": 300/s, 8MiB/s", dst.Host + ": 300/s"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if rep := readReport(t, out); rep.Copied != len(seeded.Tags) || !rep.Verified {
		t.Errorf("copied %d of %d, verified %v", rep.Copied, len(seeded.Tags), rep.Verified)
	}
}

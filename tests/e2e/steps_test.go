package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/stepcli"
	"github.com/regmigrate/regmigrate/steps/stepcli/backfillcmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/exportcmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/mirrorcmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/verifycmd"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

func runStep(t *testing.T, env map[string]string, step string, args ...string) int {
	t.Helper()
	var out, errb bytes.Buffer
	run := map[string]stepcli.RunFunc{
		contract.StepExport: exportcmd.Run, contract.StepMirror: mirrorcmd.Run,
		contract.StepVerify: verifycmd.Run, contract.StepBackfill: backfillcmd.Run,
	}[step]
	code := stepcli.Main(context.Background(), stepcli.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}, step, run, args)
	t.Logf("%s %s -> %d\n%s%s", step, strings.Join(args, " "), code, out.String(), errb.String())
	return code
}

// TestStepsPipelineAsArgoRunsIt runs the step commands one after the other,
// as the Argo pods do: export, mirror-shard and verify per shard, then the
// aggregate verify. A rerun of a shard is idempotent.
func TestStepsPipelineAsArgoRunsIt(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, src, regtest.Corpus{Namespaces: []string{"alpha", "beta"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 16 << 10, MultiArch: true, Signature: true})
	dir := t.TempDir()
	progressFile := filepath.Join(t.TempDir(), "progress")
	outputs := t.TempDir()
	env := map[string]string{"ARGO_PROGRESS_FILE": progressFile, "REGMIGRATE_OUTPUTS_DIR": outputs}

	if code := runStep(t, env, contract.StepExport, "--from", src.Host, "--to", dst.Host, "--insecure", src.Host+","+dst.Host,
		"--out", dir, "--min-shard-size", "1"); code != contract.ExitOK {
		t.Fatalf("export exit %d", code)
	}
	var ids []string
	b, err := os.ReadFile(filepath.Join(dir, contract.ShardIDsParam))
	if err != nil || json.Unmarshal(b, &ids) != nil || len(ids) != 2 {
		t.Fatalf("shard-ids.json %q (%v): want one shard per namespace", b, err)
	}
	for _, id := range ids {
		sd := filepath.Join(dir, contract.ShardsDir, id)
		if code := runStep(t, env, contract.StepMirror, "--shard-dir", sd, "--insecure", src.Host+","+dst.Host); code != contract.ExitOK {
			t.Fatalf("mirror-shard %s exit %d", id, code)
		}
		if got, _ := os.ReadFile(filepath.Join(outputs, "failed")); string(got) != "0" {
			t.Errorf("output parameter failed=%q, want 0", got)
		}
		if p, _ := os.ReadFile(progressFile); !strings.Contains(string(p), "/") {
			t.Errorf("ARGO_PROGRESS_FILE holds %q, want N/M", p)
		}
		if code := runStep(t, env, contract.StepVerify, "--shard-dir", sd, "--insecure", src.Host+","+dst.Host); code != contract.ExitOK {
			t.Fatalf("verify %s exit %d", id, code)
		}
	}
	if code := runStep(t, env, contract.StepVerify, "--run-dir", dir); code != contract.ExitOK {
		t.Fatalf("aggregate verify exit %d", code)
	}
	rep := readReport(t, dir)
	if rep.Total != len(seeded.Tags) || rep.Failed != 0 || !rep.Verified {
		t.Errorf("report total %d failed %d verified %v, want %d verified", rep.Total, rep.Failed, rep.Verified, len(seeded.Tags))
	}
	assertMirrored(t, dst.Host, seeded.Tags)

	// A shard retried (Argo's node Retry) copies nothing again.
	sd := filepath.Join(dir, contract.ShardsDir, ids[0])
	if code := runStep(t, env, contract.StepMirror, "--shard-dir", sd, "--insecure", src.Host+","+dst.Host); code != contract.ExitOK {
		t.Fatalf("retry exit %d", code)
	}
	if got, _ := os.ReadFile(filepath.Join(outputs, "copied")); string(got) != "0" {
		t.Errorf("retried shard copied %q images, want 0", got)
	}
}

func TestStepsRejectBadFlagsWithUsageExit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		step string
		args []string
	}{
		{contract.StepExport, []string{"--from", "x"}},
		{contract.StepMirror, nil},
		{contract.StepVerify, []string{"--shard-dir", "a", "--run-dir", "b"}},
		{contract.StepVerify, []string{"--run-dir", "b", "--check-image-api"}},
		{contract.StepVerify, []string{"--shard-dir", "a", "--kubeconfig", "k"}}, // a cluster, but no --check-image-api
		{contract.StepVerify, []string{"--run-dir", t.TempDir()}},                // no shards.json: export did not run
		{contract.StepMirror, []string{"--shard-dir", "a", "--bogus"}},
	} {
		if code := runStep(t, nil, tc.step, tc.args...); code != contract.ExitUsage {
			t.Errorf("%s %v: exit %d, want %d", tc.step, tc.args, code, contract.ExitUsage)
		}
	}
}

//go:build e2e

package argoe2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/images/builder"
	"github.com/regmigrate/regmigrate/tests/regtest"
	"github.com/regmigrate/regmigrate/workflows"
)

// TestStepsFitTheirDefaultResources measures what the step pods really
// use, the way the large-layer test measures regmigrate: the step
// binaries, built as the images build them, run one after the other on a
// realistic shard between two real registries, and each one's peak
// resident set (VmHWM) is read from /proc while it runs. The shard is as
// large as export cuts by default (500 images): one namespace of 490 tags
// (49 repositories of 10, three layers each, one of 1 MiB of its own, a
// multi-arch index, a signature) and two images of a 256 MiB layer, about
// 1 GiB, copied 8 images at once (the default jobs). The default memory
// request must hold each step's peak with Argo's emissary beside it (a pod
// above its request is the first evicted when the node runs short) and the
// limit twice that. The figures are in the README ("Pod resources").
//
// It needs neither root nor the node: `go test -tags e2e -run
// TestStepsFitTheirDefaultResources ./tests/argoe2e/`.
func TestStepsFitTheirDefaultResources(t *testing.T) {
	ctx := context.Background()
	bins := buildSteps(t, "export", "mirror-shard", "verify")
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	start := time.Now()
	seeded, err := regtest.Seed(ctx, src.Host, src.RemoteOptions(), regtest.Corpus{
		Namespaces: []string{"big"}, ReposPerNS: 49, TagsPerRepo: 10, LayerSize: 1 << 20, MultiArch: true, Signature: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := regtest.PushLargeImage(ctx, src.Host, "big/huge", fmt.Sprintf("v%d", i), 256<<20); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seeded %d tags, %d MiB of distinct blobs and 512 MiB of large layers in %s", len(seeded.Tags)+2, seeded.Bytes>>20, time.Since(start).Round(time.Second))

	run, outputs := filepath.Join(t.TempDir(), "run"), t.TempDir()
	insecure := "--insecure=" + src.Host + "," + dst.Host
	peaks := map[string]int64{}
	step := func(name, bin string, args ...string) {
		t.Helper()
		start := time.Now()
		peak, out, err := peakRSS(bins[bin], outputs, append(args, "--log-format=json")...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		peaks[name] = peak
		t.Logf("%-14s peak RSS %4d MiB, %s", name, peak>>10, time.Since(start).Round(100*time.Millisecond))
	}
	step("export", "export", "--from="+src.Host, "--to="+dst.Host, insecure, "--out="+run, "--migration=resources")
	shards, err := os.ReadDir(filepath.Join(run, "shards"))
	if err != nil || len(shards) != 1 {
		t.Fatalf("export cut %d shards (%v), want the one namespace in one", len(shards), err)
	}
	shard := filepath.Join(run, "shards", shards[0].Name())
	step("mirror-shard", "mirror-shard", "--shard-dir="+shard, insecure)
	step("verify-shard", "verify", "--shard-dir="+shard, insecure)
	step("report", "verify", "--run-dir="+run)
	var report struct {
		Total, Copied int
		Verified      bool
	}
	b, _ := os.ReadFile(filepath.Join(run, "report.json"))
	if err := json.Unmarshal(b, &report); err != nil || !report.Verified || report.Copied < len(seeded.Tags) {
		t.Fatalf("the shard was not copied and verified whole: %+v %v", report, err)
	}

	request, limit := workflows.DefaultResources.Requests.Memory().Value()>>10, workflows.DefaultResources.Limits.Memory().Value()>>10
	for name, peak := range peaks {
		pod := peak + emissaryResident
		if pod > request || 2*pod > limit {
			t.Errorf("%s peaks at %d MiB, %d MiB with Argo's emissary beside it: the default memory request (%d MiB) must hold that and the limit (%d MiB) twice it",
				name, peak>>10, pod>>10, request>>10, limit>>10)
		}
	}
}

// emissaryResident (KiB) is what Argo's emissary (argoexec, v3.7.3), which
// runs the step in the pod's main container, keeps resident beside it:
// 75 MiB at most in scenario 1 of TestArgo (podMemory; its binary's pages
// mostly, which the container's memory cgroup is not charged for when the
// init container loaded them first: the cgroup peaked at 26 MiB there).
const emissaryResident = 80 << 10

// buildSteps builds step binaries as the images do (static, trimmed).
func buildSteps(t *testing.T, steps ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	for _, s := range steps {
		bin := filepath.Join(dir, s)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", builder.LDFlags("e2e"), "-o", bin, builder.StepPackage(s))
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", s, err, b)
		}
		out[s] = bin
	}
	return out
}

// peakRSS runs a binary and samples its own peak resident set (VmHWM, in
// KiB) until it exits. Not rusage's Maxrss: Go starts children with
// CLONE_VM, so that counts the parent.
func peakRSS(bin, outputs string, args ...string) (int64, string, error) {
	cmd := exec.Command(bin, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.Env = append(os.Environ(), "REGMIGRATE_OUTPUTS_DIR="+outputs)
	if err := cmd.Start(); err != nil {
		return 0, "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var peak int64
	for {
		select {
		case err := <-done:
			return peak, tail(buf.String()), err
		case <-tick.C:
			if v := vmHWM(cmd.Process.Pid); v > peak {
				peak = v
			}
		}
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

// vmHWM is a process's peak resident set in KiB (0 when it is gone).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

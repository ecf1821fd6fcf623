package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

type safetyReport struct {
	Total, Failed, Excluded int
	Verified                bool
	Interrupted             string
	ScopeErrors             []string
	Scope                   struct {
		Migration, Source, Target, Version string
		Command                            []string
		Inputs                             []struct{ Kind, Path, SHA256 string }
	}
}

func readSafetyReport(t *testing.T, path string) safetyReport {
	t.Helper()
	var r safetyReport
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// A list with one bad line: the good lines are copied, but the report
// records the scope error and fails (exit 1), and the cutover refuses it
// on a real kube-apiserver.
func TestABadLineFailsTheReportAndTheCutover(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seed(t, src, regtest.Corpus{Namespaces: []string{"team-a"}, ReposPerNS: 1, TagsPerRepo: 2, LayerSize: 1024})
	dir := t.TempDir()
	list := filepath.Join(dir, "images.txt")
	if err := os.WriteFile(list, []byte("team-a/app0:v0\nteam-a/app0:v1\nteam-a/Bad Name:v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	code, _, stderr := runCLI(t, nil, "run", "--from", src.Host, "--to", dst.Host, "--insecure", "--images", list, "--out", out, "--progress", "none")
	if code != contract.ExitFailed || !strings.Contains(stderr, "images.txt:3") {
		t.Fatalf("exit %d: want 1 and the bad line named (images.txt:3)", code)
	}
	rep := readSafetyReport(t, filepath.Join(out, contract.ReportJSON))
	if len(rep.ScopeErrors) != 1 || !strings.Contains(rep.ScopeErrors[0], "images.txt:3") || rep.Total != 2 {
		t.Fatalf("report: %d images, scope errors %q: want the 2 good lines and the bad one as a scope error", rep.Total, rep.ScopeErrors)
	}
	if rep.Scope.Source != src.Host || rep.Scope.Target != dst.Host || len(rep.Scope.Inputs) != 1 || !strings.HasPrefix(rep.Scope.Inputs[0].SHA256, "sha256:") || rep.Scope.Version == "" || len(rep.Scope.Command) == 0 {
		t.Errorf("report scope %+v: want source, target, the list by content, version and command", rep.Scope)
	}
	kc := kubeapi.Start(t).UserKubeconfig(t, "admin", "system:masters")
	code, _, stderr = runCLI(t, nil, "cutover", "--kubeconfig", kc, "--verify-report", filepath.Join(out, contract.ReportJSON), "--confirm")
	if code != contract.ExitFailed || !strings.Contains(stderr, "the scope had 1 error") {
		t.Errorf("cutover on a report with a scope error: exit %d, want 1 and the refusal", code)
	}
}

// A rerun in the run directory of an earlier run resumes its plan only if
// the scope is the same: a changed list is refused with what changed,
// --rediscover plans again; every invocation keeps its own record.
func TestResumingIsExplicitAndTheAuditTrailOnlyGrows(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seed(t, src, regtest.Corpus{Namespaces: []string{"team-a"}, ReposPerNS: 1, TagsPerRepo: 3, LayerSize: 1024})
	dir := t.TempDir()
	list := filepath.Join(dir, "images.txt")
	write := func(s string) {
		if err := os.WriteFile(list, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "run")
	run := func(extra ...string) (int, string) {
		code, _, stderr := runCLI(t, nil, append([]string{"run", "--from", src.Host, "--to", dst.Host, "--insecure", "--images", list, "--out", out, "--progress", "none"}, extra...)...)
		return code, stderr
	}
	write("team-a/app0:v0\n")
	if code, _ := run(); code != 0 {
		t.Fatalf("first run: exit %d", code)
	}
	write("team-a/app0:v0\nteam-a/app0:v1\n")
	code, stderr := run()
	if code != contract.ExitUsage || !strings.Contains(stderr, "changed since it was planned") || !strings.Contains(stderr, "--rediscover") {
		t.Fatalf("rerun with a changed list: exit %d, want 2 saying the list changed and --rediscover", code)
	}
	if code, _ := run("--rediscover"); code != 0 {
		t.Fatalf("--rediscover: exit %d", code)
	}
	if r := readSafetyReport(t, filepath.Join(out, contract.ReportJSON)); r.Total != 2 || !r.Verified {
		t.Errorf("after --rediscover: %d images verified=%v, want the 2 listed", r.Total, r.Verified)
	}
	code, stderr = run()
	if code != 0 || !regexp.MustCompile(`resuming the plan in .*: 2 images in 1 shards, planned at`).MatchString(stderr) {
		t.Errorf("an unchanged rerun: exit %d, want 0 and the resume line", code)
	}
	// Four invocations, four records; the three that ran each kept the
	// report they wrote, the refused one its log.
	runs, err := os.ReadDir(filepath.Join(out, contract.RunsDir))
	if err != nil || len(runs) != 4 {
		t.Fatalf("runs/: %d records (%v), want 4", len(runs), err)
	}
	reports := 0
	for _, r := range runs {
		if _, err := os.Stat(filepath.Join(out, contract.RunsDir, r.Name(), contract.ReportJSON)); err == nil {
			reports++
		}
		if _, err := os.Stat(filepath.Join(out, contract.RunsDir, r.Name(), "log.jsonl")); err != nil {
			t.Errorf("runs/%s has no log: %v", r.Name(), err)
		}
	}
	if reports != 3 {
		t.Errorf("%d records hold a report, want the 3 runs that got that far", reports)
	}
	// mirror.log kept the first run's copy.
	var lines int
	_ = filepath.WalkDir(out, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.Name() == contract.MirrorLog {
			lines += strings.Count(readFile(t, p), "Copied ")
		}
		return nil
	})
	if lines != 2 {
		t.Errorf("mirror.log holds %d copies, want 2: app0:v0 by the first run, app0:v1 by --rediscover", lines)
	}
}

// Two runs on one directory: the second is refused and names the holder.
func TestOneRunPerDirectory(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	unlock, err := artifacts.Lock(out, contract.LockFile, "regmigrate run --out elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	code, _, stderr := runCLI(t, nil, "run", "--from", "127.0.0.1:1", "--to", "127.0.0.1:2", "--insecure", "--out", out, "--progress", "none")
	if code != contract.ExitUsage || !strings.Contains(stderr, "is in use by regmigrate pid "+itoa(os.Getpid())) || !strings.Contains(stderr, "regmigrate run --out elsewhere") {
		t.Errorf("second run on a locked directory: exit %d, want 2 naming the holder", code)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// Empty scopes, the same registry on both sides and spec mistakes get the
// exit codes of the table in the README.
func TestExitCodesOfTheUsersMistakes(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seed(t, src, regtest.Corpus{Namespaces: []string{"team-a"}, ReposPerNS: 1, TagsPerRepo: 1, LayerSize: 1024})
	out := filepath.Join(t.TempDir(), "run")
	code, _, stderr := runCLI(t, nil, "run", "--from", src.Host, "--to", dst.Host, "--insecure", "--tag-regex", "^nothing-matches$", "--out", out, "--progress", "none")
	if code != contract.ExitOK || !strings.Contains(stderr, "nothing to migrate: the scope is empty (1 tags") {
		t.Errorf("empty scope: exit %d, want 0 and the reason", code)
	}
	kc := kubeapi.Start(t).UserKubeconfig(t, "admin", "system:masters")
	if code, _, stderr := runCLI(t, nil, "cutover", "--kubeconfig", kc, "--run-dir", out, "--confirm"); code == contract.ExitOK || !strings.Contains(stderr, "no images") {
		t.Errorf("cutover on an empty scope's report: exit %d, want a refusal", code)
	}
	if code, _, stderr := runCLI(t, nil, "run", "--from", src.Host, "--to", src.Host, "--insecure", "--out", t.TempDir(), "--progress", "none"); code != contract.ExitUsage || !strings.Contains(stderr, "the source and the target are both") {
		t.Errorf("--from = --to: exit %d, want 2", code)
	}
	spec := filepath.Join(t.TempDir(), "migration.yaml")
	if err := os.WriteFile(spec, []byte("apiVersion: regmigrate.io/v1alpha1\nkind: Migration\nsource:\n  registry: a.example\ntarget:\n  registry: b.example\n  insecur: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, nil, "run", "-f", spec); code != contract.ExitUsage || !strings.Contains(stderr, spec+":7: ") || !strings.Contains(stderr, `unknown field "insecur"`) {
		t.Errorf("a misspelt spec field: exit %d, want 2 naming %s:7", code, spec)
	}
	if err := os.WriteFile(spec, []byte("apiVersion: regmigrate.io/v1alpha1\nkind: Migration\nsource:\n  registry: a.example\ntarget:\n  registry: b.example\nstrategy: move\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, nil, "run", "-f", spec); code != contract.ExitUsage || !strings.Contains(stderr, spec+":7: strategy") {
		t.Errorf("a bad spec value: exit %d, want 2 naming %s:7", code, spec)
	}
}

// Ctrl-C (and SIGTERM) stop the real binary within seconds, with a partial
// report marked interrupted, the way to resume, and exit 130 (143); kill
// -9 loses no mirror.log line of an image that was copied.
func TestInterruptsAndKillKeepWhatWasDone(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	src := regtest.StartDistribution(t, regtest.Options{})
	seed(t, src, regtest.Corpus{Namespaces: []string{"team-a", "team-b"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 4096})
	// team-b's manifests never arrive (team-b's blobs are team-a's too, so
	// stalling those would hold team-a up): the run is still busy when the
	// signal comes, and team-a's images are copied by then.
	px := faultproxy.New(t, "http://"+src.Host, faultproxy.Fault{Method: "GET", PathRegex: regexp.MustCompile(`^/v2/team-b/.*/manifests/`), Kind: faultproxy.StallHeaders, Times: -1})
	for _, sig := range []struct {
		s    syscall.Signal
		code int
	}{{syscall.SIGINT, contract.ExitInterrupted}, {syscall.SIGTERM, contract.ExitTerminated}, {syscall.SIGKILL, -1}} {
		t.Run(sig.s.String(), func(t *testing.T) {
			dst := regtest.StartDistribution(t, regtest.Options{})
			out := filepath.Join(t.TempDir(), "run")
			cmd := exec.Command(bin, "run", "--from", px.Host, "--to", dst.Host, "--insecure", "--out", out, "--progress", "none", "--min-shard-size", "1")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait for team-a's four copies in mirror.log.
			log := filepath.Join(out, contract.ShardsDir, "ns-team-a", contract.MirrorLog)
			deadline := time.Now().Add(2 * time.Minute)
			for strings.Count(readFile(t, log), "Copied ") < 4 {
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					t.Fatalf("team-a not copied in time; stderr:\n%s", stderr.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			_ = cmd.Process.Signal(sig.s)
			err := cmd.Wait()
			code := cmd.ProcessState.ExitCode()
			t.Logf("%v -> exit %d (%v)\n%s", sig.s, code, err, stderr.String())
			// Every line in mirror.log is an image the target holds.
			f, _ := os.Open(log)
			defer f.Close()
			sc := bufio.NewScanner(f)
			n := 0
			for sc.Scan() {
				_, ref, ok := strings.Cut(sc.Text(), " -> ")
				if !ok {
					continue
				}
				n++
				r, err := name.ParseReference(ref, name.Insecure)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := remote.Head(r, remote.WithContext(context.Background())); err != nil {
					t.Errorf("mirror.log says %s was copied, the target says %v", ref, err)
				}
			}
			if n < 4 {
				t.Errorf("mirror.log has %d copies after %v, want team-a's 4", n, sig.s)
			}
			if sig.code < 0 {
				return // kill -9: nothing else can be asked of it
			}
			if code != sig.code {
				t.Errorf("exit %d after %v, want %d", code, sig.s, sig.code)
			}
			if !strings.Contains(stderr.String(), "resume with the same command and --out "+out) || strings.Count(stderr.String(), "image failed") > 0 {
				t.Errorf("stderr should say how to resume, once, without an error per image:\n%s", stderr.String())
			}
			rep := readSafetyReport(t, filepath.Join(out, contract.ReportJSON))
			if rep.Interrupted == "" || rep.Verified {
				t.Errorf("report after %v: interrupted %q verified %v, want marked interrupted, not verified", sig.s, rep.Interrupted, rep.Verified)
			}
		})
	}
}

// A resumed plan is not exported again, and is still preflighted: with the
// target gone, the rerun stops with one line naming it, nothing copied.
func TestAResumedRunIsPreflighted(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seed(t, src, regtest.Corpus{Namespaces: []string{"team-a"}, ReposPerNS: 1, TagsPerRepo: 2, LayerSize: 1024})
	px := faultproxy.New(t, "http://"+dst.Host)
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"run", "--from", src.Host, "--to", px.Host, "--insecure", "--out", out, "--progress", "none"}
	if code, _, _ := runCLI(t, nil, args...); code != contract.ExitOK {
		t.Fatalf("first run: exit %d", code)
	}
	px.Close()
	code, _, stderr := runCLI(t, nil, args...)
	if code != contract.ExitRetryable || !strings.Contains(stderr, "preflight: target registry "+px.Host+" cannot be reached") || strings.Contains(stderr, "resuming the plan") {
		t.Errorf("rerun with the target down: exit %d, want 75 and the one preflight line before any resume", code)
	}
}

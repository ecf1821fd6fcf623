// Package e2e runs the regmigrate CLI end to end against real registry
// processes (the CNCF distribution registry from Debian's docker-registry),
// as a user would, and checks what a user would check.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/generator/cli"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// runCLI runs `regmigrate args...` in-process and returns exit code, stdout, stderr.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), cli.Env{
		Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return env[k] },
	}, args)
	t.Logf("regmigrate %s -> %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

type reportJSON struct {
	Total, Copied, Skipped, Failed int
	Bytes                          int64
	Verified                       bool
	Images                         []struct {
		Source, Target, Digest, Status, Error string
		Bytes                                 int64
	}
}

func readReport(t *testing.T, dir string) reportJSON {
	t.Helper()
	var r reportJSON
	b, err := os.ReadFile(filepath.Join(dir, contract.ReportJSON))
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// assertMirrored checks every seeded tag on the target against its source digest.
func assertMirrored(t *testing.T, dst string, seeded map[string]string, opts ...remote.Option) {
	t.Helper()
	for ref, want := range seeded {
		r, err := name.ParseReference(dst+"/"+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		d, err := remote.Head(r, opts...)
		if err != nil {
			t.Errorf("%s missing on the target: %v", ref, err)
			continue
		}
		if d.Digest.String() != want {
			t.Errorf("%s: target digest %s, source %s", ref, d.Digest, want)
		}
	}
}

func seed(t *testing.T, reg *regtest.Registry, c regtest.Corpus) regtest.Seeded {
	t.Helper()
	s, err := regtest.Seed(context.Background(), reg.Host, []remote.Option{remote.WithAuthFromKeychain(reg.Keychain()), remote.WithTransport(reg.Transport())}, c)
	if err != nil {
		t.Fatalf("seeding %s: %v", reg.Host, err)
	}
	return s
}

var smallCorpus = regtest.Corpus{
	Namespaces: []string{"team-a", "team-b", "team-c"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 32 << 10,
	MultiArch: true, Nested: true, Signature: true, HelmChart: true,
}

func TestRunWholeRegistryThenRerunSkipsEverything(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, src, smallCorpus)
	// Count what the source serves: each unique blob must be read once.
	px := faultproxy.New(t, "http://"+src.Host)

	out := filepath.Join(t.TempDir(), "run-1")
	code, stdout, _ := runCLI(t, nil, "run", "--from", px.Host, "--to", dst.Host, "--insecure", "--out", out, "--progress", "none")
	if code != contract.ExitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	if want := fmt.Sprintf("%d images: %d copied, 0 skipped, 0 failed; verified; ", len(seeded.Tags), len(seeded.Tags)); !strings.Contains(stdout, want) {
		t.Errorf("summary line %q missing from stdout:\n%s", want, stdout)
	}
	assertMirrored(t, dst.Host, seeded.Tags)
	rep := readReport(t, out)
	if rep.Total != len(seeded.Tags) || rep.Copied != len(seeded.Tags) || rep.Failed != 0 || !rep.Verified {
		t.Errorf("report total %d copied %d failed %d verified %v, want %d copied and verified", rep.Total, rep.Copied, rep.Failed, rep.Verified, len(seeded.Tags))
	}
	if got := px.Stats().BlobBytes; got != seeded.Bytes {
		t.Errorf("source served %d blob bytes, the unique blobs are %d: each blob must be read once", got, seeded.Bytes)
	}
	for _, f := range []string{"images.txt", "digests.txt", "shards.json", "report.json", "report.md"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("run directory lacks %s", f)
		}
	}
	shards, _ := filepath.Glob(filepath.Join(out, "shards", "*", "mirror.log"))
	if len(shards) == 0 {
		t.Fatal("no shard mirror.log")
	}
	var logs string
	for _, s := range shards {
		b, _ := os.ReadFile(s)
		logs += string(b)
		for _, f := range []string{"images.txt", "mapping.txt", "mirror.json", "verify.json"} {
			if _, err := os.Stat(filepath.Join(filepath.Dir(s), f)); err != nil {
				t.Errorf("shard %s lacks %s", filepath.Base(filepath.Dir(s)), f)
			}
		}
	}
	if n := strings.Count(logs, "Copied "); n != len(seeded.Tags) {
		t.Errorf("mirror.log has %d Copied lines, want %d", n, len(seeded.Tags))
	}

	// The same command again against a complete target copies nothing.
	// -o name prints the run directory alone (for scripts), the summary
	// going to stderr.
	out2 := filepath.Join(t.TempDir(), "run-2")
	code, stdout, stderr := runCLI(t, nil, "run", "--from", px.Host, "--to", dst.Host, "--insecure", "--out", out2, "--progress", "none", "-o", "name")
	if code != contract.ExitOK {
		t.Fatalf("rerun exit %d", code)
	}
	if stdout != out2+"\n" {
		t.Errorf("-o name: stdout %q, want the run directory %s", stdout, out2)
	}
	if want := fmt.Sprintf("%d images: 0 copied, %d skipped, 0 failed; verified; 0 B moved in ", len(seeded.Tags), len(seeded.Tags)); !strings.Contains(stderr, want) {
		t.Errorf("-o name: stderr lacks the summary %q", want)
	}
	rep = readReport(t, out2)
	if rep.Skipped != rep.Total || rep.Copied != 0 || rep.Bytes != 0 {
		t.Errorf("rerun: skipped %d of %d, copied %d, bytes %d: want everything skipped", rep.Skipped, rep.Total, rep.Copied, rep.Bytes)
	}
}

func TestRunSurvivesThrottlingResetsAndTruncatedBodies(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, src, regtest.Corpus{Namespaces: []string{"ns1", "ns2"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 256 << 10})
	blobs := regexp.MustCompile(`/blobs/sha256:`)
	manifests := regexp.MustCompile(`/manifests/`)
	px := faultproxy.New(t, "http://"+src.Host,
		faultproxy.Fault{Method: "GET", PathRegex: blobs, Kind: faultproxy.TruncateBody, Times: 3},
		faultproxy.Fault{Method: "GET", PathRegex: blobs, Kind: faultproxy.Reset, Times: 2},
		faultproxy.Fault{PathRegex: manifests, Kind: faultproxy.Status429, Times: 3, RetryAfter: "1"},
		faultproxy.Fault{PathRegex: manifests, Kind: faultproxy.Status503, Times: 3},
	)
	out := filepath.Join(t.TempDir(), "run")
	code, _, _ := runCLI(t, nil, "run", "--from", px.Host, "--to", dst.Host, "--insecure", "--out", out, "--progress", "none")
	if code != contract.ExitOK {
		t.Fatalf("exit %d, want 0 after retries", code)
	}
	if st := px.Stats(); st.Faults < 11 {
		t.Errorf("only %d faults injected, want 11: the test did not exercise the retries", st.Faults)
	}
	assertMirrored(t, dst.Host, seeded.Tags)
}

func TestRunFailedImageDoesNotStopOthersAndRerunFinishes(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, src, regtest.Corpus{Namespaces: []string{"good", "bad"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 16 << 10})
	// One repository's blobs answer 500 for good: every image there fails.
	broken := faultproxy.Fault{PathRegex: regexp.MustCompile(`^/v2/bad/app0/blobs/`), Kind: faultproxy.Status500, Times: -1}
	px := faultproxy.New(t, "http://"+src.Host, broken)

	list := filepath.Join(t.TempDir(), "images.txt")
	var lines []string
	for ref := range seeded.Tags {
		lines = append(lines, ref)
	}
	os.WriteFile(list, []byte(strings.Join(lines, "\n")+"\n"), 0o644)

	out := filepath.Join(t.TempDir(), "run")
	args := []string{"run", "--from", px.Host, "--to", dst.Host, "--insecure", "--images", list, "--out", out, "--progress", "none", "--retries", "2"}
	code, _, _ := runCLI(t, nil, args...)
	if code == contract.ExitOK {
		t.Fatal("exit 0 although a repository could not be read")
	}
	rep := readReport(t, out)
	var failed int
	for _, im := range rep.Images {
		if im.Status == contract.StatusFailed {
			failed++
			if !strings.Contains(im.Source, "bad/app0") {
				t.Errorf("%s failed (%s), only bad/app0 should", im.Source, im.Error)
			}
		}
	}
	if failed == 0 || rep.Copied != rep.Total-failed {
		t.Fatalf("copied %d failed %d of %d: the other images must be copied", rep.Copied, failed, rep.Total)
	}

	// The fault is removed; the rerun on the same run directory copies only what failed.
	px.SetFaults()
	code, _, _ = runCLI(t, nil, args...)
	if code != contract.ExitOK {
		t.Fatalf("rerun exit %d, want 0", code)
	}
	rep = readReport(t, out)
	if rep.Copied != failed || rep.Skipped != rep.Total-failed {
		t.Errorf("rerun copied %d skipped %d, want %d copied (the failed ones) and the rest skipped", rep.Copied, rep.Skipped, failed)
	}
	assertMirrored(t, dst.Host, seeded.Tags)
}

func TestRunTLSAndAuthNeverLeaksTheSecret(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{TLS: true, Auth: true})
	dst := regtest.StartDistribution(t, regtest.Options{TLS: true})
	seeded := seed(t, src, regtest.Corpus{Namespaces: []string{"secure"}, ReposPerNS: 1, TagsPerRepo: 2, LayerSize: 8 << 10})
	// One certs.d folder for both registries (neither is insecure: no
	// plain HTTP, verified TLS).
	certs := t.TempDir()
	for _, r := range []*regtest.Registry{src, dst} {
		if err := os.Symlink(filepath.Join(r.CertsDir, r.Host), filepath.Join(certs, r.Host)); err != nil {
			t.Fatal(err)
		}
	}

	cfgDir := t.TempDir()
	authfile := filepath.Join(cfgDir, "config.json")
	cfg := map[string]any{"auths": map[string]any{src.Host: map[string]string{"username": src.Username, "password": src.Password}}}
	b, _ := json.Marshal(cfg)
	os.WriteFile(authfile, b, 0o600)

	out := filepath.Join(t.TempDir(), "run")
	// Without credentials: a clear failure, not a hang or a panic.
	code, _, stderr := runCLI(t, nil, "run", "--from", src.Host, "--to", dst.Host, "--certs-dir", certs, "--out", out+"-anon", "--progress", "none")
	if code == contract.ExitOK || !strings.Contains(stderr, "401") {
		t.Errorf("anonymous run: exit %d, want a failure naming the 401 from the registry", code)
	}

	code, stdout, stderr := runCLI(t, map[string]string{"REGISTRY_AUTH_FILE": authfile}, "run", "--from", src.Host, "--to", dst.Host, "--certs-dir", certs, "--out", out, "--progress", "none", "-v")
	if code != contract.ExitOK {
		t.Fatalf("exit %d with credentials and the CA", code)
	}
	assertMirrored(t, dst.Host, seeded.Tags, remote.WithTransport(dst.Transport()))
	leaks := stdout + stderr
	filepath.Walk(out, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			leaks += readFile(t, p)
		}
		return nil
	})
	if strings.Contains(leaks, src.Password) {
		t.Error("the registry password appears in the output or the run directory")
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, _ := os.ReadFile(p)
	return string(b)
}

// A registry that stalls (no response, a body that stops) fails the images
// it stalls within the idle timeout, as retryable failures; the other
// images are copied, and a rerun finishes.
func TestRunStalledRegistryEndsAndOthersFinish(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, src, regtest.Corpus{Namespaces: []string{"good", "bad"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 16 << 10})
	px := faultproxy.New(t, "http://"+src.Host,
		faultproxy.Fault{Method: "GET", PathRegex: regexp.MustCompile(`^/v2/bad/app0/blobs/`), Kind: faultproxy.StallHeaders, Times: -1},
		faultproxy.Fault{Method: "GET", PathRegex: regexp.MustCompile(`^/v2/bad/app1/manifests/sha256:`), Kind: faultproxy.StallBody, StallAfter: 20, Times: -1})
	out := filepath.Join(t.TempDir(), "run")
	// The stalls last forever; the idle timeout is long enough that a
	// registry slowed by a busy machine is not taken for a stalled one
	// (400ms was, under a load average of 17 on 2 cores).
	args := []string{"run", "--from", px.Host, "--to", dst.Host, "--insecure", "--out", out, "--progress", "none", "--retries", "2", "--idle-timeout", "3s"}
	code, _, _ := runCLI(t, nil, args...)
	if code != contract.ExitRetryable {
		t.Fatalf("exit %d, want %d (stalls are worth a rerun)", code, contract.ExitRetryable)
	}
	rep := readReport(t, out)
	failed := 0
	for _, im := range rep.Images {
		if im.Status != contract.StatusFailed {
			continue
		}
		failed++
		if !strings.Contains(im.Source, "bad/app") || !strings.Contains(im.Error, "stalled") {
			t.Errorf("%s failed with %q; only bad/app0 and bad/app1 stall", im.Source, im.Error)
		}
	}
	if failed == 0 || rep.Copied != rep.Total-failed {
		t.Fatalf("copied %d failed %d of %d: the images that do not stall must be copied", rep.Copied, failed, rep.Total)
	}
	px.SetFaults()
	if code, _, _ := runCLI(t, nil, args...); code != contract.ExitOK {
		t.Fatalf("rerun exit %d, want 0", code)
	}
	assertMirrored(t, dst.Host, seeded.Tags)
}

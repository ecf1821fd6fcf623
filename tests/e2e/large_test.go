package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// buildCLI builds the regmigrate binary once per test binary, with
// regmigrate-argo-validate beside it as they are installed.
func buildCLI(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "regmigrate-bin-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "regmigrate")
		out, err := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
			"github.com/regmigrate/regmigrate/generator/cmd/regmigrate", "github.com/regmigrate/regmigrate/generator/cmd/regmigrate-argo-validate").CombinedOutput()
		if err != nil {
			cliErr = &buildError{out: string(out), err: err}
		}
	})
	if cliErr != nil {
		t.Fatalf("building regmigrate: %v", cliErr)
	}
	return cliPath
}

// runCommand runs cmd and returns its exit code, standard output and
// standard error; a command that cannot start fails the test.
func runCommand(t *testing.T, cmd *exec.Cmd) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// TestLargeLayerCopiesInFlatMemory copies one 1 GiB layer between two real
// registries with the real binary and checks the process's peak RSS: the
// blob is streamed, never held. A rerun with --verify full reads the layer
// back from the target and hashes it, in flat memory too.
func TestLargeLayerCopiesInFlatMemory(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	px := faultproxy.New(t, "http://"+dst.Host) // counts what the verification reads
	const size = 1 << 30
	digest, err := regtest.PushLargeImage(context.Background(), src.Host, "big/layer", "v1", size)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "--from", src.Host, "--to", px.Host, "--insecure", "--out", filepath.Join(t.TempDir(), "run"), "--progress", "none"}
	if rss := peakRSS(t, bin, args...); rss > 100*1024 {
		t.Errorf("peak RSS %d MiB copying a 1 GiB layer, want under 100 MiB (the blob must be streamed)", rss/1024)
	}
	assertMirrored(t, dst.Host, map[string]string{"big/layer:v1": digest})

	px.ResetStats()
	if rss := peakRSS(t, bin, append(args, "--verify", "full")...); rss > 100*1024 {
		t.Errorf("peak RSS %d MiB verifying a 1 GiB layer in full, want under 100 MiB (the blob must be streamed)", rss/1024)
	}
	if got := px.Stats().BlobBytes; got < size {
		t.Errorf("--verify full read %d bytes of blobs from the target, want the whole %d-byte layer", got, int64(size))
	}
}

// peakRSS runs the binary to its end and returns its own peak resident set
// in KiB (VmHWM, sampled until it exits; not rusage's Maxrss: Go starts
// children with CLONE_VM, so that counts the parent). It fails the test if
// the command fails.
func peakRSS(t *testing.T, bin string, args ...string) int64 {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var rss int64
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("regmigrate %s: %v\n%s", strings.Join(args, " "), err, buf.String())
			}
			t.Logf("regmigrate %s: peak RSS %d MiB\n%s", strings.Join(args, " "), rss/1024, tail(buf.Bytes()))
			return rss
		case <-tick.C:
			if v := vmHWM(cmd.Process.Pid); v > rss {
				rss = v
			}
		}
	}
}

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
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

// TestLargeLayerThroughLayoutInFlatMemory: a 1 GiB layer through both
// phases of a disconnected move with the real binary, registry -> oci:DIR
// (written, synced, renamed, then read and hashed again by the layout's
// full verification) and oci:DIR -> registry, each under 100 MiB of peak
// RSS, the digest the source's.
func TestLargeLayerThroughLayoutInFlatMemory(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	const size = 1 << 30
	digest, err := regtest.PushLargeImage(context.Background(), src.Host, "big/layer", "v1", size)
	if err != nil {
		t.Fatal(err)
	}
	media := filepath.Join(t.TempDir(), "export")
	if rss := peakRSS(t, bin, "run", "--from", src.Host, "--to", "oci:"+media, "--insecure", "--progress", "none"); rss > 100*1024 {
		t.Errorf("peak RSS %d MiB writing a 1 GiB layer to a layout, want under 100 MiB", rss/1024)
	}
	if rss := peakRSS(t, bin, "run", "--from", "oci:"+media, "--to", dst.Host, "--insecure", "--out", filepath.Join(t.TempDir(), "run"), "--progress", "none"); rss > 100*1024 {
		t.Errorf("peak RSS %d MiB pushing a 1 GiB layer from a layout, want under 100 MiB", rss/1024)
	}
	assertMirrored(t, dst.Host, map[string]string{"big/layer:v1": digest})
}

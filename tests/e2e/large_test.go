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

	"github.com/regmigrate/regmigrate/tests/regtest"
)

// buildCLI builds the regmigrate binary once per test binary.
func buildCLI(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "regmigrate-bin-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "regmigrate")
		out, err := exec.Command("go", "build", "-o", cliPath, "github.com/regmigrate/regmigrate/generator/cmd/regmigrate").CombinedOutput()
		if err != nil {
			cliErr = &buildError{out: string(out), err: err}
		}
	})
	if cliErr != nil {
		t.Fatalf("building regmigrate: %v", cliErr)
	}
	return cliPath
}

// TestLargeLayerCopiesInFlatMemory copies one 1 GiB layer between two real
// registries with the real binary and checks the process's peak RSS: the
// blob is streamed, never held.
func TestLargeLayerCopiesInFlatMemory(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	const size = 1 << 30
	digest, err := regtest.PushLargeImage(context.Background(), src.Host, "big/layer", "v1", size)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--from", src.Host, "--to", dst.Host, "--insecure", "--out", filepath.Join(t.TempDir(), "run"), "--progress", "none")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child's own peak (VmHWM, sampled until it exits). Not rusage's
	// Maxrss: Go starts children with CLONE_VM, so that counts the parent.
	var rss int64
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("regmigrate: %v\n%s", err, buf.String())
			}
			break wait
		case <-tick.C:
			if v := vmHWM(cmd.Process.Pid); v > rss {
				rss = v
			}
		}
	}
	out := buf.Bytes()
	t.Logf("peak RSS copying a 1 GiB layer: %d MiB\n%s", rss/1024, tail(out))
	if rss > 100*1024 {
		t.Errorf("peak RSS %d MiB copying a 1 GiB layer, want under 100 MiB (the blob must be streamed)", rss/1024)
	}
	assertMirrored(t, dst.Host, map[string]string{"big/layer:v1": digest})
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

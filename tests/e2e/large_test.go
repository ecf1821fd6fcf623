package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

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
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("regmigrate: %v\n%s", err, out)
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
	t.Logf("peak RSS copying a 1 GiB layer: %d MiB", rss/1024)
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

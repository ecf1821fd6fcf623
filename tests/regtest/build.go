package regtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/regmigrate/regmigrate/tests/buildcache"
)

// DistributionV3Version is the CNCF distribution release that
// DistributionV3Binary builds from the Go module proxy.
const DistributionV3Version = "v3.0.0"

// distributionV3Package is the registry command of DistributionV3Version.
const distributionV3Package = "github.com/distribution/distribution/v3/cmd/registry"

// BuildHint tells how to build, once, the programs regtest builds from
// source.
const BuildHint = "run `make deps` (go run ./tests/regtest/cmd/build-registries), which needs the Go module proxy"

// DistributionV3Binary returns the path of the CNCF distribution registry
// DistributionV3Version, <CacheDir>/distribution-v3.0.0/bin/registry,
// building it first if it is not there.
//
// The build is `GOBIN=<dir>/bin go install
// github.com/distribution/distribution/v3/cmd/registry@v3.0.0` in module
// mode, outside regmigrate's module, with CGO_ENABLED=0; its output goes to
// <dir>/build.log. An exclusive lock on <dir>/build.lock makes concurrent
// callers (parallel test packages) wait for one build rather than start
// their own. A cold build (modules downloaded, empty Go build cache) took
// 2m32s on 2 cores (5m22s beside a kube-apiserver build); a cached one
// costs a stat.
func DistributionV3Binary(ctx context.Context) (string, error) {
	cache, err := buildcache.Dir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "distribution-"+DistributionV3Version)
	bin := filepath.Join(dir, "bin", "registry")
	err = buildOnce(ctx, dir, bin, func(log *os.File) error {
		// Install into a temporary folder and rename: bin/ never holds half
		// a binary, even if the build is interrupted.
		tmp, err := os.MkdirTemp(dir, "gobin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if err := goCommand(ctx, dir, log, []string{"GOBIN=" + tmp},
			"install", "-trimpath", "-ldflags=-s -w -X github.com/distribution/distribution/v3/version.version="+DistributionV3Version,
			distributionV3Package+"@"+DistributionV3Version); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			return err
		}
		return os.Rename(filepath.Join(tmp, "registry"), bin)
	})
	if err != nil {
		return "", fmt.Errorf("%w: distribution %s: %v; %s", ErrMissingTool, DistributionV3Version, err, BuildHint)
	}
	return bin, nil
}

// buildOnce runs build unless bin is an executable file, holding an
// exclusive lock on <dir>/build.lock, with <dir>/build.log as the build's
// output. A failed build's error ends with the tail of that log.
func buildOnce(ctx context.Context, dir, bin string, build func(log *os.File) error) error {
	if isExecutable(bin) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	unlock, err := buildcache.Lock(ctx, filepath.Join(dir, "build.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if isExecutable(bin) { // built by someone else while we waited
		return nil
	}
	logPath := filepath.Join(dir, "build.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	start := time.Now()
	fmt.Fprintf(log, "[%s] building %s\n", start.Format(time.DateTime), bin)
	if err := build(log); err != nil {
		fmt.Fprintf(log, "[%s] failed after %s: %v\n", time.Now().Format(time.DateTime), time.Since(start).Round(time.Second), err)
		return fmt.Errorf("%w\n--- %s:\n%s", err, logPath, logTail(logPath, 4<<10))
	}
	fmt.Fprintf(log, "[%s] built %s in %s\n", time.Now().Format(time.DateTime), bin, time.Since(start).Round(time.Second))
	if !isExecutable(bin) {
		return fmt.Errorf("the build succeeded but left no %s (see %s)", bin, logPath)
	}
	return nil
}

// goCommand runs `go ARGS...` in dir, outside any workspace, with no
// inherited GOFLAGS, cgo off and no toolchain switching, plus env;
// everything it prints goes to log.
func goCommand(ctx context.Context, dir string, log *os.File, env []string, args ...string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	fmt.Fprintf(log, "[%s] %s go %s\n", time.Now().Format(time.TimeOnly), strings.Join(env, " "), strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, log, log
	cmd.Env = append(buildcache.GoEnv(), env...)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w", args[0], err)
	}
	return nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

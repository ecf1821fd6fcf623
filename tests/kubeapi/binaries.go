package kubeapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Versions of what the harness runs. kube-apiserver is built from the Go
// module proxy; its staging modules carry the matching v0 version.
const (
	K8sVersion     = "v1.33.13"
	stagingVersion = "v0.33.13"
)

// EtcdInstallHint tells how to get etcd.
const EtcdInstallHint = "install Debian's etcd-server: `apt-get install -y etcd-server` (puts etcd in /usr/bin)"

// CacheDir is the folder, outside the repository, that keeps built binaries
// and the state of `cluster-api up`: $REGMIGRATE_CACHE, else
// $HOME/.cache/regmigrate (os.UserCacheDir()/regmigrate).
func CacheDir() (string, error) {
	if d := os.Getenv("REGMIGRATE_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder: set REGMIGRATE_CACHE or HOME: %w", err)
	}
	return filepath.Join(d, "regmigrate"), nil
}

// EtcdBinary finds etcd on PATH.
func EtcdBinary() (string, error) {
	p, err := exec.LookPath("etcd")
	if err != nil {
		return "", fmt.Errorf("etcd not found on PATH: %s", EtcdInstallHint)
	}
	return p, nil
}

// APIServerBinary returns the path of kube-apiserver K8sVersion in
// <CacheDir>/k8s-<version>/bin, building it first if it is not there.
//
// The build happens once per machine: a wrapper module requires
// k8s.io/kubernetes and every staging module at their matching versions
// (k8s.io/kubernetes replaces them with ./staging, so `go install` refuses
// it), then `go build -trimpath` with CGO_ENABLED=0. An exclusive lock on
// <dir>/build.lock makes concurrent test binaries wait for one build rather
// than start their own. A cold build takes many minutes (see the package
// documentation); logf receives progress lines and may be nil.
func APIServerBinary(ctx context.Context, logf func(format string, args ...any)) (string, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "k8s-"+K8sVersion)
	bin := filepath.Join(dir, "bin", "kube-apiserver")
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, "build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if isExecutable(bin) { // built by someone else while we waited
		return bin, nil
	}

	start := time.Now()
	logf("building kube-apiserver %s into %s (once per machine; a cold build takes 10-20 min on 2 cores); log: %s",
		K8sVersion, bin, filepath.Join(dir, "build.log"))
	if err := buildAPIServer(ctx, dir, bin); err != nil {
		return "", err
	}
	logf("built kube-apiserver %s in %s", K8sVersion, time.Since(start).Round(time.Second))
	return bin, nil
}

func buildAPIServer(ctx context.Context, dir, bin string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	wrap := filepath.Join(dir, "kwrap")
	if err := os.MkdirAll(wrap, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "build.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	env := buildEnv()
	run := func(stdout *bytes.Buffer, args ...string) error {
		fmt.Fprintf(logFile, "[%s] go %s\n", time.Now().Format(time.TimeOnly), strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir, cmd.Env, cmd.Stderr = wrap, env, logFile
		cmd.Stdout = logFile
		if stdout != nil {
			cmd.Stdout = stdout
		}
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go %s: %w (see %s)", args[0], err, logPath)
		}
		return nil
	}

	// The staging modules are the replace targets in k8s.io/kubernetes' go.mod.
	var out bytes.Buffer
	if err := run(&out, "mod", "download", "-json", "k8s.io/kubernetes@"+K8sVersion); err != nil {
		return err
	}
	var dl struct{ GoMod string }
	if err := json.Unmarshal(out.Bytes(), &dl); err != nil || dl.GoMod == "" {
		return fmt.Errorf("go mod download k8s.io/kubernetes@%s: no go.mod in %q", K8sVersion, out.String())
	}
	staging, err := stagingModules(dl.GoMod)
	if err != nil {
		return err
	}
	var gomod strings.Builder
	fmt.Fprintf(&gomod, "module kwrap\n\ngo 1.24.0\n\nrequire (\n\tk8s.io/kubernetes %s\n", K8sVersion)
	for _, m := range staging {
		fmt.Fprintf(&gomod, "\t%s %s\n", m, stagingVersion)
	}
	gomod.WriteString(")\n")
	if err := os.WriteFile(filepath.Join(wrap, "go.mod"), []byte(gomod.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(wrap, "doc.go"), []byte("// Package kwrap only anchors the build of kube-apiserver.\npackage kwrap\n"), 0o644); err != nil {
		return err
	}
	// Fills go.sum and the indirect requirements. Never `go mod tidy` here:
	// nothing imports the requirements, tidy would drop them.
	if err := run(nil, "get", "k8s.io/kubernetes/cmd/kube-apiserver@"+K8sVersion); err != nil {
		return err
	}
	ld := "-s -w"
	for _, p := range []string{"k8s.io/client-go/pkg/version", "k8s.io/component-base/version"} {
		ld += fmt.Sprintf(" -X %[1]s.gitVersion=%[2]s -X %[1]s.gitMajor=1 -X %[1]s.gitMinor=33 -X %[1]s.gitTreeState=clean", p, K8sVersion)
	}
	tmp := bin + ".tmp"
	if err := run(nil, "build", "-trimpath", "-ldflags", ld, "-o", tmp, "k8s.io/kubernetes/cmd/kube-apiserver"); err != nil {
		return err
	}
	return os.Rename(tmp, bin)
}

// stagingModules lists the modules k8s.io/kubernetes' go.mod replaces with
// ./staging folders, without the sample-* ones.
func stagingModules(goModPath string) ([]string, error) {
	f, err := os.Open(goModPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mods []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(strings.TrimPrefix(s.Text(), "replace "))
		if len(fields) >= 3 && fields[1] == "=>" && strings.HasPrefix(fields[2], "./staging/") &&
			!strings.HasPrefix(fields[0], "k8s.io/sample-") {
			mods = append(mods, fields[0])
		}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("%s: no ./staging replacements found", goModPath)
	}
	return mods, nil
}

// buildEnv is the environment for the go command building the wrapper:
// no workspace, no inherited GOFLAGS, no cgo, no toolchain switching.
func buildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOFLAGS", "GOWORK", "CGO_ENABLED", "GOTOOLCHAIN", "GOOS", "GOARCH":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0", "GOTOOLCHAIN=local")
}

// lockFile takes an exclusive flock on path, waiting for it as long as ctx
// allows.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for %s (another build running?): %w", path, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

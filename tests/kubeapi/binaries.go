package kubeapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/regmigrate/regmigrate/tests/buildcache"
)

// Versions of what the harness runs. kube-apiserver is built from the Go
// module proxy; its staging modules carry the matching v0 version.
const (
	K8sVersion     = "v1.33.13"
	stagingVersion = "v0.33.13"
)

// EtcdInstallHint tells how to get etcd.
const EtcdInstallHint = "install Debian's etcd-server: `apt-get install -y etcd-server` (puts etcd in /usr/bin)"

// EtcdBinary finds etcd on PATH.
func EtcdBinary() (string, error) {
	p, err := exec.LookPath("etcd")
	if err != nil {
		return "", fmt.Errorf("etcd not found on PATH: %s", EtcdInstallHint)
	}
	return p, nil
}

// APIServerBinary returns the path of kube-apiserver K8sVersion in
// <CacheDir>/k8s-<version>/bin, building it first if it is not there (see
// BuildK8s). A cold build takes many minutes (see the package
// documentation); logf receives progress lines and may be nil.
func APIServerBinary(ctx context.Context, logf func(format string, args ...any)) (string, error) {
	cache, err := buildcache.Dir()
	if err != nil {
		return "", err
	}
	bin, err := BuildK8s(ctx, filepath.Join(cache, "k8s-"+K8sVersion), logf, "kube-apiserver")
	if err != nil {
		return "", err
	}
	return filepath.Join(bin, "kube-apiserver"), nil
}

// BuildK8s builds the commands k8s.io/kubernetes/cmd/<name> of K8sVersion
// into <dir>/bin in one `go build` (the packages they share are compiled
// once), unless every one of them is already there, and returns <dir>/bin.
//
// The build happens once per folder: a wrapper module in <dir>/kwrap
// requires k8s.io/kubernetes and every staging module at their matching
// versions (k8s.io/kubernetes replaces them with ./staging, so `go install`
// refuses it), then `go build -trimpath` with CGO_ENABLED=0 and
// GOFLAGS=-mod=mod (buildcache.GoEnv), the same for every folder, so that builds
// into different folders share the Go build cache. An exclusive lock on
// <dir>/build.lock makes concurrent callers wait for one build rather than
// start their own. The go command's output goes to <dir>/build.log.
func BuildK8s(ctx context.Context, dir string, logf func(format string, args ...any), names ...string) (string, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	bin := filepath.Join(dir, "bin")
	if allExecutable(bin, names) {
		return bin, nil
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	unlock, err := buildcache.Lock(ctx, filepath.Join(dir, "build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if allExecutable(bin, names) { // built by someone else while we waited
		return bin, nil
	}
	start := time.Now()
	logf("building %s %s into %s (once; a cold build takes 10-20 min on 2 cores); log: %s",
		strings.Join(names, ", "), K8sVersion, bin, filepath.Join(dir, "build.log"))
	if err := buildK8s(ctx, dir, bin, names); err != nil {
		return "", err
	}
	logf("built %s %s in %s", strings.Join(names, ", "), K8sVersion, time.Since(start).Round(time.Second))
	return bin, nil
}

func buildK8s(ctx context.Context, dir, bin string, names []string) error {
	wrap := filepath.Join(dir, "kwrap")
	if err := os.MkdirAll(wrap, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "build.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	run := func(stdout *bytes.Buffer, args ...string) error {
		return GoCommand(ctx, wrap, logFile, stdout, args...)
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
	if err := os.WriteFile(filepath.Join(wrap, "doc.go"), []byte("// Package kwrap only anchors the build of Kubernetes commands.\npackage kwrap\n"), 0o644); err != nil {
		return err
	}
	// Fills go.sum and the indirect requirements. Never `go mod tidy` here:
	// nothing imports the requirements, tidy would drop them.
	get := []string{"get"}
	pkgs := []string{}
	for _, n := range names {
		get = append(get, "k8s.io/kubernetes/cmd/"+n+"@"+K8sVersion)
		pkgs = append(pkgs, "k8s.io/kubernetes/cmd/"+n)
	}
	if err := run(nil, get...); err != nil {
		return err
	}
	ld := "-s -w"
	for _, p := range []string{"k8s.io/client-go/pkg/version", "k8s.io/component-base/version"} {
		ld += fmt.Sprintf(" -X %[1]s.gitVersion=%[2]s -X %[1]s.gitMajor=1 -X %[1]s.gitMinor=33 -X %[1]s.gitTreeState=clean", p, K8sVersion)
	}
	// Build into a temporary folder and rename: a folder never holds half a binary.
	tmp, err := os.MkdirTemp(dir, "bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := run(nil, append([]string{"build", "-trimpath", "-ldflags", ld, "-o", tmp + "/"}, pkgs...)...); err != nil {
		return err
	}
	for _, n := range names {
		if err := os.Rename(filepath.Join(tmp, n), filepath.Join(bin, n)); err != nil {
			return err
		}
	}
	return nil
}

// GoCommand runs `go ARGS...` in dir with buildcache.GoEnv, appending a line per
// command and its output to log; stdout, if not nil, receives the standard
// output instead.
func GoCommand(ctx context.Context, dir string, log io.Writer, stdout *bytes.Buffer, args ...string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	fmt.Fprintf(log, "[%s] go %s\n", time.Now().Format(time.TimeOnly), strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, buildcache.GoEnv(), log, log
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Run(); err != nil {
		name := "log"
		if f, ok := log.(*os.File); ok {
			name = f.Name()
		}
		return fmt.Errorf("go %s in %s: %w (see %s)", args[0], dir, err, name)
	}
	return nil
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

func allExecutable(dir string, names []string) bool {
	for _, n := range names {
		if !isExecutable(filepath.Join(dir, n)) {
			return false
		}
	}
	return true
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

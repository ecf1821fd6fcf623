package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/regmigrate/regmigrate/tests/buildcache"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
)

// Versions of what the node runs.
const (
	K8sVersion  = kubeapi.K8sVersion
	ArgoVersion = "v3.7.3"
)

// K8sCommands and ArgoCommands are the binaries Build makes. argo is the
// Argo CLI, whose `argo server` is the Argo Server (StartArgoServer).
var (
	K8sCommands  = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"}
	ArgoCommands = []string{"workflow-controller", "argoexec", "argo"}
)

// BinDir is the fixed, versioned folder outside the repository that keeps
// the Kubernetes and Argo binaries: <CacheDir>/e2e-k8s-<v>-argo-<v>/bin.
func BinDir() (string, error) {
	cache, err := buildcache.Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "e2e-k8s-"+K8sVersion+"-argo-"+ArgoVersion, "bin"), nil
}

// Build builds the Kubernetes and Argo binaries from the Go module proxy
// into BinDir, unless they are there already, and returns BinDir. Cold, it
// takes about 20 minutes on 2 cores (Argo in one `go build`, then
// Kubernetes in one); warm, nothing. Progress goes to logf.
func Build(ctx context.Context, logf func(string, ...any)) (string, error) {
	bin, err := BinDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(bin)
	if err := buildArgo(ctx, dir, logf); err != nil {
		return "", err
	}
	if _, err := kubeapi.BuildK8s(ctx, dir, logf, K8sCommands...); err != nil {
		return "", err
	}
	return bin, nil
}

// buildArgo builds Argo's controller, executor and CLI into <dir>/bin.
//
// They do not build from the module as downloaded: a symlink
// (signal_linux.go -> signal_darwin.go) is dropped from module zips, and
// cmd/argo embeds ui/dist/app, which the zip lacks. So the module is copied
// to <dir>/argo-src with both fixed, and a wrapper module (<dir>/argowrap)
// replaces the module with that copy.
func buildArgo(ctx context.Context, dir string, logf func(string, ...any)) error {
	bin := filepath.Join(dir, "bin")
	if allExecutable(bin, ArgoCommands) {
		return nil
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	unlock, err := buildcache.Lock(ctx, filepath.Join(dir, "build.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if allExecutable(bin, ArgoCommands) {
		return nil
	}
	start := time.Now()
	logPath := filepath.Join(dir, "build-argo.log")
	logf("building Argo %s (%s) into %s (once; cold ~7 min on 2 cores); log: %s", ArgoVersion, strings.Join(ArgoCommands, ", "), bin, logPath)
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	wrap := filepath.Join(dir, "argowrap")
	if err := os.MkdirAll(wrap, 0o755); err != nil {
		return err
	}
	const mod = "github.com/argoproj/argo-workflows/v3"
	var out bytes.Buffer
	if err := kubeapi.GoCommand(ctx, wrap, log, &out, "mod", "download", "-json", mod+"@"+ArgoVersion); err != nil {
		return err
	}
	var dl struct{ Dir string }
	if err := json.Unmarshal(out.Bytes(), &dl); err != nil || dl.Dir == "" {
		return fmt.Errorf("go mod download %s@%s: no folder in %q", mod, ArgoVersion, out.String())
	}
	src := filepath.Join(dir, "argo-src")
	if err := os.RemoveAll(src); err != nil {
		return err
	}
	if err := os.CopyFS(src, os.DirFS(dl.Dir)); err != nil {
		return fmt.Errorf("copy %s: %w", dl.Dir, err)
	}
	osdir := filepath.Join(src, "workflow", "executor", "osspecific")
	fixes := []struct{ path, from string }{
		{filepath.Join(osdir, "signal_linux.go"), filepath.Join(osdir, "signal_darwin.go")},
		{filepath.Join(src, "ui", "dist", "app", "index.html"), ""},
	}
	for _, f := range fixes {
		b := []byte("<html></html>\n")
		if f.from != "" {
			if b, err = os.ReadFile(f.from); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f.path, b, 0o644); err != nil {
			return err
		}
	}
	gomod := fmt.Sprintf("module argowrap\n\ngo 1.24.4\n\nrequire %s %s\n\n"+
		"// Argo's own replace.\nreplace github.com/olekukonko/tablewriter => github.com/olekukonko/tablewriter v0.0.5\n\n"+
		"replace %s => ../argo-src\n", mod, ArgoVersion, mod)
	if err := os.WriteFile(filepath.Join(wrap, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(wrap, "doc.go"), []byte("// Package argowrap only anchors the build of Argo's commands.\npackage argowrap\n"), 0o644); err != nil {
		return err
	}
	get, pkgs := []string{"get"}, []string{}
	for _, c := range ArgoCommands {
		get = append(get, mod+"/cmd/"+c+"@"+ArgoVersion)
		pkgs = append(pkgs, mod+"/cmd/"+c)
	}
	if err := kubeapi.GoCommand(ctx, wrap, log, nil, get...); err != nil {
		return err
	}
	ld := fmt.Sprintf("-s -w -X %[1]s.version=%[2]s -X %[1]s.gitTreeState=clean", mod, ArgoVersion)
	tmp, err := os.MkdirTemp(dir, "bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := kubeapi.GoCommand(ctx, wrap, log, nil, append([]string{"build", "-trimpath", "-ldflags", ld, "-o", tmp + "/"}, pkgs...)...); err != nil {
		return err
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	for _, c := range ArgoCommands {
		if err := os.Rename(filepath.Join(tmp, c), filepath.Join(bin, c)); err != nil {
			return err
		}
	}
	logf("built Argo %s in %s", ArgoVersion, time.Since(start).Round(time.Second))
	return nil
}

func allExecutable(dir string, names []string) bool {
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

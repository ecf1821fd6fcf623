package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/nodemirror"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// startContainerd starts a containerd of its own (its root, state and
// socket in dir; no CRI) and returns its socket.
func startContainerd(t *testing.T, dir string) string {
	t.Helper()
	bin, err := exec.LookPath("containerd")
	if err != nil {
		t.Fatal("containerd is not installed: run make deps (or apt-get install containerd); the node mirror is checked by containerd's own resolver")
	}
	if os.Geteuid() != 0 {
		t.Fatal("containerd needs root: run the tests as root; the node mirror is checked by containerd's own resolver")
	}
	sock := filepath.Join(dir, "c.sock")
	cfg := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n[ttrpc]\n  address = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		log.Close()
	})
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if i == 300 {
			b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Fatalf("containerd did not listen on %s:\n%s", sock, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return sock
}

// fetch pulls an image's content with containerd's resolver (ctr content
// fetch), reading registry hosts from hostsDir, and returns the digest it
// resolved.
func fetch(t *testing.T, sock, hostsDir, ref string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", "--address", sock, "--namespace", "regmigrate", "content", "fetch", "--hosts-dir", hostsDir, ref).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ctr content fetch %s: %v\n%s", ref, err, out)
	}
	ls, err := exec.CommandContext(ctx, "ctr", "--address", sock, "--namespace", "regmigrate", "images", "ls").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ctr images ls: %v\n%s", err, ls)
	}
	for _, line := range strings.Split(string(ls), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[0] == ref {
			return f[2], nil
		}
	}
	return "", fmt.Errorf("ctr images ls has no %s:\n%s", ref, ls)
}

// TestNodeMirrorPullsFromTheTargetOnceTheLegacyRegistryIsGone: the
// hosts.toml regmigrate generates, written by its node installer where
// containerd reads registry hosts, makes containerd's own resolver fetch
// an image named by the legacy registry from the new one (over TLS with
// the CA it carries) after the legacy registry was stopped; without it
// (before, and after the installer removed it) the same fetch fails.
func TestNodeMirrorPullsFromTheTargetOnceTheLegacyRegistryIsGone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := startContainerd(t, dir)

	ctx, stopLegacy := context.WithCancel(context.Background())
	defer stopLegacy()
	legacy, legacyCmd, err := regtest.StartDistributionProcess(ctx, regtest.ProcOptions{Dir: filepath.Join(dir, "legacy")})
	if err != nil {
		t.Fatal(err)
	}
	target := regtest.StartDistribution(t, regtest.Options{TLS: true})
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	// The migration copied it: the same image on both.
	for _, r := range []*regtest.Registry{legacy, target} {
		ref, _ := name.ParseReference(r.Host + "/shop/api:v1")
		if err := remote.Write(ref, img, r.RemoteOptions()...); err != nil {
			t.Fatal(err)
		}
	}
	stopLegacy()
	legacyCmd.Wait()
	ref := legacy.Host + "/shop/api:v1"

	hostsDir := filepath.Join(dir, "certs.d")
	if err := os.MkdirAll(hostsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(t, sock, hostsDir, ref); err == nil {
		t.Fatal("fetched from a stopped legacy registry without the mirror: the test proves nothing")
	}

	ca, err := os.ReadFile(target.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := nodemirror.Config{Legacy: imageref.Location{Registry: legacy.Host}, Target: imageref.Location{Registry: target.Host}, CA: ca, ConfigPath: hostsDir}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	// The ConfigMap as a pod mounts it: files behind ..data links.
	src := filepath.Join(dir, "configmap")
	data := filepath.Join(src, "..2026_11_30")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, b := range cfg.Files() {
		if err := os.WriteFile(filepath.Join(data, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("..2026_11_30", filepath.Join(src, "..data")); err != nil {
		t.Fatal(err)
	}
	for n := range cfg.Files() {
		if err := os.Symlink(filepath.Join("..data", n), filepath.Join(src, n)); err != nil {
			t.Fatal(err)
		}
	}
	podCtx, stopPod := context.WithCancel(context.Background())
	installed := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- nodemirror.Install(podCtx, src, cfg.HostDir(), func() { close(installed) }) }()
	select {
	case <-installed:
	case err := <-done:
		t.Fatalf("the installer ended: %v", err)
	}
	got, err := fetch(t, sock, hostsDir, ref)
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(cfg.HostDir(), nodemirror.HostsFile))
		t.Fatalf("with the mirror: %v\nhosts.toml:\n%s", err, b)
	}
	if got != want.String() {
		t.Errorf("fetched %s, want the migrated image %s", got, want)
	}

	// The pod stops (the DaemonSet deleted on rollback): the installer
	// removes what it wrote, and the legacy name no longer resolves.
	stopPod()
	if err := <-done; err != nil {
		t.Fatalf("the installer's cleanup: %v", err)
	}
	if _, err := os.Stat(cfg.HostDir()); !os.IsNotExist(err) {
		t.Errorf("%s is still there after the installer stopped: %v", cfg.HostDir(), err)
	}
	if out, err := exec.Command("ctr", "--address", sock, "--namespace", "regmigrate", "images", "rm", ref).CombinedOutput(); err != nil {
		t.Fatalf("ctr images rm: %v\n%s", err, out)
	}
	if _, err := fetch(t, sock, hostsDir, ref); err == nil {
		t.Error("fetched from the stopped legacy registry after the mirror was removed")
	}
}

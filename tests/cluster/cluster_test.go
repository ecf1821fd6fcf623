package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestPreflightSaysWhatToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Preflight()
	if err == nil {
		t.Fatal("Preflight passed without containerd, runc, iptables... on PATH")
	}
	for _, want := range []string{"apt-get install -y containerd", "apt-get install -y runc", "apt-get install -y iptables"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Preflight: %v\nwant %q", err, want)
		}
	}
}

func TestDownWithoutANodeDoesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := Down(dir, t.Logf); err != nil {
		t.Fatal(err)
	}
	if err := Down(filepath.Join(dir, "missing"), nil); err != nil {
		t.Fatal(err)
	}
}

func TestStopByPIDFileLeavesOthersAlone(t *testing.T) {
	dir := t.TempDir()
	// A process whose command line does not name dir is not ours (a PID reused).
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	os.WriteFile(filepath.Join(dir, "x.pid"), []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o644)
	if err := stopByPIDFile(dir, "x", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !alive(other.Process.Pid) {
		t.Error("a process not started from the state folder was stopped")
	}
	if _, err := os.Stat(filepath.Join(dir, "x.pid")); !os.IsNotExist(err) {
		t.Error("the PID file stays")
	}
	// One that names dir is stopped.
	ours := exec.Command("sh", "-c", "sleep 60; : "+dir)
	ours.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := ours.Start(); err != nil {
		t.Fatal(err)
	}
	go ours.Wait()
	os.WriteFile(filepath.Join(dir, "y.pid"), []byte(strconv.Itoa(ours.Process.Pid)+"\n"), 0o644)
	if err := stopByPIDFile(dir, "y", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if alive(ours.Process.Pid) {
		t.Error("the state folder's process still runs")
	}
}

func TestBinDirIsVersioned(t *testing.T) {
	t.Setenv("REGMIGRATE_CACHE", "/cache")
	if d, _ := BinDir(); d != "/cache/e2e-k8s-"+K8sVersion+"-argo-"+ArgoVersion+"/bin" {
		t.Errorf("BinDir = %s", d)
	}
}

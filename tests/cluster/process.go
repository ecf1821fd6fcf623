package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/regmigrate/regmigrate/tests/kubeapi"
)

// stopGrace is how long a process has after its stop signal before SIGKILL.
const stopGrace = 15 * time.Second

// start starts cmd as the node's process name: its output goes to
// <Dir>/<name>.log, its PID to <Dir>/<name>.pid. Detached processes start
// a session of their own and outlive the caller (node up); the others get
// SIGKILL when the caller dies (tests).
func (n *Node) start(name string, cmd *exec.Cmd) error {
	log, err := os.OpenFile(filepath.Join(n.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Fprintf(log, "+ %s\n", strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = log, log
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if n.detach {
		cmd.SysProcAttr.Setsid = true
	} else {
		cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pdeathsig = true, syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	go cmd.Wait() // reap it; detached ones are reaped by init once we exit
	return os.WriteFile(filepath.Join(n.Dir, name+".pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644)
}

// stopByPIDFile stops the process <dir>/<name>.pid names, if it still runs
// and is ours (its command line mentions dir: PIDs get reused), with sig,
// then SIGKILL after stopGrace, and removes the PID file.
func stopByPIDFile(dir, name string, sig syscall.Signal) error {
	pidFile := filepath.Join(dir, name+".pid")
	b, err := os.ReadFile(pidFile)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer os.Remove(pidFile)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("%s: bad PID %q", pidFile, b)
	}
	if !ours(pid, dir) {
		return nil
	}
	// Signal the process group too (the process leads it: Setpgid or Setsid).
	syscall.Kill(-pid, sig)
	syscall.Kill(pid, sig)
	deadline := time.Now().Add(stopGrace)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(-pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(stopGrace)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// ours reports whether pid runs and its command line mentions dir.
func ours(pid int, dir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(cmdline, []byte(dir)) && alive(pid)
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool { return kubeapi.PIDAlive(pid) }

// run runs a command to completion, returning its combined output in the error.
func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// waitUntil polls check every 200ms until it succeeds or timeout passes;
// the error says what was awaited and the last failure.
func waitUntil(ctx context.Context, what string, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not ready after %s: %v", what, timeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

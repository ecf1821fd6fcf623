package kubeapi

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StopGrace is how long a process has after SIGTERM before SIGKILL.
const StopGrace = 10 * time.Second

// proc is a child process in its own process group, logging to <dir>/<name>.log,
// its PID in <dir>/<name>.pid.
type proc struct {
	name, bin, log string
	pid            int
	exited         chan struct{} // closed when the process is reaped (not detached)
}

// startProc starts bin. Attached processes get SIGKILL when the thread that
// started them dies (Pdeathsig), so a crashed test leaves nothing behind.
// Detached ones start a new session and outlive the caller.
func startProc(dir, name string, detach bool, bin string, args ...string) (*proc, error) {
	p := &proc{name: name, bin: bin, log: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "+ %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logf, logf
	if detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.pid = cmd.Process.Pid
	if detach {
		cmd.Process.Release()
	} else {
		go func() { cmd.Wait(); close(p.exited) }()
	}
	return p, os.WriteFile(filepath.Join(dir, name+".pid"), []byte(strconv.Itoa(p.pid)+"\n"), 0o644)
}

// alive reports whether the process still runs (and is not a zombie).
func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
	}
	return PIDAlive(p.pid)
}

// stop sends SIGTERM to the process group, SIGKILL after StopGrace, and
// waits for the process to be gone.
func (p *proc) stop() error {
	if !p.alive() {
		return nil
	}
	syscall.Kill(-p.pid, syscall.SIGTERM)
	deadline := time.Now().Add(StopGrace)
	for p.alive() {
		if time.Now().After(deadline) {
			syscall.Kill(-p.pid, syscall.SIGKILL)
			deadline = time.Now().Add(StopGrace)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// logTail returns the last n bytes of the log.
func (p *proc) logTail(n int) string {
	b, _ := os.ReadFile(p.log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// PIDAlive reports whether pid runs and is not a zombie.
func PIDAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// procFromPIDFile finds a detached process by its PID file, checking that
// the PID still runs bin (PIDs get reused).
func procFromPIDFile(dir, name, bin string) (*proc, error) {
	b, err := os.ReadFile(filepath.Join(dir, name+".pid"))
	if err != nil {
		return nil, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s.pid: %w", name, err)
	}
	p := &proc{name: name, bin: bin, pid: pid, log: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.HasPrefix(cmdline, []byte(bin+"\x00")) {
		close(p.exited) // gone, or the PID now belongs to something else
	}
	return p, nil
}

// rss returns the resident set size of the process in bytes.
func (p *proc) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// freePorts returns n distinct free loopback ports. Another process may take
// one before it is used: callers retry on "address already in use".
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

var errAddrInUse = errors.New("address already in use")

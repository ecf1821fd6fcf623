//go:build e2e

package argoe2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// podMemory watches, from the host, the main containers of the step pods
// running on the node: in a pod, Argo's emissary (argoexec) runs the step
// binary, both in the container's memory cgroup, whose limit is the one
// the spec's resources set. For each step it keeps the peak of the
// container's cgroup (memory.max_usage_in_bytes with cgroup v1,
// memory.peak with v2: page cache included) and of the resident sets of
// the emissary and the step together (their VmHWM).
type podMemory struct {
	mu          sync.Mutex
	cgroup, rss map[string]int64 // step -> bytes
	stop        chan struct{}
	done        chan struct{}
}

// watchPodMemory samples every 100 ms until Stop.
func watchPodMemory() *podMemory {
	m := &podMemory{cgroup: map[string]int64{}, rss: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			m.sample()
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// Stop ends the sampling and returns the peaks by step, in bytes.
func (m *podMemory) Stop() (cgroup, rss map[string]int64) {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cgroup, m.rss
}

func (m *podMemory) sample() {
	procs, _ := os.ReadDir("/proc")
	type container struct {
		step string
		rss  int64
	}
	byCgroup := map[string]*container{}
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		step := ""
		for i, a := range args {
			// the step itself, or the emissary that runs it
			if strings.HasPrefix(a, "/usr/local/bin/") && (i == 0 || strings.Contains(args[0], "argoexec") && hasArg(args, "emissary")) {
				step = filepath.Base(a)
				break
			}
		}
		if step == "" {
			continue
		}
		cg := memoryCgroup(p.Name())
		if cg == "" {
			continue
		}
		c := byCgroup[cg]
		if c == nil {
			c = &container{}
			byCgroup[cg] = c
		}
		if !strings.Contains(args[0], "argoexec") {
			c.step = step
		} else if c.step == "" {
			c.step = step
		}
		c.rss += statusKiB(p.Name(), "VmHWM") << 10
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for cg, c := range byCgroup {
		name := c.step
		if b, err := os.ReadFile(cg); err == nil {
			if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v > m.cgroup[name] {
				m.cgroup[name] = v
			}
		}
		if c.rss > m.rss[name] {
			m.rss[name] = c.rss
		}
	}
}

func hasArg(args []string, s string) bool {
	for _, a := range args {
		if a == s {
			return true
		}
	}
	return false
}

// memoryCgroup is the file holding the peak memory of a process's cgroup.
func memoryCgroup(pid string) string {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "cgroup"))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 || !strings.Contains(f[2], "kubepods") {
			continue
		}
		if f[1] == "memory" || strings.Contains(f[1], ",memory") || strings.HasPrefix(f[1], "memory,") {
			return filepath.Join("/sys/fs/cgroup/memory", f[2], "memory.max_usage_in_bytes")
		}
		if f[0] == "0" && f[1] == "" {
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", f[2], "memory.peak")); err == nil {
				return filepath.Join("/sys/fs/cgroup", f[2], "memory.peak")
			}
		}
	}
	return ""
}

func statusKiB(pid, field string) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field+":" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

// logPodMemory writes what watchPodMemory saw, and fails a step whose pod
// came near the default memory limit.
func logPodMemory(t *testing.T, cgroup, rss map[string]int64, limit int64) {
	t.Helper()
	for step, v := range cgroup {
		t.Logf("pod memory: %-14s container cgroup peak %5.1f MiB, emissary + step resident %5.1f MiB", step, float64(v)/(1<<20), float64(rss[step])/(1<<20))
		if 2*v > limit {
			t.Errorf("%s's container peaked at %d MiB, more than half the default memory limit (%d MiB)", step, v>>20, limit>>20)
		}
	}
	if len(cgroup) == 0 {
		t.Error("no step container seen on the node")
	}
}

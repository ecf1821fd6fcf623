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
// memory.peak with v2: what the limit applies to, page cache included)
// and the peak resident sets (VmHWM, their binaries' mapped pages
// included, shared or not) of the emissary and of the step.
type podMemory struct {
	mu                      sync.Mutex
	cgroup, emissary, stepM map[string]int64 // step -> bytes
	stop                    chan struct{}
	done                    chan struct{}
}

// podSteps are the binaries of the step images (verify runs both the
// per-shard verify and the report).
var podSteps = []string{"export", "mirror-shard", "backfill-shard", "verify", "switch-mode"}

// watchPodMemory samples every 100 ms until Stop.
func watchPodMemory() *podMemory {
	m := &podMemory{cgroup: map[string]int64{}, emissary: map[string]int64{}, stepM: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
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
func (m *podMemory) Stop() (cgroup, emissary, step map[string]int64) {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cgroup, m.emissary, m.stepM
}

func (m *podMemory) sample() {
	procs, _ := os.ReadDir("/proc")
	type container struct {
		step              string
		emissary, stepRSS int64
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
		if !hasArg(podSteps, step) {
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
		// One emissary and one step per container; the larger reading of
		// each (not their sum): between fork and exec the step's process
		// is the emissary's vfork child, sharing its memory, and reads as
		// a second emissary of the same size.
		c.step = step
		if v := statusKiB(p.Name(), "VmHWM") << 10; strings.Contains(args[0], "argoexec") {
			c.emissary = max(c.emissary, v)
		} else {
			c.stepRSS = max(c.stepRSS, v)
		}
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
		m.emissary[name] = max(m.emissary[name], c.emissary)
		m.stepM[name] = max(m.stepM[name], c.stepRSS)
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

// logPodMemory writes what watchPodMemory saw, and fails a step whose
// container's peak, or its processes' resident sets together, went beyond
// the default memory request.
func logPodMemory(t *testing.T, cgroup, emissary, step map[string]int64, request int64) {
	t.Helper()
	mib := func(v int64) float64 { return float64(v) / (1 << 20) }
	for name, v := range cgroup {
		t.Logf("pod memory: %-14s container cgroup peak %5.1f MiB; resident: emissary %5.1f MiB + step %5.1f MiB", name, mib(v), mib(emissary[name]), mib(step[name]))
		if v > request || emissary[name]+step[name] > request {
			t.Errorf("%s's container peaked at %.1f MiB (resident %.1f MiB), beyond the default memory request (%d MiB)", name, mib(v), mib(emissary[name]+step[name]), request>>20)
		}
	}
	if len(cgroup) == 0 {
		t.Error("no step container seen on the node")
	}
}

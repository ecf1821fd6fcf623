package progress

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// waits are the reasons work waits now (a registry's pull quota), by key.
type waits struct {
	mu sync.Mutex
	by map[string]waitNote
}

type waitNote struct {
	why   string
	until time.Time
}

func (r *Reporter) waits() *waits {
	r.wait.mu.Lock()
	if r.wait.by == nil {
		r.wait.by = map[string]waitNote{}
	}
	r.wait.mu.Unlock()
	return &r.wait
}

// Waiting says that work waits, and why, until until: a line now (in every
// mode but Off), and the reason in each phase's figures until Resumed with
// the same key. A second Waiting of a key already waiting only moves its
// end. A nil Reporter does nothing.
func (r *Reporter) Waiting(key, why string, until time.Time) {
	if r == nil {
		return
	}
	w := r.waits()
	w.mu.Lock()
	prev, again := w.by[key]
	w.by[key] = waitNote{why: why, until: until}
	w.mu.Unlock()
	if again && prev.until.Equal(until) {
		return
	}
	if r.o.Mode != Off {
		_, _ = r.Logs().Write([]byte(fmt.Sprintf("waiting: %s (resumes at %s, in %s)\n", why, until.Local().Format(time.TimeOnly), HumanDuration(time.Until(until).Round(time.Second)))))
	}
}

// Resumed ends the wait of key.
func (r *Reporter) Resumed(key string) {
	if r == nil {
		return
	}
	w := r.waits()
	w.mu.Lock()
	_, ok := w.by[key]
	delete(w.by, key)
	w.mu.Unlock()
	if ok && r.o.Mode != Off {
		_, _ = r.Logs().Write([]byte("resumed: " + key + "\n"))
	}
}

// waitingNow is what the figures show while work waits ("" when none).
func (r *Reporter) waitingNow(now time.Time) string {
	if r == nil {
		return ""
	}
	w := r.waits()
	w.mu.Lock()
	defer w.mu.Unlock()
	var notes []string
	for _, n := range w.by {
		notes = append(notes, fmt.Sprintf("waiting until %s: %s", n.until.Local().Format(time.TimeOnly), n.why))
	}
	sort.Strings(notes)
	return strings.Join(notes, "; ")
}

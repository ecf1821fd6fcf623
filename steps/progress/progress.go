// Package progress reports how far a phase has come: a bar on a terminal,
// plain lines in CI logs, and Argo's progress file in a pod. Libraries take a
// *Phase and never print themselves.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Mode selects how progress is shown.
type Mode int

const (
	Off   Mode = iota // nothing
	Lines             // a plain line every Interval (CI logs)
	Bar               // a redrawn bar (terminal)
)

// Options configure a Reporter.
type Options struct {
	Out      io.Writer // stderr usually
	Mode     Mode
	Interval time.Duration // Lines mode; default 5s
	// ArgoFile, when set, receives "N/TOTAL" as Argo's ARGO_PROGRESS_FILE.
	ArgoFile string
}

// Reporter creates phases.
type Reporter struct{ o Options }

// New returns a Reporter. A nil *Reporter is valid and silent.
func New(o Options) *Reporter {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Out == nil {
		o.Mode = Off
	}
	return &Reporter{o: o}
}

// Phase tracks one phase (export, mirror, verify...).
type Phase struct {
	r                        *Reporter
	name                     string
	mu                       sync.Mutex
	total, done              int
	counts                   map[string]int
	bytes                    int64
	start, lastPrint, lastFS time.Time
}

// Start begins a phase of total items (0 if unknown yet).
func (r *Reporter) Start(name string, total int) *Phase {
	p := &Phase{r: r, name: name, total: total, counts: map[string]int{}, start: time.Now()}
	if r != nil {
		p.writeArgo()
	}
	return p
}

// Grow adds n items to the total (work found on the way).
func (p *Phase) Grow(n int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.total += n
	p.mu.Unlock()
}

// Done sets the count of finished items (listings that count pages).
func (p *Phase) Done(n int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.done, p.total = n, max(p.total, n)
	p.mu.Unlock()
}

// Add records one finished item with its status and bytes.
func (p *Phase) Add(status string, bytes int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if status != "" {
		p.counts[status]++
	}
	p.bytes += bytes
	if p.r == nil {
		return
	}
	now := time.Now()
	switch p.r.o.Mode {
	case Bar:
		if now.Sub(p.lastPrint) > 100*time.Millisecond || p.done == p.total {
			p.draw()
			p.lastPrint = now
		}
	case Lines:
		if now.Sub(p.lastPrint) >= p.r.o.Interval {
			fmt.Fprintf(p.r.o.Out, "%s: %s\n", p.name, p.summary())
			p.lastPrint = now
		}
	}
	if p.r.o.ArgoFile != "" && now.Sub(p.lastFS) > time.Second {
		p.writeArgoLocked()
		p.lastFS = now
	}
}

// Finish ends the phase with a final line.
func (p *Phase) Finish() {
	if p == nil || p.r == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writeArgoLocked()
	switch p.r.o.Mode {
	case Bar:
		p.draw()
		fmt.Fprintln(p.r.o.Out)
	case Lines:
		fmt.Fprintf(p.r.o.Out, "%s: %s (%s)\n", p.name, p.summary(), time.Since(p.start).Round(10*time.Millisecond))
	}
}

func (p *Phase) summary() string {
	var parts []string
	for _, k := range []string{"copied", "skipped", "failed", "passed", "applied"} {
		if n := p.counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	s := fmt.Sprintf("%d/%d", p.done, p.total)
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	if p.bytes > 0 {
		s += " " + HumanBytes(p.bytes)
	}
	return s
}

func (p *Phase) draw() {
	const width = 30
	frac := 0.0
	if p.total > 0 {
		frac = float64(p.done) / float64(p.total)
	}
	n := int(frac * width)
	bar := strings.Repeat("█", n) + strings.Repeat("░", width-n)
	fmt.Fprintf(p.r.o.Out, "\r\033[K%-8s %s %s", p.name, bar, p.summary())
}

func (p *Phase) writeArgo() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writeArgoLocked()
}

func (p *Phase) writeArgoLocked() {
	if p.r.o.ArgoFile == "" {
		return
	}
	// Argo reads "N/M"; a failed write must not fail the step.
	_ = os.WriteFile(p.r.o.ArgoFile, fmt.Appendf(nil, "%d/%d\n", p.done, max(p.total, p.done)), 0o644)
}

// HumanBytes prints 1536 as "1.5 KiB".
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

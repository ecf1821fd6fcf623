// Package progress reports how far each phase of a run has come (plan,
// copy, backfill, verify): items done of a total known when the phase
// starts, bytes moved of the bytes found to move, the rate and an ETA. It
// shows them as a multi-line bar on a terminal (github.com/vbauerster/mpb),
// as a plain line every few seconds in CI logs and pods, or as one JSON
// object a line; and it writes Argo's ARGO_PROGRESS_FILE. Libraries take a
// *Phase and never print themselves; log lines go through Reporter.Logs so
// that they print above the bars, never into them.
package progress

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"
)

// Mode selects how progress is shown.
type Mode int

const (
	Off   Mode = iota // nothing (Argo's progress file still written)
	Lines             // a plain line per phase every Interval (CI logs, pods)
	Bar               // a redrawn bar per phase (terminal)
	JSON              // one JSON object per phase every Interval
)

// Mode names, as --progress takes them.
const (
	ModeAuto  = "auto" // bar on a terminal, else lines
	ModeNone  = "none"
	ModeLines = "lines"
	ModeBar   = "bar"
	ModeJSON  = "json"
)

// ParseMode turns a --progress value into a Mode; terminal says whether
// the output is a terminal (for auto).
func ParseMode(s string, terminal bool) (Mode, error) {
	switch s {
	case ModeAuto, "":
		if terminal {
			return Bar, nil
		}
		return Lines, nil
	case ModeBar:
		return Bar, nil
	case ModeLines:
		return Lines, nil
	case ModeJSON:
		return JSON, nil
	case ModeNone:
		return Off, nil
	}
	return Off, fmt.Errorf("--progress %q: want %s, %s, %s, %s or %s", s, ModeAuto, ModeBar, ModeLines, ModeJSON, ModeNone)
}

// DefaultInterval is how often Lines and JSON print a phase's figures.
const DefaultInterval = 5 * time.Second

// Options configure a Reporter.
type Options struct {
	Out  io.Writer // stderr usually
	Mode Mode
	// Interval between lines in Lines and JSON modes; default DefaultInterval.
	Interval time.Duration
	// ArgoFile, when set, receives "N/TOTAL" as Argo's ARGO_PROGRESS_FILE.
	ArgoFile string
	// Now is the clock for rates and ETAs; default time.Now.
	Now func() time.Time

	// barWidth and refresh are for tests of the bar: the output's width
	// (a terminal's is read from it) and the redraw period.
	barWidth int
	refresh  time.Duration
}

// Reporter creates phases and owns the output they share with log lines.
type Reporter struct {
	o Options

	mu     sync.Mutex
	active []*Phase      // started and not finished, in start order
	ticker chan struct{} // closed to stop the Lines/JSON ticker
	bars   *barContainer // Bar mode, while a phase is active
	outMu  sync.Mutex    // one writer at a time on o.Out
	waitMu sync.Mutex    // held while a bar container shuts down
	logs   io.Writer     // Logs()
	argoMu sync.Mutex    // ARGO_PROGRESS_FILE writes
	argoAt time.Time     // its last write
	wait   waits         // why work waits now (wait.go)
}

// New returns a Reporter. A nil *Reporter is valid and silent.
func New(o Options) *Reporter {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Out == nil {
		o.Out, o.Mode = io.Discard, Off
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Reporter{o: o}
	r.logs = logWriter{r}
	return r
}

// Logs is where log lines go: through the bars while one is shown (printed
// above them), else straight to the output. A nil Reporter's Logs is
// os.Stderr.
func (r *Reporter) Logs() io.Writer {
	if r == nil {
		return os.Stderr
	}
	return r.logs
}

type logWriter struct{ r *Reporter }

func (w logWriter) Write(b []byte) (int, error) {
	r := w.r
	r.mu.Lock()
	bars := r.bars
	r.mu.Unlock()
	if bars != nil {
		if n, err := bars.write(b); err == nil {
			return n, nil
		}
	}
	// No bar, or it is shutting down: wait until its last frame is out.
	r.waitMu.Lock()
	defer r.waitMu.Unlock()
	return r.write(b)
}

// write prints b on the output, one writer at a time.
func (r *Reporter) write(b []byte) (int, error) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	return r.o.Out.Write(b)
}

// Phase tracks one phase (plan, copy, backfill, verify).
type Phase struct {
	r     *Reporter
	name  string
	unit  string
	bytes bool // the phase moves bytes: show bytes, byte rate and a byte ETA
	start time.Time

	mu       sync.Mutex
	total    int
	done     int
	extra    int
	counts   map[string]int
	finished int64 // bytes of finished items (Add)
	moved    int64 // bytes moving now (MovedBytes), failed attempts taken back
	expected int64 // bytes found to move (ExpectBytes)
	samples  []sample
	end      time.Time // set by Finish

	bar *phaseBar
}

// Start begins a phase of total images (0 if not known).
func (r *Reporter) Start(name string, total int) *Phase {
	return r.start(name, "images", total, false)
}

// StartBytes begins a phase of total images that moves bytes (the copy):
// it also shows bytes moved of the bytes found to move, the byte rate, and
// an ETA that takes the bytes left into account.
func (r *Reporter) StartBytes(name string, total int) *Phase {
	return r.start(name, "images", total, true)
}

// StartCounting begins a phase of total items of unit (repositories, tags;
// total 0 if not known yet).
func (r *Reporter) StartCounting(name, unit string, total int) *Phase {
	return r.start(name, unit, total, false)
}

func (r *Reporter) start(name, unit string, total int, bytes bool) *Phase {
	p := &Phase{r: r, name: name, unit: unit, total: total, bytes: bytes, counts: map[string]int{}}
	if r == nil {
		p.start = time.Now()
		return p
	}
	p.start = r.o.Now()
	r.mu.Lock()
	r.active = append(r.active, p)
	switch r.o.Mode {
	case Bar:
		if r.bars == nil {
			r.bars = newBarContainer(r.o)
		}
		p.bar = r.bars.add(p)
	case Lines, JSON:
		if r.ticker == nil {
			r.ticker = make(chan struct{})
			go r.tick(r.ticker)
		}
	}
	r.mu.Unlock()
	if r.o.Mode == Lines || r.o.Mode == JSON {
		r.print(p.Snapshot())
	}
	r.writeArgo(p, true)
	return p
}

// tick prints every active phase each Interval until stop is closed.
func (r *Reporter) tick(stop chan struct{}) {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			r.mu.Lock()
			active := slices.Clone(r.active)
			r.mu.Unlock()
			for _, p := range active {
				r.print(p.Snapshot())
			}
		}
	}
}

// print writes one Lines or JSON line.
func (r *Reporter) print(s Snapshot) {
	switch r.o.Mode {
	case Lines:
		_, _ = r.write([]byte(s.Line() + "\n"))
	case JSON:
		_, _ = r.write(append(s.JSON(), '\n'))
	}
}

// Grow adds n items to the total, for a phase whose total is learned in
// parts. Prefer a total known at Start: a total that grows is a bar that
// jumps back.
func (p *Phase) Grow(n int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.total += n
	total := p.total
	p.mu.Unlock()
	p.bar.setTotal(total)
}

// Done sets the count of finished items (listings that count as they go).
func (p *Phase) Done(n int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.done = n
	if p.total > 0 {
		p.total = max(p.total, n)
	}
	total := p.total
	p.mu.Unlock()
	p.bar.setTotal(total)
	p.bar.setCurrent(n)
	p.r.writeArgo(p, false)
}

// Add records one finished item with its status and the bytes it moved.
func (p *Phase) Add(status string, bytes int64) {
	p.add(status, bytes, false)
}

// AddExtra records an item found on the way (a signature tag copied with
// its image): its status and bytes count, but not in done/total, which
// stay the plan's.
func (p *Phase) AddExtra(status string, bytes int64) {
	p.add(status, bytes, true)
}

func (p *Phase) add(status string, bytes int64, extra bool) {
	if p == nil {
		return
	}
	p.mu.Lock()
	if extra {
		p.extra++
	} else {
		p.done++
	}
	if status != "" {
		p.counts[status]++
	}
	p.finished += bytes
	done := p.done
	p.mu.Unlock()
	p.bar.setCurrent(done)
	p.r.writeArgo(p, false)
}

// ExpectBytes adds n to the bytes found to move (a blob about to be
// copied); negative takes back bytes that will not move after all.
func (p *Phase) ExpectBytes(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.expected += n
	p.mu.Unlock()
}

// MovedBytes adds n bytes moved while an item is under way; negative takes
// back the bytes of an attempt that failed and will be sent again.
func (p *Phase) MovedBytes(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.moved += n
	p.mu.Unlock()
}

// Finish ends the phase with its final figures.
func (p *Phase) Finish() {
	if p == nil || p.r == nil {
		return
	}
	r := p.r
	p.mu.Lock()
	if !p.end.IsZero() {
		p.mu.Unlock()
		return
	}
	p.end = r.o.Now()
	done, total := p.done, p.total
	p.mu.Unlock()
	r.writeArgo(p, true)
	p.bar.finish(done, total)

	r.mu.Lock()
	r.active = slices.DeleteFunc(r.active, func(q *Phase) bool { return q == p })
	var bars *barContainer
	var ticker chan struct{}
	if len(r.active) == 0 {
		bars, r.bars = r.bars, nil
		ticker, r.ticker = r.ticker, nil
	}
	r.mu.Unlock()
	if ticker != nil {
		close(ticker)
	}
	if bars != nil {
		// The last phase: the container draws its last frame and stops;
		// log lines wait for it, then go straight to the output.
		r.waitMu.Lock()
		bars.wait()
		r.waitMu.Unlock()
	}
	r.print(p.Snapshot())
}

// writeArgo writes "N/M" to ARGO_PROGRESS_FILE, at most once a second
// unless now is set. A failed write must not fail the step.
func (r *Reporter) writeArgo(p *Phase, now bool) {
	if r == nil || r.o.ArgoFile == "" {
		return
	}
	r.argoMu.Lock()
	defer r.argoMu.Unlock()
	t := r.o.Now()
	if !now && t.Sub(r.argoAt) < time.Second {
		return
	}
	r.argoAt = t
	p.mu.Lock()
	done, total := p.done, max(p.total, p.done)
	p.mu.Unlock()
	_ = os.WriteFile(r.o.ArgoFile, fmt.Appendf(nil, "%d/%d\n", done, total), 0o644)
}

// Close finishes every phase still active (a run that stopped on an
// error) and stops the bars, so that what is printed next is not drawn
// over. A nil Reporter's Close does nothing.
func (r *Reporter) Close() {
	if r == nil {
		return
	}
	r.mu.Lock()
	active := slices.Clone(r.active)
	r.mu.Unlock()
	for _, p := range active {
		p.Finish()
	}
}

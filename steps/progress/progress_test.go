package progress

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vbauerster/cupwriter"

	"github.com/regmigrate/regmigrate/tests/terminal"
)

// clock is a clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a buffer written by the reporter's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const MiB = 1 << 20

// copyPhase runs a copy of 4 images the way the mirror reports it: bytes
// announced and streamed, images finished, a signature found on the way.
func copyPhase(r *Reporter, c *clock) {
	ph := r.StartBytes("copy", 4)
	ph.ExpectBytes(8 * MiB)
	c.Advance(2 * time.Second)
	ph.MovedBytes(4 * MiB)
	ph.Add("copied", 8*MiB) // bytes streamed count once: the larger of the two
	ph.Add("skipped", 0)
	ph.AddExtra("copied", 0)
	c.Advance(2 * time.Second)
	ph.Add("skipped", 0)
	ph.Add("failed", 0)
	ph.Finish()
}

func TestLinesShowEveryFigureFromTheStartAndNeverMoveTheTotal(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	c := newClock()
	r := New(Options{Out: &out, Mode: Lines, Now: c.Now, Interval: time.Hour})
	copyPhase(r, c)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a line at the start and one at the end, got:\n%s", out.String())
	}
	if want := "copy: 0/4 images, 0 B / 0 B+, 0 B/s, ETA --"; lines[0] != want {
		t.Errorf("first line\n%s\nwant\n%s", lines[0], want)
	}
	if want := "copy: 4/4 images, 8.0 MiB, 2.0 MiB/s, done in 4s (copied 2, skipped 2, failed 1, +1 found on the way)"; lines[1] != want {
		t.Errorf("last line\n%s\nwant\n%s", lines[1], want)
	}
}

func TestLinesComeEveryIntervalWhileNothingFinishes(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	r := New(Options{Out: &out, Mode: Lines, Interval: 10 * time.Millisecond})
	ph := r.StartBytes("copy", 27)
	ph.ExpectBytes(3 * MiB)
	ph.MovedBytes(MiB)
	// A large blob is streaming: no image finishes, the lines keep coming.
	deadline := time.Now().Add(time.Minute)
	for strings.Count(out.String(), "copy: 0/27 images, 1.0 MiB / 3.0 MiB+") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no periodic lines:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	ph.Finish()
	if !strings.Contains(out.String(), "copy: 0/27 images, 1.0 MiB, ") {
		t.Errorf("no final line:\n%s", out.String())
	}
}

func TestSnapshotRateAndETA(t *testing.T) {
	t.Parallel()
	c := newClock()
	r := New(Options{Out: &syncBuffer{}, Mode: Off, Now: c.Now})
	ph := r.StartBytes("copy", 20)
	ph.ExpectBytes(100 * MiB)
	for range 10 {
		c.Advance(time.Second)
		ph.MovedBytes(5 * MiB)
		ph.Snapshot()
	}
	for range 5 {
		ph.Add("copied", 0)
	}
	s := ph.Snapshot()
	if s.BytesPerSecond != 5*MiB {
		t.Errorf("rate %v B/s, want 5 MiB/s", s.BytesPerSecond)
	}
	// Images: 10 s for 5 of 20, so 30 s left; bytes: 50 MiB left at
	// 5 MiB/s, 10 s. The longer wins.
	if s.ETASeconds == nil || *s.ETASeconds != 30 {
		t.Errorf("ETA %v, want 30 s", s.ETASeconds)
	}
	if s.BytesTotalFinal || s.Figures() != "5/20 images, 50.0 MiB / 100.0 MiB+, 5.0 MiB/s, ETA 30s (copied 5)" {
		t.Errorf("figures %q", s.Figures())
	}
	// The rate is the last ten seconds': a stall shows.
	for range 10 {
		c.Advance(time.Second)
		ph.Snapshot()
	}
	if s := ph.Snapshot(); s.BytesPerSecond != 0 {
		t.Errorf("rate after a 10 s stall: %v B/s, want 0", s.BytesPerSecond)
	}
	// A failed attempt's bytes are taken back; the blob that failed for
	// good leaves the total.
	ph.MovedBytes(-5 * MiB)
	ph.ExpectBytes(-5 * MiB)
	if s := ph.Snapshot(); s.BytesDone != 45*MiB || s.BytesTotal != 95*MiB {
		t.Errorf("bytes %d/%d, want 45/95 MiB", s.BytesDone, s.BytesTotal)
	}
}

func TestJSONLinesCarryTheSameFigures(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	c := newClock()
	r := New(Options{Out: &out, Mode: JSON, Now: c.Now, Interval: time.Hour})
	copyPhase(r, c)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want two JSON lines, got:\n%s", out.String())
	}
	var first, last map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("%q: %v", lines[0], err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &last); err != nil {
		t.Fatalf("%q: %v", lines[1], err)
	}
	if first["phase"] != "copy" || first["done"] != 0.0 || first["total"] != 4.0 || first["finished"] != false || first["etaSeconds"] != nil {
		t.Errorf("first object %s", lines[0])
	}
	counts, _ := last["counts"].(map[string]any)
	if last["done"] != 4.0 || last["total"] != 4.0 || last["bytesDone"] != float64(8*MiB) || last["bytesPerSecond"] != float64(2*MiB) ||
		last["etaSeconds"] != 0.0 || last["elapsedSeconds"] != 4.0 || last["finished"] != true || counts["failed"] != 1.0 || last["extra"] != 1.0 {
		t.Errorf("last object %s", lines[1])
	}
}

func TestArgoProgressFile(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "progress")
	c := newClock()
	r := New(Options{Mode: Off, ArgoFile: f, Now: c.Now})
	ph := r.Start("verify", 3)
	if b, _ := os.ReadFile(f); string(b) != "0/3\n" {
		t.Errorf("at the start: %q", b)
	}
	c.Advance(2 * time.Second)
	ph.Add("passed", 0)
	if b, _ := os.ReadFile(f); string(b) != "1/3\n" {
		t.Errorf("after one: %q", b)
	}
	ph.Add("passed", 0) // within the second: not written
	ph.Add("passed", 0)
	ph.Finish()
	if b, _ := os.ReadFile(f); string(b) != "3/3\n" {
		t.Errorf("at the end: %q", b)
	}
}

func TestParseMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in       string
		terminal bool
		want     Mode
		err      bool
	}{
		{"auto", true, Bar, false}, {"auto", false, Lines, false}, {"bar", false, Bar, false},
		{"lines", true, Lines, false}, {"json", true, JSON, false}, {"none", true, Off, false}, {"fancy", true, Off, true},
	} {
		got, err := ParseMode(tc.in, tc.terminal)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseMode(%q, %v) = %v, %v", tc.in, tc.terminal, got, err)
		}
	}
}

func TestBarsDrawEachPhaseOnItsLineAndLogLinesAboveThem(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	c := newClock()
	r := New(Options{Out: &out, Mode: Bar, Now: c.Now, barWidth: 160, refresh: 2 * time.Millisecond})
	plan := r.StartCounting("plan", "repositories", 3)
	plan.Add("", 0)
	plan.Add("", 0)
	plan.Add("", 0)
	plan.Finish()

	ph := r.StartBytes("copy", 4)
	ph.ExpectBytes(8 * MiB)
	waitFor(t, &out, "copy")
	if _, err := r.Logs().Write([]byte("level=WARN msg=\"image failed\" source=team/app:v1\n")); err != nil {
		t.Fatal(err)
	}
	c.Advance(4 * time.Second)
	ph.Add("copied", 8*MiB)
	ph.Add("skipped", 0)
	ph.Add("skipped", 0)
	ph.Add("failed", 0)
	ph.Finish()
	if _, err := r.Logs().Write([]byte("after the bars\n")); err != nil {
		t.Fatal(err)
	}

	screen := terminal.Screen(out.String())
	want := []string{
		"plan     [==================] 3/3 repositories, 0.0 repositories/s, done in 0.0s",
		`level=WARN msg="image failed" source=team/app:v1`,
		"copy     [==================] 4/4 images, 8.0 MiB, 2.0 MiB/s, done in 4s (copied 1, skipped 2, failed 1)",
		"after the bars",
	}
	if strings.Join(screen, "\n") != strings.Join(want, "\n") {
		t.Errorf("the terminal shows:\n%s\nwant:\n%s\n(raw %q)", strings.Join(screen, "\n"), strings.Join(want, "\n"), out.String())
	}
}

func TestBarOfAPhaseThatStopsShortStaysWhereItCame(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	c := newClock()
	r := New(Options{Out: &out, Mode: Bar, Now: c.Now, barWidth: 120, refresh: 2 * time.Millisecond})
	ph := r.Start("verify", 4)
	ph.Add("passed", 0)
	ph.Add("passed", 0)
	r.Close() // the run stopped on an error
	screen := terminal.Screen(out.String())
	if len(screen) != 1 || screen[0] != "verify   [========>---------] 2/4 images, 0.0 images/s, stopped after 0.0s (passed 2)" {
		t.Errorf("the terminal shows:\n%s", strings.Join(screen, "\n"))
	}
}

func waitFor(t *testing.T, out *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%q never drawn: %q", s, out.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// A terminal that says no size (or whose size cannot be read) is drawn on
// as 80x24, not left blank.
func TestBarsOnATerminalWithoutASize(t *testing.T) {
	t.Parallel()
	w, h, err := sizedConsole{cupwriter.New(&syncBuffer{}, true)}.GetTermSize()
	if err != nil || w != defaultColumns || h != defaultRows {
		t.Errorf("size %dx%d, %v; want %dx%d", w, h, err, defaultColumns, defaultRows)
	}
}

package progress

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Snapshot is a phase's figures at one moment: what its bar, its lines
// and its JSON objects show.
type Snapshot struct {
	Time  time.Time `json:"time"`
	Phase string    `json:"phase"`
	// Unit is what Done and Total count: images, repositories, tags.
	Unit string `json:"unit"`
	Done int    `json:"done"`
	// Total is known when the phase starts (the plan's images); 0 when it
	// is not (a catalog listing).
	Total int `json:"total"`
	// Extra counts items found on the way (signature tags copied with
	// their image): in Counts and the bytes, not in Done or Total.
	Extra int `json:"extra,omitempty"`
	// Counts are finished items by status (copied, skipped, failed...).
	Counts map[string]int `json:"counts,omitempty"`
	// Bytes: phases that move bytes (the copy) only.
	Bytes bool `json:"-"`
	// BytesDone are the bytes moved so far (blobs uploaded to the target);
	// BytesTotal the bytes found to move so far. The total grows while
	// images are still to be looked at (BytesTotalFinal false): an
	// image's size is known once its manifest is read.
	BytesDone       int64 `json:"bytesDone"`
	BytesTotal      int64 `json:"bytesTotal"`
	BytesTotalFinal bool  `json:"bytesTotalFinal"`
	// BytesPerSecond and ItemsPerSecond over the last ten seconds (the
	// whole phase once finished).
	BytesPerSecond float64 `json:"bytesPerSecond"`
	ItemsPerSecond float64 `json:"itemsPerSecond"`
	// ETASeconds is the time left; nil until something has been done.
	ETASeconds     *float64 `json:"etaSeconds,omitempty"`
	ElapsedSeconds float64  `json:"elapsedSeconds"`
	Finished       bool     `json:"finished"`
	// Waiting says why work waits now (a registry's pull quota; wait.go).
	Waiting string `json:"waiting,omitempty"`
}

// sample is a point for the rate.
type sample struct {
	t            time.Time
	bytes, items int64
}

const (
	rateWindow = 10 * time.Second
	sampleGap  = 500 * time.Millisecond
)

// Snapshot returns the phase's figures now.
func (p *Phase) Snapshot() Snapshot {
	now := time.Now
	if p.r != nil {
		now = p.r.o.Now
	}
	t := now()
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Snapshot{
		Phase: p.name, Unit: p.unit, Done: p.done, Total: p.total, Extra: p.extra, Bytes: p.bytes,
		BytesDone: max(p.moved, p.finished), Finished: !p.end.IsZero(),
	}
	if len(p.counts) > 0 {
		s.Counts = make(map[string]int, len(p.counts))
		for k, v := range p.counts {
			s.Counts[k] = v
		}
	}
	s.BytesTotal = max(p.expected, s.BytesDone)
	s.BytesTotalFinal = s.Finished || (p.total > 0 && p.done >= p.total)
	if s.Finished {
		t = p.end
	}
	s.Time = t
	elapsed := t.Sub(p.start)
	s.ElapsedSeconds = round(elapsed.Seconds(), 1)

	items := int64(p.done + p.extra)
	if s.Finished {
		if elapsed > 0 {
			s.BytesPerSecond = float64(s.BytesDone) / elapsed.Seconds()
			s.ItemsPerSecond = float64(items) / elapsed.Seconds()
		}
		zero := 0.0
		s.ETASeconds = &zero
	} else {
		// The rate over the last rateWindow: samples every sampleGap.
		if n := len(p.samples); n == 0 || t.Sub(p.samples[n-1].t) >= sampleGap {
			p.samples = append(p.samples, sample{t, s.BytesDone, items})
		}
		for len(p.samples) > 2 && t.Sub(p.samples[1].t) >= rateWindow {
			p.samples = slices.Delete(p.samples, 0, 1)
		}
		old := sample{p.start, 0, 0}
		if len(p.samples) > 0 && t.Sub(p.samples[0].t) >= time.Second {
			old = p.samples[0]
		}
		if span := t.Sub(old.t).Seconds(); span > 0 {
			s.BytesPerSecond = float64(s.BytesDone-old.bytes) / span
			s.ItemsPerSecond = float64(items-old.items) / span
		}
		s.ETASeconds = eta(s, elapsed)
	}
	s.BytesPerSecond = math.Round(max(s.BytesPerSecond, 0))
	s.ItemsPerSecond = round(max(s.ItemsPerSecond, 0), 2)
	if !s.Finished {
		s.Waiting = p.r.waitingNow(t)
	}
	return s
}

// eta is the time left: the longer of what the items done so far say
// (elapsed per item) and what the bytes left say at the current rate.
// Either alone is too hopeful: skipped images finish fast, and bytes are
// only known once an image is looked at.
func eta(s Snapshot, elapsed time.Duration) *float64 {
	if s.Total > 0 && s.Done >= s.Total {
		zero := 0.0
		return &zero
	}
	var left float64
	known := false
	if s.Total > 0 && s.Done > 0 {
		left = elapsed.Seconds() * float64(s.Total-s.Done) / float64(s.Done)
		known = true
	}
	if s.Bytes && s.BytesPerSecond > 0 && s.BytesTotal > s.BytesDone {
		left = max(left, float64(s.BytesTotal-s.BytesDone)/s.BytesPerSecond)
		known = true
	}
	if !known {
		return nil
	}
	left = round(left, 1)
	return &left
}

func round(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}

// statusOrder is the order counts are printed in; others follow, sorted.
var statusOrder = []string{"copied", "applied", "passed", "skipped", "planned", "failed"}

// Figures is the snapshot in words, without the phase's name:
// "12/27 images, 1.2 GiB / 3.4 GiB+, 12.0 MiB/s, ETA 1m20s (copied 10, skipped 1, failed 1)".
func (s Snapshot) Figures() string {
	var parts []string
	if s.Total > 0 {
		parts = append(parts, fmt.Sprintf("%d/%d %s", s.Done, s.Total, s.Unit))
	} else {
		parts = append(parts, fmt.Sprintf("%d %s", s.Done, s.Unit))
	}
	if s.Bytes {
		switch {
		case s.Finished:
			parts = append(parts, HumanBytes(s.BytesDone))
		case s.BytesTotalFinal:
			parts = append(parts, HumanBytes(s.BytesDone)+" / "+HumanBytes(s.BytesTotal))
		default:
			// "+": more is found as the images left are looked at.
			parts = append(parts, HumanBytes(s.BytesDone)+" / "+HumanBytes(s.BytesTotal)+"+")
		}
		parts = append(parts, HumanBytes(int64(s.BytesPerSecond))+"/s")
	} else {
		parts = append(parts, fmt.Sprintf("%.1f %s/s", s.ItemsPerSecond, s.Unit))
	}
	switch {
	case s.Finished && s.Total > 0 && s.Done < s.Total:
		parts = append(parts, "stopped after "+HumanDuration(time.Duration(s.ElapsedSeconds*float64(time.Second))))
	case s.Finished:
		parts = append(parts, "done in "+HumanDuration(time.Duration(s.ElapsedSeconds*float64(time.Second))))
	case s.ETASeconds == nil:
		parts = append(parts, "ETA --")
	case *s.ETASeconds < 1:
		parts = append(parts, "ETA <1s")
	default:
		parts = append(parts, "ETA "+HumanDuration(time.Duration(*s.ETASeconds*float64(time.Second))))
	}
	line := strings.Join(parts, ", ")
	var counts []string
	for _, k := range statusOrder {
		if n := s.Counts[k]; n > 0 {
			counts = append(counts, fmt.Sprintf("%s %d", k, n))
		}
	}
	var others []string
	for k := range s.Counts {
		if !slices.Contains(statusOrder, k) {
			others = append(others, k)
		}
	}
	slices.Sort(others)
	for _, k := range others {
		counts = append(counts, fmt.Sprintf("%s %d", k, s.Counts[k]))
	}
	if s.Extra > 0 {
		counts = append(counts, fmt.Sprintf("+%d found on the way", s.Extra))
	}
	if len(counts) > 0 {
		line += " (" + strings.Join(counts, ", ") + ")"
	}
	if s.Waiting != "" {
		line += "; " + s.Waiting
	}
	return line
}

// Line is the plain line Lines mode prints: "copy: " and the figures.
func (s Snapshot) Line() string { return s.Phase + ": " + s.Figures() }

// JSON is the object JSON mode prints (one a line).
func (s Snapshot) JSON() []byte {
	b, err := json.Marshal(s)
	if err != nil { // a Snapshot always marshals
		panic(err)
	}
	return b
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

// HumanDuration prints a duration the way a person reads it: "0.4s",
// "45s", "1m20s", "2h03m".
func HumanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

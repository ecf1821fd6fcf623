package progress

import (
	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// barWidth is the width of the bar itself; the figures take the rest of
// the line (and are cut with "…" on a narrow terminal).
const barWidth = 20

// nameWidth aligns the bars of plan, copy, backfill and verify, drawn one
// phase after the other.
const nameWidth = 8

// barContainer is the mpb container that draws every active phase's bar,
// one line each, and prints log lines above them.
type barContainer struct{ p *mpb.Progress }

func newBarContainer(o Options) *barContainer {
	opts := []mpb.ContainerOption{
		// --progress bar was asked for (or the output is a terminal): draw
		// it even when the output cannot say it is a terminal.
		mpb.WithConsoleWriter(sizedConsole{cupwriter.New(o.Out, true)}), mpb.WithAutoRefresh(),
	}
	if o.barWidth > 0 {
		opts = append(opts, mpb.WithWidth(o.barWidth))
	}
	if o.refresh > 0 {
		opts = append(opts, mpb.WithRefreshRate(o.refresh))
	}
	return &barContainer{p: mpb.New(opts...)}
}

// write prints b above the bars (at the next redraw); an error once the
// container has stopped.
func (c *barContainer) write(b []byte) (int, error) { return c.p.Write(b) }

// wait draws the last frame and stops the container; every bar must be
// finished.
func (c *barContainer) wait() { c.p.Wait() }

// phaseBar is one phase's line: its name, the bar (items done of the
// total) and its figures (Snapshot.Figures).
type phaseBar struct{ b *mpb.Bar }

func (c *barContainer) add(p *Phase) *phaseBar {
	// Total 0: the bar completes only when the phase finishes, not when
	// done reaches the total; SetTotal sets what the bar shows.
	b := c.p.New(0,
		mpb.BarStyle().Lbound("[").Filler("=").Tip(">").Padding("-").Rbound("]"),
		mpb.BarWidth(barWidth),
		mpb.PrependDecorators(decor.Name(p.name, decor.WC{W: nameWidth, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.Any(func(st decor.Statistics) string {
			// The figures give way to the bar: on a narrow terminal they
			// are cut, the bar keeps its width.
			return cut(p.Snapshot().Figures(), st.AvailableWidth-barWidth-2)
		})),
	)
	pb := &phaseBar{b: b}
	pb.setTotal(p.total)
	return pb
}

func (pb *phaseBar) setTotal(n int) {
	if pb != nil && n > 0 {
		pb.b.SetTotal(int64(n), false)
	}
}

func (pb *phaseBar) setCurrent(n int) {
	if pb != nil {
		pb.b.SetCurrent(int64(n))
	}
}

// finish completes the bar; one that ends short of its total (failures
// that stopped the phase, an interrupt) stays as far as it came.
func (pb *phaseBar) finish(done, total int) {
	if pb == nil {
		return
	}
	if total > 0 && done < total {
		pb.b.Abort(false)
		return
	}
	pb.b.SetTotal(int64(max(done, total)), true)
}

// cut shortens s to width columns, ending it with "…" (the figures are
// ASCII but for that mark).
func cut(s string, width int) string {
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	if width <= 1 {
		return ""
	}
	return string(r[:width-1]) + "…"
}

// Size of a terminal that does not say its size.
const (
	defaultColumns = 80
	defaultRows    = 24
)

// sizedConsole is the terminal the bars are drawn on. A terminal that
// reports no size (a pseudo-terminal nobody sized: some CI runners,
// `script`, editors' shells) is taken as 80x24 rather than drawing
// nothing.
type sizedConsole struct{ *cupwriter.Writer }

func (c sizedConsole) GetTermSize() (width, height int, err error) {
	width, height, err = c.Writer.GetTermSize()
	if err != nil || width <= 0 {
		width = defaultColumns
	}
	if err != nil || height <= 0 {
		height = defaultRows
	}
	return width, height, nil
}

package report

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"strings"
	"time"

	"github.com/regmigrate/regmigrate/steps/approval"
	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/progress"
)

// Bundle is what report.html shows: the report and the records beside it
// in the run directory.
type Bundle struct {
	Report Report
	// Run is run.json: the migration and how this run was started; nil in
	// a run directory from before it was recorded.
	Run *artifacts.Run
	// History is history.json: every run of the run directory.
	History History
	// Cutover is switch.json; nil when there was no cutover.
	Cutover *Cutover
	// Approval is approval.json, the cutover's decision and who took it;
	// nil when there was no approval.
	Approval *approval.Record
}

// ReadBundle reads the records beside rep in the run directory.
func ReadBundle(dir artifacts.Dir, rep Report) (Bundle, error) {
	b := Bundle{Report: rep}
	switch run, err := artifacts.ReadRun(dir); {
	case err == nil:
		b.Run = &run
	case !errors.Is(err, fs.ErrNotExist):
		return b, err
	}
	var err error
	if b.History, err = ReadHistory(dir); err != nil {
		return b, err
	}
	if b.Cutover, err = ReadCutover(dir); err != nil {
		return b, err
	}
	if b.Approval, err = approval.Read(dir); err != nil {
		return b, err
	}
	return b, nil
}

//go:embed report.html.tmpl
var htmlSource string

var page = template.Must(template.New("report.html").Funcs(template.FuncMap{
	"bytes": progress.HumanBytes,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "not known"
		}
		return t.UTC().Format("2006-01-02 15:04:05 MST")
	},
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"duration": func(d time.Duration) string { return progress.HumanDuration(d) },
	"pct": func(n, total int) string {
		if total == 0 {
			return "0"
		}
		return fmt.Sprintf("%.2f", 100*float64(n)/float64(total))
	},
	"command": func(args []string) string {
		q := make([]string, len(args))
		for i, a := range args {
			q[i] = shellQuote(a)
		}
		return strings.Join(q, " ")
	},
	"join": strings.Join,
}).Parse(htmlSource))

// shellQuote quotes a for a POSIX shell when it needs it.
func shellQuote(a string) string {
	if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+%") == "" {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

// view is what the template reads.
type view struct {
	Bundle
	Title       string
	Verdict     string
	VerdictKind string // ok, retry, fail, dry
	Duration    time.Duration
	Namespaces  []Namespace
	Failures    []Failure
	BytesNote   string
	HistoryNote string
	Strategy    string
}

// HTML renders report.html: self-contained (no script, no external
// asset), readable on a screen and on paper.
func (b Bundle) HTML() ([]byte, error) {
	r := b.Report
	v := view{Bundle: b, Namespaces: r.Namespaces(), Failures: r.Failures(), BytesNote: BytesMeaning, Strategy: contract.StrategyCopy}
	v.Title = "unnamed migration"
	if b.Run != nil {
		if b.Run.Migration != "" {
			v.Title = b.Run.Migration
		}
		if b.Run.Strategy != "" {
			v.Strategy = b.Run.Strategy
		}
	}
	if !r.Started.IsZero() {
		v.Duration = r.Finished.Sub(r.Started)
	}
	switch code := r.ExitCode(); {
	case r.DryRun && code == contract.ExitOK:
		v.VerdictKind = "dry"
		v.Verdict = fmt.Sprintf("Dry run: %d images to copy, %d already on the target; nothing was written.", r.Planned, r.Skipped)
	case code == contract.ExitOK:
		v.VerdictKind = "ok"
		v.Verdict = fmt.Sprintf("Complete: all %d images are on the target with the source digest, and verified.", r.Total)
	case code == contract.ExitRetryable:
		v.VerdictKind = "retry"
		v.Verdict = fmt.Sprintf("Not complete: %d of %d %s failed, all for reasons a rerun may fix. Run again into the same run directory to finish.", r.Failed, r.Total, plural(r.Total, "image", "images"))
	default:
		v.VerdictKind = "fail"
		v.Verdict = fmt.Sprintf("Not complete: %d of %d %s failed", r.Failed, r.Total, plural(r.Total, "image", "images"))
		if len(r.ScopeErrors) > 0 {
			v.Verdict += fmt.Sprintf(", and the scope has %d %s", len(r.ScopeErrors), plural(len(r.ScopeErrors), "error", "errors"))
		}
		v.Verdict += ". Some need a fix before a rerun: see the failures below."
	}
	switch {
	case b.Run == nil:
		v.HistoryNote = "This run directory has no run record (run.json): it was written by an older regmigrate. Only this run is shown."
	case len(b.History.Runs) <= 1:
		v.HistoryNote = "The runs recorded in this run directory: the first run, and each rerun into the same directory (--out) after it. " +
			"Runs into another directory, and each Argo Workflow, keep their own history in their own run directory."
	default:
		v.HistoryNote = "Every run recorded in this run directory (history.json), oldest first: the first run and each rerun into the same directory (--out)."
	}
	if len(b.History.Runs) == 0 { // no history recorded: this run alone
		v.History.Runs = []RunRecord{{
			Started: r.Started, Finished: r.Finished, DryRun: r.DryRun, Total: r.Total, Copied: r.Copied, Skipped: r.Skipped,
			Failed: r.Failed, Planned: r.Planned, Bytes: r.Bytes, Verified: r.Verified, ExitCode: r.ExitCode(),
		}}
		if b.Run != nil {
			v.History.Runs[0].Version, v.History.Runs[0].Command = b.Run.Version, b.Run.Command
		}
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("rendering report.html: %w", err)
	}
	return buf.Bytes(), nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

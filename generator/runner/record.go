package runner

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/report"
)

// record is one invocation's folder, runs/<id>/: run.json (the same
// record as the run directory's run.json, which the next run replaces),
// log.jsonl (its log lines with timestamps, written as they happen) and,
// once done, the report it produced. Earlier invocations' folders are
// never touched: the audit trail only grows. history.json, which the
// aggregate keeps on Argo too, is the index; runs/ holds the whole record.
type record struct {
	dir string
	log *os.File
}

func newRecord(out string, run artifacts.Run) (*record, error) {
	var b [3]byte
	_, _ = rand.Read(b[:])
	id := run.Started.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	dir := filepath.Join(out, contract.RunsDir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("recording the run in %s: %w", out, err)
	}
	if err := artifacts.WriteJSON(filepath.Join(dir, contract.RunFile), run); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "log.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &record{dir: dir, log: f}, nil
}

// handler writes Info and above to log.jsonl, each record as it comes.
func (r *record) handler() slog.Handler {
	return slog.NewJSONHandler(r.log, &slog.HandlerOptions{Level: slog.LevelInfo})
}

// keep copies the report this invocation produced into its folder.
func (r *record) keep(rep report.Report) error {
	if err := artifacts.WriteStream(filepath.Join(r.dir, contract.ReportJSON), rep.WriteJSON); err != nil {
		return err
	}
	return artifacts.WriteFile(filepath.Join(r.dir, contract.ReportMD), []byte(rep.Markdown()))
}

func (r *record) close() { r.log.Close() }

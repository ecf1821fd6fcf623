package runner

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/report"
)

// record is one invocation's folder, runs/<id>/: run.json (who, when,
// what command), log.jsonl (its log lines with timestamps, written as
// they happen) and, once done, the report it produced. Earlier
// invocations' folders are never touched: the audit trail only grows.
type record struct {
	dir string
	log *os.File
}

// RunInfo is runs/<id>/run.json.
type RunInfo struct {
	ID      string    `json:"id"`
	Started time.Time `json:"started"`
	Command string    `json:"command,omitempty"`
	Version string    `json:"version"`
	PID     int       `json:"pid"`
}

func newRecord(out string, started time.Time, command string) (*record, error) {
	var b [3]byte
	_, _ = rand.Read(b[:])
	id := started.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	dir := filepath.Join(out, contract.RunsDir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("recording the run in %s: %w", out, err)
	}
	if err := artifacts.WriteJSON(filepath.Join(dir, "run.json"), RunInfo{ID: id, Started: started.UTC(), Command: command, Version: contract.Version, PID: os.Getpid()}); err != nil {
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
	if err := artifacts.WriteJSON(filepath.Join(r.dir, contract.ReportJSON), rep); err != nil {
		return err
	}
	return artifacts.WriteFile(filepath.Join(r.dir, contract.ReportMD), []byte(rep.Markdown()))
}

func (r *record) close() { r.log.Close() }

package report

import (
	"errors"
	"io/fs"
	"slices"
	"time"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
)

// RunRecord is one run of a run directory in history.json: a first run, the
// reruns that finish it (--out DIR again), a dry run before them.
type RunRecord struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Version  string    `json:"version,omitempty"`
	Command  []string  `json:"command,omitempty"`
	DryRun   bool      `json:"dryRun,omitempty"`
	Total    int       `json:"total"`
	Copied   int       `json:"copied"`
	Skipped  int       `json:"skipped"`
	Failed   int       `json:"failed"`
	Planned  int       `json:"planned,omitempty"`
	Bytes    int64     `json:"bytes"`
	Verified bool      `json:"verified"`
	ExitCode int       `json:"exitCode"`
}

// History is history.json: the runs of a run directory, oldest first.
type History struct {
	Runs []RunRecord `json:"runs"`
}

// ReadHistory reads history.json; none is an empty history.
func ReadHistory(dir artifacts.Dir) (History, error) {
	var h History
	err := artifacts.ReadJSON(dir.Path(contract.HistoryFile), &h)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return h, err
}

// Record puts this run (run.json's start, this report's figures) into
// history.json: a new entry, or the same run's entry replaced when its
// report is aggregated again.
func Record(dir artifacts.Dir, run artifacts.Run, rep Report) (History, error) {
	h, err := ReadHistory(dir)
	if err != nil {
		return h, err
	}
	e := RunRecord{
		Started: run.Started, Finished: rep.Finished, Version: run.Version, Command: run.Command, DryRun: rep.DryRun,
		Total: rep.Total, Copied: rep.Copied, Skipped: rep.Skipped, Failed: rep.Failed, Planned: rep.Planned,
		Bytes: rep.Bytes, Verified: rep.Verified, ExitCode: rep.ExitCode(),
	}
	i := slices.IndexFunc(h.Runs, func(r RunRecord) bool { return r.Started.Equal(run.Started) })
	if i >= 0 {
		h.Runs[i] = e
	} else {
		h.Runs = append(h.Runs, e)
	}
	slices.SortStableFunc(h.Runs, func(a, b RunRecord) int { return a.Started.Compare(b.Started) })
	return h, artifacts.WriteJSON(dir.Path(contract.HistoryFile), h)
}

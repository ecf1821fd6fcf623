// Package backfillresult is backfill.json: what the Image API backfill of
// one shard did, per tag and in seed 000's counters. It is apart from
// package backfill (which talks to the cluster through client-go) so that
// the report, and the step binaries that only read the file, do not link
// Kubernetes.
package backfillresult

import (
	"fmt"
	"path/filepath"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
)

// Actions per image.
const (
	ActionApplied = "applied"
	ActionSkipped = "skipped"
	ActionFailed  = "failed"
)

// ImageResult is one tag's outcome.
type ImageResult struct {
	Image     string `json:"image"` // ns/stream:tag
	Digest    string `json:"digest,omitempty"`
	Reference string `json:"reference,omitempty"`
	Action    string `json:"action"`
	Reason    string `json:"reason,omitempty"` // why skipped
	Error     string `json:"error,omitempty"`
	Retryable bool   `json:"retryable,omitempty"`
}

// Result is backfill.json, with seed 000's counters.
type Result struct {
	API string `json:"api"` // GROUP/VERSION backfilled
	// Strategy is where the metadata was read: copy (the target) or
	// reuse-storage (the legacy registry).
	Strategy string        `json:"strategy,omitempty"`
	Total    int           `json:"total"`
	Success  int           `json:"success"`
	Applied  int           `json:"applied"`
	Skipped  int           `json:"skipped"`
	Failed   int           `json:"failed"`
	Images   []ImageResult `json:"images"`
	// AuditErrors are audit files (metadata/*.yaml, *.apply.txt) that could
	// not be written: the metadata is in the cluster, its record is not.
	AuditErrors []string `json:"auditErrors,omitempty"`
}

// ExitCode maps the result to the step's exit code.
func (r Result) ExitCode() int {
	if r.Failed == 0 && len(r.AuditErrors) > 0 {
		return contract.ExitFailed // an incomplete audit bundle: fix the folder, run again
	}
	if r.Failed == 0 {
		return contract.ExitOK
	}
	for _, im := range r.Images {
		if im.Action == ActionFailed && !im.Retryable {
			return contract.ExitFailed
		}
	}
	return contract.ExitRetryable
}

// Write writes shardDir/backfill.json.
func Write(shardDir string, r Result) error {
	return artifacts.WriteJSON(filepath.Join(shardDir, contract.BackfillJSON), r)
}

// Read reads shardDir/backfill.json; the error wraps fs.ErrNotExist when
// the shard was not backfilled.
func Read(shardDir string) (Result, error) {
	var r Result
	if err := artifacts.ReadJSON(filepath.Join(shardDir, contract.BackfillJSON), &r); err != nil {
		return Result{}, fmt.Errorf("reading the backfill result: %w", err)
	}
	return r, nil
}

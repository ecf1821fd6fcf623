// Package approval is the cutover's approval record: the decision and who
// took it, as a person supplied them to the Workflow's approval step
// (Argo's intermediate parameters, through `argo resume` or the UI's
// Resume), written into the run directory (approval.json) where the report
// and the audit bundle find it.
package approval

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
)

// The decisions a person may supply. A cutover resumed without one, or
// whose approval timed out, takes Argo's default: Reject.
const (
	Approve = "approve"
	Reject  = "reject"
)

// Decisions are the values the approval step accepts (its enum).
var Decisions = []string{Approve, Reject}

// ErrRejected: the cutover was rejected; nothing was switched.
var ErrRejected = errors.New("the cutover was rejected")

// Record is approval.json.
type Record struct {
	Decision string `json:"decision"`
	// Approver is who decided, as they wrote it; empty when nobody
	// supplied a decision (the approval timed out or was resumed without
	// one).
	Approver string `json:"approver"`
	// Workflow is the cutover Workflow the decision was taken in.
	Workflow string    `json:"workflow,omitempty"`
	Recorded time.Time `json:"recorded"`
}

// Options for Write.
type Options struct {
	RunDir             string
	Decision, Approver string
	Workflow           string
	Now                time.Time // zero: time.Now()
}

// Validate checks the decision.
func (o Options) Validate() error {
	if o.RunDir == "" {
		return errors.New("the run directory is empty")
	}
	switch o.Decision {
	case Approve, Reject:
		return nil
	}
	return fmt.Errorf("decision %q: want %s", o.Decision, strings.Join(Decisions, " or "))
}

// Write records the decision in the run directory. A rejection is
// recorded, then returned as ErrRejected (with who rejected it).
func Write(o Options) (Record, error) {
	if err := o.Validate(); err != nil {
		return Record{}, err
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	r := Record{Decision: o.Decision, Approver: strings.TrimSpace(o.Approver), Workflow: o.Workflow, Recorded: now.UTC()}
	if err := artifacts.WriteJSON(artifacts.Dir(o.RunDir).Path(contract.ApprovalFile), r); err != nil {
		return r, fmt.Errorf("recording the approval: %w", err)
	}
	if r.Decision == Reject {
		return r, fmt.Errorf("%w %s: the cluster was not switched", ErrRejected, r.By())
	}
	return r, nil
}

// By says who decided, in words.
func (r Record) By() string {
	if r.Approver == "" {
		return "by nobody (no decision was supplied: the approval timed out, or was resumed without one)"
	}
	return "by " + r.Approver
}

// Read reads approval.json from a run directory; nil when there is none.
func Read(dir artifacts.Dir) (*Record, error) {
	var r Record
	err := artifacts.ReadJSON(dir.Path(contract.ApprovalFile), &r)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

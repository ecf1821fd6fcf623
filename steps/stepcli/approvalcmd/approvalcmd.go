// Package approvalcmd is `verify approval`: the cutover's step after its
// approval, which records the decision and who took it in the run
// directory (approval.json, re-rendering the report with it) and fails on
// a rejection, so that the switch after it never runs.
package approvalcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/regmigrate/regmigrate/steps/approval"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/pipeline"
	"github.com/regmigrate/regmigrate/steps/stepcli"
)

// Name is the subcommand of the verify binary.
const Name = "approval"

// Parse parses approval's arguments (after the subcommand).
func Parse(args []string, stderr io.Writer) (approval.Options, error) {
	var o approval.Options
	fs := flag.NewFlagSet(contract.StepVerify+" "+Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.RunDir, "run-dir", "", "the run directory: approval.json is written there, report.md and report.html rendered again")
	fs.StringVar(&o.Decision, "decision", "", "approve or reject")
	fs.StringVar(&o.Approver, "approver", "", "who decided, as they wrote it")
	fs.StringVar(&o.Workflow, "workflow", "", "the cutover Workflow")
	var logFormat string
	fs.StringVar(&logFormat, "log-format", "json", "json or text")
	if err := stepcli.ParseFlags(fs, args); err != nil {
		return o, err
	}
	if err := o.Validate(); err != nil {
		return o, contract.Usage(err)
	}
	return o, nil
}

// Run records the decision.
func Run(_ context.Context, env stepcli.Env, args []string) (int, error) {
	o, err := Parse(args, env.Stderr)
	if err != nil {
		return 0, err
	}
	r, werr := approval.Write(o)
	if werr != nil && !errors.Is(werr, approval.ErrRejected) {
		return 0, werr
	}
	// The report shows the decision; a run directory without a report
	// (none in a cutover that got this far) keeps approval.json alone.
	if _, err := pipeline.Render(o.RunDir); err != nil && !errors.Is(err, pipeline.ErrMissingInput) {
		return 0, err
	}
	if werr != nil {
		return 0, werr
	}
	fmt.Fprintf(env.Stdout, "cutover approved %s\n", r.By())
	return contract.ExitOK, nil
}

// Package notifycmd is `verify notify`: the Workflow's exit handler, which
// posts the run's summary to the webhook whose URL is in
// $REGMIGRATE_WEBHOOK_URL (from a Secret; never a flag, never printed).
package notifycmd

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/notify"
	"github.com/regmigrate/regmigrate/steps/stepcli"
)

// Name is the subcommand of the verify binary.
const Name = "notify"

// URLEnv holds the webhook's URL.
const URLEnv = "REGMIGRATE_WEBHOOK_URL"

// Flags are notify's flags, parsed.
type Flags struct {
	Options   notify.Options
	logFormat string
}

// Parse parses notify's arguments (after the subcommand).
func Parse(args []string, stderr io.Writer) (*Flags, error) {
	f := &Flags{}
	o := &f.Options
	fs := flag.NewFlagSet(contract.StepVerify+" "+Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Format, "format", notify.FormatJSON, "payload: json (regmigrate's summary) or slack (Slack-compatible incoming webhook)")
	fs.StringVar(&o.URLSource, "url-from", "$"+URLEnv, "where the webhook URL comes from, for errors (e.g. Secret NAME, key KEY)")
	fs.StringVar(&o.Migration, "migration", "", "the migration's name")
	fs.StringVar(&o.Workflow, "workflow", "", "the Workflow's name")
	fs.StringVar(&o.Namespace, "namespace", "", "the Workflow's namespace")
	fs.StringVar(&o.Status, "status", "", "the Workflow's status: Succeeded, Failed or Error")
	fs.StringVar(&o.Failures, "failures", "", "the Workflow's failed nodes, as Argo's {{workflow.failures}} JSON")
	fs.StringVar(&o.UIBaseURL, "ui-url", "", "the Argo UI's base URL, for a link to the Workflow")
	fs.StringVar(&o.RunDir, "run-dir", "", "the run directory (report.json, approval.json), when the run wrote one")
	fs.StringVar(&o.ReportLocation, "report", "", "where the report is kept, as the summary says it")
	fs.StringVar(&f.logFormat, "log-format", "json", "json or text")
	if err := stepcli.ParseFlags(fs, args); err != nil {
		return nil, err
	}
	if err := o.ValidateSettings(); err != nil {
		return nil, contract.Usage(err)
	}
	return f, nil
}

// Run posts the summary.
func Run(ctx context.Context, env stepcli.Env, args []string) (int, error) {
	f, err := Parse(args, env.Stderr)
	if err != nil {
		return 0, err
	}
	f.Options.URL = env.Getenv(URLEnv)
	if err := f.Options.Validate(); err != nil {
		return 0, contract.Usage(err)
	}
	s, err := notify.Run(ctx, f.Options)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(env.Stdout, "notified: %s %s (%s payload)\n", s.Workflow, s.Status, f.Options.Format)
	return contract.ExitOK, nil
}

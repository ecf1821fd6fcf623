// Package packcmd is `verify pack-layout`: the Workflow's last step when
// its shards wrote into one OCI image layout on a volume (oci:DIR on a
// PersistentVolumeClaim). It merges the index parts the shard pods wrote
// into index.json and carries the run's plan and report into the layout
// (airgap.Pack), as `regmigrate run --to oci:DIR` leaves them.
package packcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/regmigrate/regmigrate/steps/airgap"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/stepcli"
)

// Name is the subcommand of the verify binary.
const Name = "pack-layout"

// Options are pack-layout's flags, parsed.
type Options struct {
	Layout string // the layout's directory
	RunDir string // the run directory: its plan and report go into the layout
}

// Parse parses pack-layout's arguments (after the subcommand).
func Parse(args []string, stderr io.Writer) (Options, error) {
	var o Options
	fs := flag.NewFlagSet(contract.StepVerify+" "+Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Layout, "layout", "", "the OCI image layout's directory the shards wrote into")
	fs.StringVar(&o.RunDir, "run-dir", "", "the run directory whose plan and report go into the layout (regmigrate/export/)")
	var logFormat string
	fs.StringVar(&logFormat, "log-format", "json", "json or text")
	if err := stepcli.ParseFlags(fs, args); err != nil {
		return o, err
	}
	if o.Layout == "" || o.RunDir == "" {
		return o, contract.Usage(errors.New("--layout and --run-dir are required"))
	}
	return o, nil
}

// Run merges the parts and carries the record.
func Run(_ context.Context, env stepcli.Env, args []string) (int, error) {
	o, err := Parse(args, env.Stderr)
	if err != nil {
		return 0, err
	}
	res, err := airgap.Pack(o.Layout, o.RunDir)
	if err != nil {
		return 0, fmt.Errorf("packing %s: %w", o.Layout, err)
	}
	if err := stepcli.WriteOutputs(env, map[string]int{"images": res.Named, "parts": len(res.Parts)}); err != nil {
		fmt.Fprintf(env.Stderr, "writing output parameters: %v\n", err)
	}
	fmt.Fprintf(env.Stdout, "pack-layout: %d index parts merged into %s/index.json (%d images named); plan and report in %s\n",
		len(res.Parts), o.Layout, res.Named, airgap.RecordPath(o.Layout))
	return contract.ExitOK, nil
}

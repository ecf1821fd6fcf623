// Package backfillcmd is the backfill-shard step's command line.
package backfillcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/regmigrate/regmigrate/steps/backfill"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/pipeline"
	"github.com/regmigrate/regmigrate/steps/stepcli"
	"github.com/regmigrate/regmigrate/steps/stepcli/clusterflags"
)

// Flags are backfill-shard's flags, parsed.
type Flags struct {
	stepcli.Common
	Cluster  clusterflags.Flags
	ShardDir string
	Strategy string
	Verbose  bool
	Every    int
}

// Parse parses backfill-shard's arguments.
func Parse(args []string, stderr io.Writer) (*Flags, error) {
	f := &Flags{}
	fs := flag.NewFlagSet(contract.StepBackfill, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.Common.Bind(fs)
	fs.StringVar(&f.ShardDir, "shard-dir", "", "the shard's folder: reads mirror.json (else mapping.txt), writes backfill.json and metadata/")
	fs.StringVar(&f.Strategy, "strategy", backfill.StrategyCopy, "copy (inspect the target) or reuse-storage (inspect the legacy registry)")
	f.Cluster.Bind(fs)
	fs.BoolVar(&f.Verbose, "verbose", false, "log every image")
	fs.IntVar(&f.Every, "progress-every", 100, "log a progress line every N images (0: none)")
	if err := stepcli.ParseFlags(fs, args); err != nil {
		return nil, err
	}
	if f.ShardDir == "" {
		return nil, contract.Usage(errors.New("--shard-dir is required"))
	}
	return f, nil
}

// Run runs backfill-shard.
func Run(ctx context.Context, env stepcli.Env, args []string) (int, error) {
	f, err := Parse(args, env.Stderr)
	if err != nil {
		return 0, err
	}
	log, c, err := f.Client(env)
	if err != nil {
		return 0, err
	}
	api, err := f.Cluster.Client()
	if err != nil {
		return 0, err
	}
	items, err := pipeline.BackfillItems(f.ShardDir)
	if errors.Is(err, pipeline.ErrMissingInput) {
		return 0, contract.Usage(err)
	}
	if err != nil {
		return 0, err
	}
	ph := stepcli.ProgressFor(env).Start("backfill", len(items))
	res, err := backfill.Shard(ctx, f.ShardDir, backfill.Options{
		API: api, Registry: c, Strategy: f.Strategy, Jobs: f.Jobs,
		Progress: ph, Logger: log, Verbose: f.Verbose, ProgressEvery: f.Every,
	})
	ph.Finish()
	if err := stepcli.WriteOutputs(env, map[string]int{"applied": res.Applied, "skipped": res.Skipped, "failed": res.Failed}); err != nil {
		log.Warn("writing output parameters", "err", err)
	}
	if err != nil {
		return 0, err
	}
	// seed 000's summary line
	fmt.Fprintf(env.Stdout, "[metadata] done total=%d success=%d applied=%d skipped=%d failed=%d\n", res.Total, res.Success, res.Applied, res.Skipped, res.Failed)
	return res.ExitCode(), nil
}

// Package verifycmd is the verify step's command line: per shard
// (--shard-dir) pipeline.VerifyShard, with the ImageStreamTag check when
// --check-image-api names a cluster as backfill-shard does; for the run
// (--run-dir) pipeline.Aggregate. They are the calls `regmigrate run` makes.
package verifycmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imagecheck"
	"github.com/regmigrate/regmigrate/steps/pipeline"
	"github.com/regmigrate/regmigrate/steps/stepcli"
	"github.com/regmigrate/regmigrate/steps/stepcli/approvalcmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/clusterflags"
	"github.com/regmigrate/regmigrate/steps/stepcli/notifycmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/packcmd"
	"github.com/regmigrate/regmigrate/steps/verify"
)

// Flags are verify's flags, parsed.
type Flags struct {
	stepcli.Common
	ShardDir string
	RunDir   string
	Mode     string
	// CheckImageAPI checks every ImageStreamTag of the shard through the
	// cluster the Cluster flags name (in-cluster without --kubeconfig).
	CheckImageAPI bool
	Cluster       clusterflags.Flags
	// Started is when the run began (the Workflow's creation), for the
	// report's start line and duration.
	Started time.Time
}

// Parse parses verify's arguments.
func Parse(args []string, stderr io.Writer) (*Flags, error) {
	f := &Flags{}
	fs := flag.NewFlagSet(contract.StepVerify, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.Common.Bind(fs)
	fs.StringVar(&f.ShardDir, "shard-dir", "", "verify one shard: reads mirror.json (or mapping.txt), writes verify.json")
	fs.StringVar(&f.RunDir, "run-dir", "", "aggregate: read every shard's results, write report.json and report.md")
	fs.StringVar(&f.Mode, "mode", verify.ModeAuto, "auto (deep-check what mirror copied), full (read every manifest and read and hash every blob) or digest")
	fs.BoolVar(&f.CheckImageAPI, "check-image-api", false, "also check every ImageStreamTag of the shard (digest and TARGET/ns/stream@digest) in the cluster below")
	f.Cluster.Bind(fs)
	var started string
	fs.StringVar(&started, "started", "", "with --run-dir: when the run began, RFC 3339 (the Workflow passes its creation time)")
	if err := stepcli.ParseFlags(fs, args); err != nil {
		return nil, err
	}
	if started != "" {
		t, err := time.Parse(time.RFC3339, started)
		if err != nil {
			return nil, contract.Usage(fmt.Errorf("--started %q: want an RFC 3339 time such as 2026-11-30T06:00:00Z", started))
		}
		f.Started = t
	}
	if (f.ShardDir == "") == (f.RunDir == "") {
		return nil, contract.Usage(errors.New("give exactly one of --shard-dir and --run-dir"))
	}
	if f.CheckImageAPI && f.RunDir != "" {
		return nil, contract.Usage(errors.New("--check-image-api checks a shard: give it with --shard-dir"))
	}
	if given := clusterflags.Given(fs); len(given) > 0 && !f.CheckImageAPI {
		return nil, contract.Usage(fmt.Errorf("%s name a cluster to check: add --check-image-api", strings.Join(given, ", ")))
	}
	return f, nil
}

// Subcommands of the verify binary, which runs them in the Workflow's
// small steps: notify (the exit handler), approval (the cutover's record
// of its decision) and pack-layout (the shards' layout on a volume made
// one).
var Subcommands = map[string]stepcli.RunFunc{
	notifycmd.Name:   notifycmd.Run,
	approvalcmd.Name: approvalcmd.Run,
	packcmd.Name:     packcmd.Run,
}

// Run runs verify, or one of its Subcommands when the first argument
// names it.
func Run(ctx context.Context, env stepcli.Env, args []string) (int, error) {
	if len(args) > 0 {
		if sub, ok := Subcommands[args[0]]; ok {
			return sub(ctx, env, args[1:])
		}
	}
	f, err := Parse(args, env.Stderr)
	if err != nil {
		return 0, err
	}
	if f.RunDir != "" {
		return aggregate(env, f.RunDir, f.Started)
	}
	log, c, err := f.Client(env)
	if err != nil {
		return 0, err
	}
	var tags pipeline.TagChecker
	if f.CheckImageAPI {
		api, err := f.Cluster.Client()
		if err != nil {
			return 0, err
		}
		tags = imagecheck.Checker{API: api, Jobs: f.Jobs}
	}
	n, err := pipeline.ShardImages(f.ShardDir)
	if errors.Is(err, pipeline.ErrMissingInput) {
		return 0, contract.Usage(fmt.Errorf("verifying shard %s: %w", f.ShardDir, err))
	}
	if err != nil {
		return 0, fmt.Errorf("verifying shard %s: %w", f.ShardDir, err)
	}
	ph := stepcli.ProgressFor(env).Start("verify", n)
	res, err := pipeline.VerifyShard(ctx, pipeline.VerifyShardOptions{
		ShardDir: f.ShardDir, Client: c, Mode: f.Mode, Jobs: f.Jobs, ImageAPI: tags, Progress: ph, Logger: log,
	})
	ph.Finish()
	if errors.Is(err, pipeline.ErrMissingInput) {
		return 0, contract.Usage(err)
	}
	if err != nil {
		return 0, err
	}
	if err := stepcli.WriteOutputs(env, map[string]int{"passed": res.Passed, "failed": res.Failed}); err != nil {
		log.Warn("writing output parameters", "err", err)
	}
	fmt.Fprintf(env.Stdout, "verify: %d passed, %d failed\n", res.Passed, res.Failed)
	if res.ImageAPI != nil {
		fmt.Fprintf(env.Stdout, "verify: %d ImageStreamTags passed, %d failed\n", res.ImageAPI.Passed, res.ImageAPI.Failed)
	}
	return res.ExitCode(), nil
}

// aggregate writes report.json and report.md from the shards' results.
func aggregate(env stepcli.Env, runDir string, started time.Time) (int, error) {
	rep, err := pipeline.Aggregate(pipeline.AggregateOptions{RunDir: runDir, Started: started})
	if errors.Is(err, pipeline.ErrMissingInput) {
		return 0, contract.Usage(err)
	}
	if err != nil {
		return 0, err
	}
	failedShards := 0
	for _, s := range rep.Shards {
		if s.Failed > 0 || s.VerifyFailed > 0 {
			failedShards++
		}
	}
	// The run's totals, as output parameters: the migration's metrics.
	if err := stepcli.WriteOutputs(env, map[string]int{
		"total": rep.Total, "copied": rep.Copied, "skipped": rep.Skipped, "failed": rep.Failed,
		"bytes": int(rep.Bytes), "verify-failed": rep.VerifyFailed, "failed-shards": failedShards,
	}); err != nil {
		fmt.Fprintf(env.Stderr, "writing output parameters: %v\n", err)
	}
	fmt.Fprintln(env.Stdout, rep.SummaryLine())
	return rep.ExitCode(), nil
}

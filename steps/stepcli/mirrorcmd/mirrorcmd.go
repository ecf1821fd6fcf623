// Package mirrorcmd is the mirror-shard step's command line.
package mirrorcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/mirror"
	"github.com/regmigrate/regmigrate/steps/pipeline"
	"github.com/regmigrate/regmigrate/steps/progress"
	"github.com/regmigrate/regmigrate/steps/stepcli"
)

// Flags are mirror-shard's flags, parsed.
type Flags struct {
	stepcli.Common
	ShardDir      string
	Platforms     string
	NoReferrers   bool
	NoAttachments bool
	DryRun        bool
	Strategy      string
	ECR           stepcli.ECRFlags
}

// Parse parses mirror-shard's arguments.
func Parse(args []string, stderr io.Writer) (*Flags, error) {
	f := &Flags{}
	fs := flag.NewFlagSet(contract.StepMirror, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.Common.Bind(fs)
	fs.StringVar(&f.ShardDir, "shard-dir", "", "the shard's folder: reads mapping.txt, writes mirror.log and mirror.json")
	fs.StringVar(&f.Platforms, "platform", "", "comma-separated platforms to keep (changes index digests)")
	fs.BoolVar(&f.NoReferrers, "no-referrers", false, "do not copy OCI referrers")
	fs.BoolVar(&f.NoAttachments, "no-attachments", false, "do not copy signature/attestation tags (sha256-<hex>.sig/.att/.sbom)")
	fs.BoolVar(&f.DryRun, "dry-run", false, "compare only")
	fs.StringVar(&f.Strategy, "strategy", contract.StrategyCopy, "copy, or reuse-storage (the new registry serves the legacy storage: nothing is copied)")
	f.ECR.Bind(fs)
	if err := stepcli.ParseFlags(fs, args); err != nil {
		return nil, err
	}
	if f.ShardDir == "" {
		return nil, contract.Usage(errors.New("--shard-dir is required"))
	}
	if f.Strategy != contract.StrategyCopy && f.Strategy != contract.StrategyReuseStorage {
		return nil, contract.Usage(fmt.Errorf("--strategy %q: want %s or %s", f.Strategy, contract.StrategyCopy, contract.StrategyReuseStorage))
	}
	return f, nil
}

// Run runs mirror-shard.
func Run(ctx context.Context, env stepcli.Env, args []string) (int, error) {
	f, err := Parse(args, env.Stderr)
	if err != nil {
		return 0, err
	}
	f.WriteLayout = !f.DryRun // a shard writing into an oci:DIR on a volume (--layout)
	log, c, err := f.Client(env)
	if err != nil {
		return 0, err
	}
	repos, err := f.ECR.Maker(f.Keychains)
	if err != nil {
		return 0, contract.Usage(err)
	}
	planned, err := artifacts.ReadMapping(filepath.Join(f.ShardDir, contract.ShardMapping))
	if err != nil {
		return 0, contract.Usage(err)
	}
	reuse := f.Strategy == contract.StrategyReuseStorage
	ph := stepcli.ProgressFor(env).StartBytes("copy", len(planned))
	if reuse { // nothing moves: images only
		ph = stepcli.ProgressFor(env).Start("copy", len(planned))
	}
	res, err := pipeline.MirrorShard(ctx, pipeline.MirrorShardOptions{
		ShardDir: f.ShardDir, ReuseStorage: reuse,
		Mirror: mirror.Options{
			Client: c, Jobs: f.Jobs, Platforms: stepcli.SplitList(f.Platforms), NoReferrers: f.NoReferrers,
			NoAttachments: f.NoAttachments, DryRun: f.DryRun, Logger: log, Progress: ph, Repositories: repos,
		},
	})
	ph.Finish()
	if err := stepcli.WriteOutputs(env, map[string]int{"copied": res.Copied, "skipped": res.Skipped, "failed": res.Failed, "bytes": int(res.Bytes)}); err != nil {
		log.Warn("writing output parameters", "err", err)
	}
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(env.Stdout, "mirror: %d copied, %d skipped, %d failed, %s\n", res.Copied, res.Skipped, res.Failed, progress.HumanBytes(res.Bytes))
	return res.ExitCode(), nil
}

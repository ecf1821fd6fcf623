// Package runner runs the whole pipeline on one machine, in-process, with
// the same step packages the Argo pods run: export, mirror every shard,
// backfill, then pipeline.VerifyShard per shard and pipeline.Aggregate for
// the report, as the verify step does. The run directory has the artifact
// layout of DESIGN.md.
package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/backfill"
	"github.com/regmigrate/regmigrate/steps/backfillresult"
	"github.com/regmigrate/regmigrate/steps/connect"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/imageapi"
	"github.com/regmigrate/regmigrate/steps/imagecheck"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/mirror"
	"github.com/regmigrate/regmigrate/steps/pipeline"
	"github.com/regmigrate/regmigrate/steps/progress"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/steps/report"
	"github.com/regmigrate/regmigrate/steps/verify"
)

// Options for Run.
type Options struct {
	Connect connect.Options
	// Export options; its Client is set by Run.
	Export export.Options
	// Out is the run directory. When it holds a previous run's plan
	// (shards.json), the plan is reused and only what is missing is copied.
	Out string
	// Rediscover ignores a previous plan in Out and exports again.
	Rediscover    bool
	DryRun        bool
	Jobs          int // images in flight across all shards
	Platforms     []string
	NoReferrers   bool
	NoAttachments bool
	VerifyMode    string // verify.ModeAuto (default), ModeFull or ModeDigest
	// Strategy is backfill.StrategyCopy (default) or StrategyReuseStorage
	// (the new registry serves the legacy storage: nothing is copied).
	Strategy string
	// Cluster, when set, is backfilled with Image API metadata and checked.
	Cluster *Cluster
	// Migration (the spec's name), Command (how the run was started) and
	// Spec (the spec as it ran, YAML) go into run.json for the report.
	Migration string
	Command   []string
	Spec      string
	Progress  *progress.Reporter
	Logger    *slog.Logger
	// Client overrides the client built from Connect (tests).
	Client *registry.Client
}

// Cluster names the cluster whose Image API is backfilled.
type Cluster struct {
	Kubeconfig string
	Context    string
	ImageAPI   string // GROUP/VERSION; empty = discover
	QPS        float32
	Burst      int
	Verbose    bool
}

// Run runs the pipeline and writes the run directory. The error is for
// problems that stop the run (bad options, an unreachable source catalog);
// image failures are in the report.
func Run(ctx context.Context, o Options) (report.Report, error) {
	started := time.Now()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Out == "" {
		return report.Report{}, errors.New("no run directory: give --out DIR")
	}
	if o.Jobs <= 0 {
		o.Jobs = mirror.DefaultJobs
	}
	switch o.Strategy {
	case "":
		o.Strategy = backfill.StrategyCopy
	case backfill.StrategyCopy, backfill.StrategyReuseStorage:
	default:
		return report.Report{}, fmt.Errorf("strategy %q: want %s or %s", o.Strategy, backfill.StrategyCopy, backfill.StrategyReuseStorage)
	}
	reuse := o.Strategy == backfill.StrategyReuseStorage
	var api *imageapi.Client
	if o.Cluster != nil && !o.DryRun {
		cfg, err := imageapi.Config(o.Cluster.Kubeconfig, o.Cluster.Context, o.Cluster.QPS, o.Cluster.Burst)
		if err != nil {
			return report.Report{}, err
		}
		if api, err = imageapi.New(cfg, o.Cluster.ImageAPI); err != nil {
			return report.Report{}, err
		}
	}
	c := o.Client
	if c == nil {
		o.Connect.Logger = o.Logger
		var err error
		if c, err = connect.Client(o.Connect); err != nil {
			return report.Report{}, err
		}
	}
	dir := artifacts.Dir(o.Out)
	if err := artifacts.WriteRun(dir, artifacts.Run{
		Migration: o.Migration, Version: contract.Version, Command: artifacts.RedactArgs(o.Command), Spec: o.Spec,
		Source: o.Export.From.String(), Target: o.Export.To.String(), Strategy: o.Strategy, DryRun: o.DryRun, Started: started,
	}); err != nil {
		return report.Report{}, fmt.Errorf("recording the run in %s: %w", o.Out, err)
	}

	plan, shards, reused, err := loadPlan(dir, o.Rediscover)
	if err != nil {
		return report.Report{}, err
	}
	var exportErrs []string
	if !reused {
		eo := o.Export
		eo.Client, eo.Progress, eo.Logger = c, o.Progress, o.Logger
		// Digests are resolved by the copy, which asks source and target at
		// once; reuse-storage copies nothing, so export resolves them.
		eo.SkipResolve = !reuse
		res, err := export.Run(ctx, eo)
		if err != nil {
			return report.Report{}, fmt.Errorf("export: %w", err)
		}
		for _, e := range res.Errors {
			o.Logger.Warn("export", "problem", e)
		}
		if err := export.Write(dir, res); err != nil {
			return report.Report{}, fmt.Errorf("writing the plan to %s: %w", o.Out, err)
		}
		plan, shards, exportErrs = res.Plan, res.Shards, res.Errors
	} else {
		var prev export.Summary
		if err := artifacts.ReadJSON(dir.Path(contract.ExportFile), &prev); err == nil {
			exportErrs = prev.Errors
		}
		o.Logger.Info("reusing the plan of a previous run", "dir", o.Out, "images", plan.Total, "shards", len(plan.Shards))
	}

	// Mirror every shard, then backfill and verify them; shards share the
	// blob tracker (each unique blob is read once) and one bound on images
	// in flight. Each shard directory ends with this run's results only.
	blobs := mirror.NewBlobs()
	cache := verify.NewCache()
	var mph *progress.Phase
	if reuse { // nothing moves: no bytes to show
		mph = o.Progress.Start("copy", plan.Total)
	} else {
		mph = o.Progress.StartBytes("copy", plan.Total)
	}
	inputs := make([]report.ShardInput, len(plan.Shards))
	sem := make(chan struct{}, o.Jobs)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i, sh := range plan.Shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var in report.ShardInput
			err := clearResults(dir.ShardDir(sh.ID))
			switch {
			case err != nil:
			case reuse:
				in, err = planOnly(dir, sh, shards[sh.ID], mph)
			default:
				in, err = runShard(ctx, o, c, dir, sh, shards[sh.ID], blobs, sem, mph)
			}
			inputs[i] = in
			if err != nil {
				mu.Lock()
				firstErr = errors.Join(firstErr, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	mph.Finish()
	if firstErr != nil {
		return report.Report{}, firstErr
	}
	// The plan files now get the digests the copy resolved and the
	// attachments it found, so that a rerun, verify and the backfill read
	// one complete plan.
	if err := recordResolved(dir, &plan, inputs, exportErrs); err != nil {
		return report.Report{}, fmt.Errorf("writing the resolved plan: %w", err)
	}
	if api != nil {
		// What each shard backfills is known before the first starts: the
		// phase's total does not move.
		todos := make([][]artifacts.Item, len(plan.Shards))
		n := 0
		for i, sh := range plan.Shards {
			todo, err := pipeline.BackfillItems(dir.ShardDir(sh.ID))
			if err != nil {
				return report.Report{}, fmt.Errorf("backfill of shard %s: %w", sh.ID, err)
			}
			todos[i] = todo
			n += len(todo)
		}
		bph := o.Progress.Start("backfill", n)
		for i, sh := range plan.Shards {
			sd, todo := dir.ShardDir(sh.ID), todos[i]
			b, err := backfill.Run(ctx, backfill.Options{
				API: api, Registry: c, Items: todo, Strategy: o.Strategy,
				MetadataDir: filepath.Join(sd, contract.MetadataDir), Progress: bph, Logger: o.Logger, Verbose: o.Cluster.Verbose,
			})
			if err != nil {
				return report.Report{}, fmt.Errorf("backfill of shard %s: %w", sh.ID, err)
			}
			if err := backfillresult.Write(sd, b); err != nil {
				return report.Report{}, err
			}
		}
		bph.Finish()
	}
	if !o.DryRun {
		var tags pipeline.TagChecker
		if api != nil {
			tags = imagecheck.Checker{API: api}
		}
		n := 0 // what mirror.json lists: the plan and the signature tags found
		for _, in := range inputs {
			n += len(in.Mirror.Images)
		}
		vph := o.Progress.Start("verify", n)
		for _, sh := range plan.Shards {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := pipeline.VerifyShard(ctx, pipeline.VerifyShardOptions{
					ShardDir: dir.ShardDir(sh.ID), Client: c, Mode: o.VerifyMode, Observed: !reuse,
					Known: blobs.Has, Cache: cache, ImageAPI: tags, Progress: vph, Logger: o.Logger.With("shard", sh.ID),
				})
				if err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		vph.Finish()
		if firstErr != nil {
			return report.Report{}, firstErr
		}
	}
	rep, err := pipeline.Aggregate(pipeline.AggregateOptions{RunDir: o.Out, DryRun: o.DryRun, Started: started})
	if err != nil {
		return rep, err
	}
	return rep, ctx.Err()
}

// loadPlan reads a previous run's plan from dir.
func loadPlan(dir artifacts.Dir, rediscover bool) (artifacts.Plan, map[string][]artifacts.Item, bool, error) {
	var plan artifacts.Plan
	if rediscover {
		return plan, nil, false, nil
	}
	err := artifacts.ReadJSON(dir.Path(contract.ShardsFile), &plan)
	if errors.Is(err, fs.ErrNotExist) {
		return plan, nil, false, nil
	}
	if err != nil {
		return plan, nil, false, fmt.Errorf("reading the previous plan (use --rediscover to export again): %w", err)
	}
	shards := map[string][]artifacts.Item{}
	for _, s := range plan.Shards {
		items, err := artifacts.ReadMapping(dir.Path(contract.ShardsDir, s.ID, contract.ShardMapping))
		if err != nil {
			return plan, nil, false, fmt.Errorf("reading the previous plan (use --rediscover to export again): %w", err)
		}
		shards[s.ID] = items
	}
	return plan, shards, true, nil
}

func runShard(ctx context.Context, o Options, c *registry.Client, dir artifacts.Dir, sh artifacts.Shard, items []artifacts.Item, blobs *mirror.Blobs, sem chan struct{}, ph *progress.Phase) (report.ShardInput, error) {
	in := report.ShardInput{Shard: sh}
	var log bytes.Buffer
	res, err := mirror.Run(ctx, mirror.Options{
		Client: c, Items: items, Jobs: o.Jobs, Platforms: o.Platforms, NoReferrers: o.NoReferrers, NoAttachments: o.NoAttachments,
		DryRun: o.DryRun, Blobs: blobs, Log: &log, Logger: o.Logger.With("shard", sh.ID), Progress: ph, Slots: sem,
	})
	in.Mirror = res
	if err != nil && !errors.Is(err, context.Canceled) {
		return in, fmt.Errorf("shard %s: %w", sh.ID, err)
	}
	sd := dir.ShardDir(sh.ID)
	if o.DryRun {
		return in, artifacts.WriteJSON(sd+"/"+contract.MirrorResult, res)
	}
	// mirror.log accumulates across reruns: it is the audit trail.
	f, ferr := os.OpenFile(sd+"/"+contract.MirrorLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if ferr != nil {
		return in, ferr
	}
	if _, ferr = f.Write(log.Bytes()); ferr != nil {
		f.Close()
		return in, ferr
	}
	if ferr = f.Close(); ferr != nil {
		return in, ferr
	}
	return in, artifacts.WriteJSON(sd+"/"+contract.MirrorResult, res)
}

// clearResults removes a previous run's backfill.json and verify.json from
// a shard directory this run reuses: the aggregate reads what the shard
// directory holds, and a phase this run skips must not leave an old verdict.
func clearResults(shardDir string) error {
	for _, f := range []string{contract.BackfillJSON, contract.VerifyResult} {
		if err := os.Remove(filepath.Join(shardDir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("clearing the previous results of %s: %w", shardDir, err)
		}
	}
	return nil
}

// planOnly is the reuse-storage "copy": nothing moves; every resolved image
// is in place already (the registries share storage). It writes the
// shard's mirror.json as mirror-shard would.
func planOnly(dir artifacts.Dir, sh artifacts.Shard, items []artifacts.Item, ph *progress.Phase) (report.ShardInput, error) {
	var res mirror.Result
	for _, it := range items {
		im := mirror.ImageResult{Source: it.Source.WithoutDigest().String(), Target: it.Target.String(), Digest: it.Source.Digest, Status: contract.StatusSkipped}
		if it.Source.Digest == "" {
			im.Status, im.Error = contract.StatusFailed, it.Error
			res.Failed++
		} else {
			res.Skipped++
		}
		res.Images = append(res.Images, im)
		ph.Add(im.Status, 0)
	}
	res.Total = len(items)
	in := report.ShardInput{Shard: sh, Mirror: res}
	return in, artifacts.WriteJSON(filepath.Join(dir.ShardDir(sh.ID), contract.MirrorResult), res)
}

// recordResolved rewrites the plan with what the copy step resolved.
func recordResolved(dir artifacts.Dir, plan *artifacts.Plan, inputs []report.ShardInput, exportErrs []string) error {
	res := export.Result{Plan: *plan, Shards: map[string][]artifacts.Item{}, Errors: exportErrs}
	res.Plan.Total = 0
	for i, in := range inputs {
		items := make([]artifacts.Item, 0, len(in.Mirror.Images))
		for _, im := range in.Mirror.Images {
			src, err := imageref.Parse(im.Source)
			if err != nil {
				return err
			}
			dst, err := imageref.Parse(im.Target)
			if err != nil {
				return err
			}
			it := artifacts.Item{Source: src, Target: dst}
			if len(in.Mirror.Warnings) == 0 { // a platform filter makes the target digest differ from the source's
				it.Source.Digest = im.Digest
			}
			if it.Source.Digest == "" {
				it.Error = im.Error
			}
			items = append(items, it)
		}
		res.Shards[in.Shard.ID] = items
		res.Plan.Shards[i].Images = len(items)
		res.Plan.Total += len(items)
		res.Items = append(res.Items, items...)
	}
	*plan = res.Plan
	return export.Write(dir, res)
}

// Package runner runs the whole pipeline on one machine, in-process, with
// the same step packages the Argo pods run: export, mirror every shard,
// backfill, then pipeline.VerifyShard per shard and pipeline.Aggregate for
// the report, as the verify step does. The run directory has the artifact
// layout of DESIGN.md.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/regmigrate/regmigrate/steps/airgap"
	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/backfill"
	"github.com/regmigrate/regmigrate/steps/connect"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/imageapi"
	"github.com/regmigrate/regmigrate/steps/imagecheck"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/mirror"
	"github.com/regmigrate/regmigrate/steps/ocilayout"
	"github.com/regmigrate/regmigrate/steps/pipeline"
	"github.com/regmigrate/regmigrate/steps/progress"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/steps/report"
	"github.com/regmigrate/regmigrate/steps/verify"
	"golang.org/x/sync/semaphore"
)

// Options for Run.
type Options struct {
	Connect connect.Options
	// Export options; its Client is set by Run.
	Export export.Options
	// Out is the run directory. When it holds a previous run's plan
	// (shards.json), the plan is reused and only what is missing is copied.
	Out string
	// BadLines are input lines that could not be read: scope errors in
	// export.json, so the report fails on them while the valid lines run.
	BadLines []error
	// Scope is the definition of what to migrate (scope.json). A previous
	// plan in Out is resumed only when its definition is the same.
	Scope report.Scope
	// Say prints what the run is doing, for the person who started it.
	Say func(format string, args ...any)
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
	// PhaseOne, in the second phase of a disconnected move (layout to
	// registry), is the first phase's report, linked from this one's.
	PhaseOne *report.PhaseLink
	// SplitSize cuts an oci-archive target into parts of at most this
	// many bytes (0: one file).
	SplitSize int64
	// Repositories creates the target repositories a registry lacks
	// before the copy (ECR: steps/ecrrepos); nil: none.
	Repositories mirror.RepositoryMaker
}

// LayoutDir is the layout a target on disk is written into: the directory
// of oci:DIR, the layout beside oci-archive:FILE (packed at the end of the
// run); "" for a registry.
func LayoutDir(l imageref.Location) string {
	switch l.Transport {
	case imageref.TransportOCI:
		return l.Path
	case imageref.TransportOCIArchive:
		return ocilayout.Staging(l.Path)
	}
	return ""
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
	if o.Say == nil {
		o.Say = func(string, ...any) {}
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
		return report.Report{}, contract.Usage(fmt.Errorf("strategy %q: want %s or %s", o.Strategy, backfill.StrategyCopy, backfill.StrategyReuseStorage))
	}
	// One run per directory; the kernel drops the lock however we end.
	unlock, err := artifacts.Lock(o.Out, contract.LockFile, strings.Join(o.Command, " "))
	if err != nil {
		return report.Report{}, contract.Usage(err)
	}
	defer unlock()
	// This invocation's own record (runs/<id>/): its log, with timestamps,
	// and at the end a copy of the report it produced. The run directory's
	// report.json is the current state of the whole migration.
	run := artifacts.Run{
		Migration: o.Migration, Version: contract.Version, Command: artifacts.RedactArgs(o.Command), Spec: o.Spec,
		Source: o.Export.From.String(), Target: o.Export.To.String(), Strategy: o.Strategy, DryRun: o.DryRun, Started: started,
	}
	record, err := newRecord(o.Out, run)
	if err != nil {
		return report.Report{}, err
	}
	defer record.close()
	o.Logger = slog.New(slog.NewMultiHandler(o.Logger.Handler(), record.handler()))
	reuse := o.Strategy == backfill.StrategyReuseStorage
	if o.Export.To.Transport != "" && o.VerifyMode == "" {
		o.VerifyMode = verify.ModeFull // a layout's every blob is read and hashed again
	}
	if o.PhaseOne != nil {
		if err := airgap.WriteLink(o.Out, *o.PhaseOne); err != nil {
			return report.Report{}, err
		}
	}
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
		o.Connect.OnWait = waitProgress(o.Progress)
		var err error
		if c, err = connect.Client(o.Connect); err != nil {
			return report.Report{}, err
		}
	}
	dir := artifacts.Dir(o.Out)

	plan, reused, err := loadPlan(dir, o.Rediscover)
	if err != nil {
		return report.Report{}, err
	}
	if reused {
		if err := sameScope(o.Out, o.Scope); err != nil {
			return report.Report{}, err
		}
		// A resumed plan is not exported again: the registries are
		// reached and logged in to here, once, before anything is copied.
		if err := pipeline.Preflight(ctx, c, o.Export.From, o.Export.To, o.Export.Entries); err != nil {
			return report.Report{}, err
		}
		prev, _ := pipeline.ReadScope(o.Out)
		o.Say("resuming the plan in %s: %d images in %d shards, planned at %s (tags added to the source since are not in it: --rediscover plans again)",
			o.Out, plan.Total, len(plan.Shards), prev.PlannedAt.Local().Format(time.DateTime))
	}
	// The run directory's run.json is this run's, once it is sure to run.
	if err := artifacts.WriteRun(dir, run); err != nil {
		return report.Report{}, fmt.Errorf("recording the run in %s: %w", o.Out, err)
	}
	if !reused {
		eo := o.Export
		eo.Client, eo.Progress, eo.Logger = c, o.Progress, o.Logger
		// Digests are resolved by the copy, which asks source and target at
		// once; reuse-storage copies nothing, so export resolves them.
		eo.SkipResolve = !reuse
		res, err := pipeline.Export(ctx, pipeline.ExportOptions{RunDir: o.Out, Export: eo, BadLines: o.BadLines, Scope: o.Scope, Logger: o.Logger, Say: o.Say})
		if err != nil {
			return report.Report{}, err
		}
		plan = res.Plan
		// The shards' mappings hold the scope now: the parsed input lists
		// (about 200 bytes a tag) are not kept through the copy.
		o.Export.Entries, eo.Entries = nil, nil
	} else {
		o.Logger.Info("reusing the plan of a previous run", "dir", o.Out, "images", plan.Total, "shards", len(plan.Shards))
	}

	// Mirror every shard, then backfill and verify them; shards share the
	// blob tracker (each unique blob is read once) and one bound on images
	// in flight.
	blobs := mirror.NewBlobs()
	cache := verify.NewCache()
	var mph *progress.Phase
	if reuse { // nothing moves: no bytes to show
		mph = o.Progress.Start("copy", plan.Total)
	} else {
		mph = o.Progress.StartBytes("copy", plan.Total)
	}
	sem := make(chan struct{}, o.Jobs)
	err = eachShard(plan, o.Jobs, func(sh artifacts.Shard) error {
		_, err := pipeline.MirrorShard(ctx, pipeline.MirrorShardOptions{
			ShardDir: dir.ShardDir(sh.ID), ReuseStorage: reuse,
			Mirror: mirror.Options{
				Client: c, Jobs: o.Jobs, Platforms: o.Platforms, NoReferrers: o.NoReferrers, NoAttachments: o.NoAttachments,
				DryRun: o.DryRun, Blobs: blobs, Slots: sem, Logger: o.Logger.With("shard", sh.ID), Progress: mph,
				Repositories: o.Repositories,
			},
		})
		if errors.Is(err, context.Canceled) {
			return nil // the results are written; the report says what is left
		}
		return err
	})
	mph.Finish()
	if err != nil {
		return report.Report{}, err
	}
	// Interrupted: what was copied is recorded; no new phase starts.
	interrupted, stopped := contract.InterruptedBy(ctx)
	if api != nil && !stopped {
		todo := 0
		for _, sh := range plan.Shards {
			items, err := pipeline.BackfillItems(dir.ShardDir(sh.ID))
			if err != nil {
				return report.Report{}, fmt.Errorf("backfill of shard %s: %w", sh.ID, err)
			}
			todo += len(items)
		}
		bph := o.Progress.Start("backfill", todo)
		for _, sh := range plan.Shards {
			_, err := backfill.Shard(ctx, dir.ShardDir(sh.ID), backfill.Options{
				API: api, Registry: c, Strategy: o.Strategy, Progress: bph, Logger: o.Logger, Verbose: o.Cluster.Verbose,
			})
			if err != nil {
				return report.Report{}, fmt.Errorf("backfill of shard %s: %w", sh.ID, err)
			}
		}
		bph.Finish()
	}
	if !o.DryRun && !stopped {
		var tags pipeline.TagChecker
		if api != nil {
			tags = imagecheck.Checker{API: api}
		}
		n := 0 // what mirror.json lists: the plan and the signature tags found
		for _, sh := range plan.Shards {
			k, err := pipeline.ShardImages(dir.ShardDir(sh.ID))
			if err != nil {
				return report.Report{}, err
			}
			n += k
		}
		vph := o.Progress.Start("verify", n)
		err := eachShard(plan, o.Jobs, func(sh artifacts.Shard) error {
			_, err := pipeline.VerifyShard(ctx, pipeline.VerifyShardOptions{
				ShardDir: dir.ShardDir(sh.ID), Client: c, Mode: o.VerifyMode, Observed: !reuse,
				Known: blobs.Has, Cache: cache, ImageAPI: tags, Progress: vph, Logger: o.Logger.With("shard", sh.ID),
			})
			return err
		})
		vph.Finish()
		if err != nil {
			return report.Report{}, err
		}
	}
	ao := pipeline.AggregateOptions{RunDir: o.Out, DryRun: o.DryRun, Started: started}
	if i, ok := contract.InterruptedBy(ctx); ok {
		interrupted, stopped = i, true
	}
	if stopped {
		ao.Interrupted = interrupted.Signal.String()
	}
	rep, err := pipeline.Aggregate(ao)
	if err != nil {
		return rep, err
	}
	if err := record.keep(rep); err != nil {
		return rep, err
	}
	if dir := LayoutDir(o.Export.To); dir != "" && !o.DryRun {
		if err := airgap.Record(dir, o.Out); err != nil {
			return rep, err
		}
		if o.Export.To.Transport == imageref.TransportOCIArchive {
			files, err := ocilayout.Pack(dir, o.Export.To.Path, o.SplitSize)
			if err != nil {
				return rep, fmt.Errorf("packing %s: %w", o.Export.To.Path, err)
			}
			o.Say("wrote %s (%d file(s)); the layout it was written from stays in %s for a rerun", o.Export.To.Path, len(files), dir)
		}
	}
	return rep, nil
}

// waitProgress shows a registry's pause for its pull quota in the progress.
func waitProgress(p *progress.Reporter) func(registry.Wait) {
	return func(w registry.Wait) {
		if w.Done {
			p.Resumed(w.Host)
		} else {
			p.Waiting(w.Host, w.Reason, w.Until)
		}
	}
}

// sameScope refuses to resume a plan made for another scope.
func sameScope(out string, cur report.Scope) error {
	prev, err := pipeline.ReadScope(out)
	if errors.Is(err, fs.ErrNotExist) {
		return contract.Usage(fmt.Errorf("%s holds a plan without a record of its scope (an older regmigrate planned it): give --rediscover to plan again there, or another --out", out))
	}
	if err != nil {
		return err
	}
	cur, err = pipeline.ResolveScope(cur)
	if err != nil {
		return err
	}
	if ch := cur.Changes(prev); len(ch) > 0 {
		return contract.Usage(fmt.Errorf("%s holds the plan of another scope: %s. Give --rediscover to plan again in %s (its audit trail is kept), or another --out",
			out, strings.Join(ch, "; "), out))
	}
	return nil
}

// loadPlan reads a previous run's plan from dir.
func loadPlan(dir artifacts.Dir, rediscover bool) (artifacts.Plan, bool, error) {
	var plan artifacts.Plan
	if rediscover {
		return plan, false, nil
	}
	err := artifacts.ReadJSON(dir.Path(contract.ShardsFile), &plan)
	if errors.Is(err, fs.ErrNotExist) {
		return plan, false, nil
	}
	if err != nil {
		return plan, false, fmt.Errorf("reading the previous plan (use --rediscover to export again): %w", err)
	}
	return plan, true, nil
}

// eachShard runs f on the shards of the plan in plan order, a few at a
// time: a shard counts as the images it can keep busy (its images, at
// most jobs), and shards open while what is open counts less than twice
// jobs. That keeps jobs images in flight across shard boundaries (one
// shard's tail beside the next one's start, many small namespaces side by
// side) while goroutines, mappings and results are held for the open
// shards only, not for thousands of namespaces at once. Every shard gets
// its f, after a cancellation too (f records what it did not do). Errors
// are joined.
func eachShard(plan artifacts.Plan, jobs int, f func(artifacts.Shard) error) error {
	jobs = max(jobs, 1)
	capacity := 2 * int64(jobs)
	open := semaphore.NewWeighted(capacity)
	errs := make([]error, len(plan.Shards))
	var wg sync.WaitGroup
	for i, sh := range plan.Shards {
		w := min(max(int64(sh.Images), 1), int64(jobs))
		_ = open.Acquire(context.Background(), w) // cannot fail: no deadline, w <= capacity
		wg.Go(func() {
			defer open.Release(w)
			errs[i] = f(sh)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

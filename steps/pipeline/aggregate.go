package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/regmigrate/regmigrate/steps/airgap"
	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/backfillresult"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/report"
	"github.com/regmigrate/regmigrate/steps/verify"
)

// NoBackfill is the report's backfill line when no shard was backfilled.
const NoBackfill = "skipped: no cluster named (give --kubeconfig to backfill Image API metadata)"

// AggregateOptions for Aggregate.
type AggregateOptions struct {
	// RunDir holds shards.json, export.json, run.json and
	// shards/<id>/{mirror.json, backfill.json, verify.json}; report.json,
	// report.md, report.html and history.json are written there.
	RunDir string
	// DryRun: nothing was copied, backfilled or verified, so verify.json
	// and backfill.json (a previous run's, if any) are not read.
	DryRun bool
	// Started and Finished go into the report; Started zero is when
	// run.json says the run started, Finished zero is now.
	Started, Finished time.Time
	// Interrupted is the signal that stopped the run, if one did: the
	// report is marked partial.
	Interrupted string
}

// Aggregate builds the run's report from every shard's results, writes
// report.json, report.md and report.html, and records the run in
// history.json (when run.json says which run it is). Image failures are
// in the report (see Report.ExitCode); the error is for a run directory
// that cannot be read or written.
func Aggregate(o AggregateOptions) (report.Report, error) {
	dir := artifacts.Dir(o.RunDir)
	var plan artifacts.Plan
	if err := artifacts.ReadJSON(dir.Path(contract.ShardsFile), &plan); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w: no %s in %s (run export first)", ErrMissingInput, contract.ShardsFile, o.RunDir)
		}
		return report.Report{}, fmt.Errorf("aggregating %s: %w", o.RunDir, err)
	}
	if !o.DryRun {
		if err := gatherPlan(dir, &plan); err != nil {
			return report.Report{}, fmt.Errorf("aggregating %s: %w", o.RunDir, err)
		}
	}
	// One shard's results in memory at a time.
	b := report.NewBuilder(plan)
	var backfilled []backfillresult.Result
	for _, s := range plan.Shards {
		in, err := readShard(dir, s, !o.DryRun)
		if err != nil {
			return report.Report{}, fmt.Errorf("aggregating %s: %w", o.RunDir, err)
		}
		if in.Backfill != nil {
			bf := *in.Backfill
			bf.Images = nil // the report's lines have what they say
			backfilled = append(backfilled, bf)
		}
		b.Add(in)
	}
	rep := b.Report()
	rep.DryRun = o.DryRun
	var exp export.Summary
	if err := artifacts.ReadJSON(dir.Path(contract.ExportFile), &exp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return report.Report{}, fmt.Errorf("aggregating %s: %w", o.RunDir, err)
	}
	rep.ScopeErrors = exp.Errors
	rep.Excluded, rep.ExcludedRepos = exp.Excluded, exp.ExcludedRepos
	rep.Interrupted = o.Interrupted
	quota, err := quotaWarnings(dir)
	if err != nil {
		return report.Report{}, fmt.Errorf("aggregating %s: %w", o.RunDir, err)
	}
	rep.Warnings = append(rep.Warnings, quota...)
	if rep.Scope, err = readScopeIfAny(o.RunDir); err != nil {
		return report.Report{}, fmt.Errorf("aggregating %s: %w", o.RunDir, err)
	}
	rep.Backfill = backfillLine(o.DryRun, backfilled, rep)
	if rep.PhaseOne, err = airgap.ReadLink(o.RunDir); err != nil {
		return report.Report{}, fmt.Errorf("aggregating %s: %w", o.RunDir, err)
	}
	run, err := artifacts.ReadRun(dir)
	recorded := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return report.Report{}, fmt.Errorf("aggregating %s: %w", o.RunDir, err)
	}
	rep.Started, rep.Finished = o.Started, o.Finished
	if rep.Started.IsZero() && recorded { // the aggregate step on Argo: when export started the run
		rep.Started = run.Started
	}
	if rep.Finished.IsZero() {
		rep.Finished = time.Now()
	}
	if err := artifacts.WriteStream(dir.Path(contract.ReportJSON), rep.WriteJSON); err != nil {
		return rep, fmt.Errorf("aggregating %s: %w", o.RunDir, err)
	}
	if recorded {
		if _, err := report.Record(dir, run, rep); err != nil {
			return rep, fmt.Errorf("aggregating %s: the run history: %w", o.RunDir, err)
		}
	}
	if err := write(dir, rep); err != nil {
		return rep, fmt.Errorf("aggregating %s: %w", o.RunDir, err)
	}
	return rep, nil
}

// Render writes report.md and report.html again from a run directory's
// report.json and the records beside it (run.json, history.json, and the
// cutover's switch.json, which comes after the aggregate). It changes no
// figure: the report is what the aggregate found.
func Render(runDir string) (report.Report, error) {
	dir := artifacts.Dir(runDir)
	var rep report.Report
	if err := artifacts.ReadJSON(dir.Path(contract.ReportJSON), &rep); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w: no %s in %s (aggregate the run first: verify --run-dir)", ErrMissingInput, contract.ReportJSON, runDir)
		}
		return rep, fmt.Errorf("rendering the report of %s: %w", runDir, err)
	}
	if err := write(dir, rep); err != nil {
		return rep, fmt.Errorf("rendering the report of %s: %w", runDir, err)
	}
	return rep, nil
}

// write writes report.md and report.html.
func write(dir artifacts.Dir, rep report.Report) error {
	if err := artifacts.WriteFile(dir.Path(contract.ReportMD), []byte(rep.Markdown())); err != nil {
		return err
	}
	b, err := report.ReadBundle(dir, rep)
	if err != nil {
		return err
	}
	html, err := b.HTML()
	if err != nil {
		return err
	}
	return artifacts.WriteFile(dir.Path(contract.ReportHTML), html)
}

// readShard reads one shard's results: mirror.json always, backfill.json
// and verify.json when results says so and they are there.
func readShard(dir artifacts.Dir, s artifacts.Shard, results bool) (report.ShardInput, error) {
	in := report.ShardInput{Shard: s}
	sd := dir.ShardDir(s.ID)
	if err := artifacts.ReadJSON(filepath.Join(sd, contract.MirrorResult), &in.Mirror); err != nil {
		return in, fmt.Errorf("shard %s has no mirror result: %w", s.ID, err)
	}
	if !results {
		return in, nil
	}
	var v verify.Result
	switch err := artifacts.ReadJSON(filepath.Join(sd, contract.VerifyResult), &v); {
	case err == nil:
		in.Verify = &v
	case !errors.Is(err, fs.ErrNotExist):
		return in, fmt.Errorf("shard %s: %w", s.ID, err)
	}
	switch b, err := backfillresult.Read(sd); {
	case err == nil:
		in.Backfill = &b
	case !errors.Is(err, fs.ErrNotExist):
		return in, fmt.Errorf("shard %s: %w", s.ID, err)
	}
	return in, nil
}

// backfillLine says whether and where the Image API was backfilled.
func backfillLine(dryRun bool, results []backfillresult.Result, rep report.Report) string {
	switch {
	case dryRun:
		return "skipped: dry run"
	case len(results) == 0:
		return NoBackfill
	}
	var apis []string
	for _, r := range results {
		api := r.API
		if r.Strategy != "" {
			api += " (" + r.Strategy + " strategy)"
		}
		if !slices.Contains(apis, api) {
			apis = append(apis, api)
		}
	}
	return fmt.Sprintf("%s: %d applied, %d skipped, %d failed", strings.Join(apis, ", "), rep.BackfillApplied, rep.BackfillSkipped, rep.BackfillFailed)
}

// gatherPlan rewrites the run's plan files (images.txt, digests.txt,
// shards.json, export.json) from the shards' plans, which MirrorShard
// completed with the digests the copy resolved and the attachments it
// found: the run directory then holds one complete plan, whichever
// machine copied each shard.
func gatherPlan(dir artifacts.Dir, plan *artifacts.Plan) error {
	var exp export.Summary
	if err := artifacts.ReadJSON(dir.Path(contract.ExportFile), &exp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// One shard's plan in memory at a time; the shards' own files are as
	// MirrorShard wrote them.
	gathered := *plan
	gathered.Shards = slices.Clone(plan.Shards)
	gathered.Total = 0
	sum := export.Summary{Shards: len(plan.Shards), Errors: exp.Errors, Excluded: exp.Excluded, ExcludedRepos: exp.ExcludedRepos}
	var lists artifacts.PlanLists
	for i, s := range gathered.Shards {
		items, err := artifacts.ReadMapping(filepath.Join(dir.ShardDir(s.ID), contract.ShardMapping))
		if errors.Is(err, fs.ErrNotExist) {
			return nil // results without their plan: the run's plan files stay as export wrote them
		}
		if err != nil {
			return fmt.Errorf("shard %s: %w", s.ID, err)
		}
		gathered.Shards[i].Images = len(items)
		gathered.Total += len(items)
		sum.Count(items)
		lists.Add(items)
	}
	if err := lists.Write(dir); err != nil {
		return err
	}
	if err := export.WriteIndex(dir, gathered, sum); err != nil {
		return err
	}
	*plan = gathered
	return nil
}

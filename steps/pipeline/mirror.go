package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/mirror"
)

// MirrorShardOptions for MirrorShard.
type MirrorShardOptions struct {
	// ShardDir is shards/<id>: mapping.txt is read; mirror.log appended
	// to, mirror.json written, and mapping.txt and images.txt rewritten
	// with the digests the copy resolved and the attachments it found.
	ShardDir string
	// Mirror are the copy's options; Items and Log are set from the shard
	// directory.
	Mirror mirror.Options
	// ReuseStorage: the new registry serves the legacy storage, nothing is
	// copied; every resolved image counts as in place (skipped).
	ReuseStorage bool
}

// MirrorShard copies one shard directory's plan to the target. Image
// failures are in the result; the error is for a shard directory that
// cannot be read or written, or a cancelled run (its results are written
// first).
func MirrorShard(ctx context.Context, o MirrorShardOptions) (mirror.Result, error) {
	items, err := artifacts.ReadMapping(filepath.Join(o.ShardDir, contract.ShardMapping))
	if errors.Is(err, fs.ErrNotExist) {
		return mirror.Result{}, fmt.Errorf("%w: no %s in %s (run export first)", ErrMissingInput, contract.ShardMapping, o.ShardDir)
	}
	if err != nil {
		return mirror.Result{}, err
	}
	// Results of an earlier pass over this shard describe another copy:
	// the report must only read this one's.
	if err := clearResults(o.ShardDir); err != nil {
		return mirror.Result{}, err
	}
	var res mirror.Result
	if o.ReuseStorage {
		res = inPlace(items, o.Mirror)
	} else {
		mo := o.Mirror
		mo.Items = items
		if !mo.DryRun {
			// mirror.log accumulates across reruns: it is the audit trail,
			// written a line per image as each completes.
			lf, err := os.OpenFile(filepath.Join(o.ShardDir, contract.MirrorLog), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				return res, err
			}
			defer lf.Close()
			mo.Log = lf
		}
		res, err = mirror.Run(ctx, mo)
		if err != nil && !errors.Is(err, context.Canceled) {
			return res, fmt.Errorf("mirroring %s: %w", o.ShardDir, err)
		}
	}
	if werr := artifacts.WriteJSON(filepath.Join(o.ShardDir, contract.MirrorResult), res); werr != nil {
		return res, werr
	}
	if werr := writeResolved(o.ShardDir, items, res); werr != nil {
		return res, fmt.Errorf("writing the resolved plan of %s: %w", o.ShardDir, werr)
	}
	return res, err
}

// clearResults removes an earlier pass's backfill.json and verify.json
// from a shard directory: the aggregate reads what the shard directory
// holds, and a phase this pass skips must not leave an old verdict.
func clearResults(shardDir string) error {
	for _, f := range []string{contract.BackfillJSON, contract.VerifyResult} {
		if err := os.Remove(filepath.Join(shardDir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("clearing the previous results of %s: %w", shardDir, err)
		}
	}
	return nil
}

// inPlace is the reuse-storage "copy": nothing moves; every resolved image
// is in place already (the registries share storage).
func inPlace(items []artifacts.Item, o mirror.Options) mirror.Result {
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
		o.Progress.Add(im.Status, 0)
	}
	res.Total = len(items)
	return res
}

// writeResolved rewrites the shard's plan (mapping.txt, images.txt) with
// what the copy resolved: digests, and the attachments it found. A rerun,
// verify and the backfill then read one complete plan, and Aggregate
// gathers the run's plan files from them.
func writeResolved(shardDir string, planned []artifacts.Item, res mirror.Result) error {
	items, err := resolvedItems(planned, res)
	if err != nil {
		return err
	}
	if err := artifacts.WriteFile(filepath.Join(shardDir, contract.ShardMapping), artifacts.FormatMapping(items)); err != nil {
		return err
	}
	return artifacts.WriteFile(filepath.Join(shardDir, contract.ShardImages), artifacts.FormatImages(items))
}

func resolvedItems(planned []artifacts.Item, res mirror.Result) ([]artifacts.Item, error) {
	pinned := make(map[string]string, len(planned))
	for _, it := range planned {
		pinned[it.Source.WithoutDigest().String()] = it.Source.Digest
	}
	items := make([]artifacts.Item, 0, len(res.Images))
	for _, im := range res.Images {
		src, err := imageref.Parse(im.Source)
		if err != nil {
			return nil, err
		}
		dst, err := imageref.Parse(im.Target)
		if err != nil {
			return nil, err
		}
		it := artifacts.Item{Source: src, Target: dst}
		// A platform filter makes the target digest differ from the
		// source's: the plan keeps the source digest it had, if any.
		it.Source.Digest = im.Digest
		if len(res.Warnings) > 0 {
			it.Source.Digest = pinned[im.Source]
		}
		if it.Source.Digest == "" {
			it.Error = im.Error
		}
		items = append(items, it)
	}
	return items, nil
}

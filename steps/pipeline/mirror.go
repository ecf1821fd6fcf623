package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/mirror"
	"github.com/regmigrate/regmigrate/steps/verify"
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
	var res mirror.Result
	if o.ReuseStorage {
		res = inPlace(items, o.Mirror)
	} else {
		mo := o.Mirror
		mo.Items = items
		// Images that failed verification are not in place, whatever
		// their tag says: they are copied again.
		if mo.Repair, err = Repairs(o.ShardDir); err != nil {
			return res, fmt.Errorf("reading the previous verification of %s: %w", o.ShardDir, err)
		}
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
	// Results of an earlier pass over this shard describe another copy:
	// the report must only read this one's. They go once this pass's
	// mirror.json holds what is left to repair: a pass that dies before
	// leaves the earlier verdicts, and the next one still repairs.
	if werr := clearResults(o.ShardDir); werr != nil {
		return res, werr
	}
	if werr := writeResolved(o.ShardDir, items, res); werr != nil {
		return res, fmt.Errorf("writing the resolved plan of %s: %w", o.ShardDir, werr)
	}
	return res, err
}

// Repairs reads what an earlier pass over the shard left to repair: the
// images its verification failed (verify.json) although its copy did not
// (they were reported in place); without a verification since the last
// copy, the repairs that copy made or planned (mirror.json), which nothing
// has proven yet. Keys are targets without digest.
func Repairs(shardDir string) (map[string]mirror.Repair, error) {
	var prev mirror.Result
	switch err := artifacts.ReadJSON(filepath.Join(shardDir, contract.MirrorResult), &prev); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	}
	out := map[string]mirror.Repair{}
	var v verify.Result
	err := artifacts.ReadJSON(filepath.Join(shardDir, contract.VerifyResult), &v)
	if errors.Is(err, fs.ErrNotExist) {
		for _, im := range prev.Images {
			if im.Repair != nil {
				out[targetKey(im.Target)] = *im.Repair
			}
		}
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	copyFailed := map[string]bool{}
	for _, im := range prev.Images {
		if im.Status == contract.StatusFailed {
			copyFailed[targetKey(im.Target)] = true
		}
	}
	for _, c := range v.Images {
		k := targetKey(c.Target)
		if c.Status == verify.Passed || copyFailed[k] {
			continue // passed, or not copied yet: the copy tries anyway
		}
		// Missing and unreadable blobs too: a registry may still answer
		// HEAD for a blob whose data is gone (distribution's blob
		// descriptor cache does).
		r := mirror.Repair{Reason: c.Error}
		for _, x := range slices.Concat(c.Corrupt, c.Missing, c.Unread) {
			if d, ok := strings.CutPrefix(x, "blob "); ok {
				r.Blobs = append(r.Blobs, d)
			}
		}
		out[k] = r
	}
	return out, nil
}

// targetKey is a target reference without its digest, as results name it.
func targetKey(s string) string {
	if r, err := imageref.Parse(s); err == nil {
		return r.WithoutDigest().String()
	}
	return s
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

package backfill

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/regmigrate/regmigrate/steps/backfillresult"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/pipeline"
)

// Shard backfills one shard directory: the images mirror.json says are on
// the target (pipeline.BackfillItems), metadata/ receiving the audit files
// and backfill.json the result. It is the per-directory API the
// backfill-shard step and `regmigrate run` both call (it lives here, not in
// package pipeline, because it talks to a cluster: pipeline links no
// Kubernetes). o.Items and o.MetadataDir are set from the directory;
// o.Progress counts its images (the caller sets the phase's total).
func Shard(ctx context.Context, shardDir string, o Options) (backfillresult.Result, error) {
	items, err := pipeline.BackfillItems(shardDir)
	if err != nil {
		return backfillresult.Result{}, err
	}
	o.Items, o.MetadataDir = items, filepath.Join(shardDir, contract.MetadataDir)
	res, err := Run(ctx, o)
	if werr := backfillresult.Write(shardDir, res); werr != nil {
		return res, fmt.Errorf("backfill of %s: %w", shardDir, werr)
	}
	return res, err
}

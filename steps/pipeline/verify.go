package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/mirror"
	"github.com/regmigrate/regmigrate/steps/progress"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/steps/verify"
)

// TagChecker checks ImageStreamTags against the expected digests and
// target references; imagecheck.Checker checks them through a cluster's
// Image API.
type TagChecker interface {
	CheckTags(ctx context.Context, tags []verify.TagExpect) []verify.Check
}

// VerifyShardOptions for VerifyShard.
type VerifyShardOptions struct {
	// ShardDir is shards/<id>: mirror.json (else the plan, mapping.txt) is
	// read, verify.json written.
	ShardDir string
	Client   *registry.Client
	// Mode is verify.ModeAuto (default), ModeFull or ModeDigest.
	Mode string
	// Observed: mirror.json was written by a copy in this process, which
	// looked at the target, so ModeAuto does not ask again for the tags it
	// skipped. A separate pod (the verify step) leaves it false: nothing it
	// saw proves a tag.
	Observed bool
	// Known reports blobs this process's copy saw the target confirm;
	// Cache is shared by the shards of one process (nil: a new one).
	Known func(host, repo, digest string) bool
	Cache *verify.Cache
	Jobs  int // images at once; 0 = verify.DefaultJobs
	// ImageAPI, when set, also checks every ImageStreamTag of the shard
	// (the cluster was backfilled).
	ImageAPI TagChecker
	// Progress counts verified images; the caller starts it with their
	// number (ShardImages, or the sum over the shards), so that its total
	// is known from the start.
	Progress *progress.Phase
	Logger   *slog.Logger
}

// VerifyShard verifies one shard directory and writes its verify.json.
// Image failures are in the result; the error is for a shard that could
// not be verified at all.
func VerifyShard(ctx context.Context, o VerifyShardOptions) (verify.Result, error) {
	if o.ShardDir == "" {
		return verify.Result{}, errors.New("verify: no shard directory")
	}
	exp, err := shardExpectations(o.ShardDir, o.Observed)
	if err != nil {
		return verify.Result{}, fmt.Errorf("verifying shard %s: %w", o.ShardDir, err)
	}
	res, err := verify.Run(ctx, verify.Options{
		Client: o.Client, Expects: exp, Mode: o.Mode, Known: o.Known, Jobs: o.Jobs, Cache: o.Cache, Progress: o.Progress, Logger: o.Logger,
	})
	if err != nil {
		return res, fmt.Errorf("verifying shard %s: %w", o.ShardDir, err)
	}
	if o.ImageAPI != nil {
		res.ImageAPI = verify.NewAPIResult(o.ImageAPI.CheckTags(ctx, verify.TagExpects(exp)))
	}
	if err := artifacts.WriteJSON(filepath.Join(o.ShardDir, contract.VerifyResult), res); err != nil {
		return res, fmt.Errorf("verifying shard %s: %w", o.ShardDir, err)
	}
	return res, nil
}

// ShardImages is the number of images VerifyShard checks in a shard
// directory: what mirror.json lists, else the plan's.
func ShardImages(shardDir string) (int, error) {
	exp, err := shardExpectations(shardDir, false)
	return len(exp), err
}

// shardExpectations come from mirror.json (the digests now on the target),
// else from the shard's plan (mapping.txt).
func shardExpectations(shardDir string, observed bool) ([]verify.Expect, error) {
	var mr mirror.Result
	err := artifacts.ReadJSON(filepath.Join(shardDir, contract.MirrorResult), &mr)
	if err == nil {
		return verify.FromMirror(mr.Images, observed)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	items, err := artifacts.ReadMapping(filepath.Join(shardDir, contract.ShardMapping))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: neither %s nor %s in the shard directory", ErrMissingInput, contract.MirrorResult, contract.ShardMapping)
	}
	if err != nil {
		return nil, err
	}
	exp := make([]verify.Expect, 0, len(items))
	for _, it := range items {
		exp = append(exp, verify.Expect{Target: it.Target, Digest: it.Source.Digest})
	}
	return exp, nil
}

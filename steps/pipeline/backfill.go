package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/mirror"
)

// BackfillItems are the images of a shard directory that the Image API
// backfill records: every image mirror.json says is on the target (copied,
// or found there already), attachments the copy found included, at the
// digest now on the target. Without mirror.json (nothing was copied yet)
// they are the shard's plan, mapping.txt.
func BackfillItems(shardDir string) ([]artifacts.Item, error) {
	var mr mirror.Result
	err := artifacts.ReadJSON(filepath.Join(shardDir, contract.MirrorResult), &mr)
	if errors.Is(err, fs.ErrNotExist) {
		items, err := artifacts.ReadMapping(filepath.Join(shardDir, contract.ShardMapping))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: neither %s nor %s in %s", ErrMissingInput, contract.MirrorResult, contract.ShardMapping, shardDir)
		}
		return items, err
	}
	if err != nil {
		return nil, err
	}
	var items []artifacts.Item
	for _, im := range mr.Images {
		if im.Status == contract.StatusFailed {
			continue
		}
		src, err := imageref.Parse(im.Source)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", contract.MirrorResult, err)
		}
		dst, err := imageref.Parse(im.Target)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", contract.MirrorResult, err)
		}
		src.Digest = im.Digest
		items = append(items, artifacts.Item{Source: src, Target: dst})
	}
	return items, nil
}

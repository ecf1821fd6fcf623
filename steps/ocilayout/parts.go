package ocilayout

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/regmigrate/regmigrate/steps/registry"
)

// PartsDir holds, inside a layout, the index parts of writers that share
// it (Options.Part): one file per writer, <part>.json, in index.json's
// shape.
const PartsDir = "regmigrate/parts"

func (l *Layout) partPath() string {
	return filepath.Join(l.dir, filepath.FromSlash(PartsDir), l.part+".json")
}

func validPart(s string) bool {
	if s == "" || len(s) > 200 || strings.HasPrefix(s, ".") {
		return false
	}
	for _, r := range s {
		if !(r == '.' || r == '-' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// upsert puts d in entries: a named entry replaces the one with its name,
// an unnamed one is added once.
func upsert(entries []registry.Descriptor, d registry.Descriptor) []registry.Descriptor {
	name := d.Annotations[AnnotationRefName]
	for i, e := range entries {
		if name != "" && e.Annotations[AnnotationRefName] == name {
			entries[i] = d
			return entries
		}
		if name == "" && refName(e.Annotations) == "" && e.Digest == d.Digest {
			return entries
		}
	}
	return append(entries, d)
}

func artifactsReadJSON(p string, v any) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// MergeResult says what Merge did.
type MergeResult struct {
	Parts   []string // the parts folded in, by name
	Entries int      // index.json's entries after the merge
	Named   int      // of them, images named ns/repo:tag
}

// ErrPartBlobMissing: an index part names a manifest whose blob is not
// in the layout (a writer's part outlived its blobs: the volume lost
// files). Merge leaves index.json as it was.
var ErrPartBlobMissing = errors.New("an index part names a manifest the layout does not hold")

// Merge folds the index parts that writers sharing the layout in dir left
// (Options.Part) into its index.json, then removes them: each part's
// entries replace the entries of index.json that have their names (a
// later run's tag moved), referrers are listed once, parts are read in
// the order of their names. Every manifest a part names must be in
// blobs/; index.json is replaced atomically, so an interrupted merge
// leaves the old index.json and the parts, and running it again finishes
// it. Temporary files left by writers that were stopped are removed.
// Merge must run alone: after every writer has ended.
func Merge(dir string) (MergeResult, error) {
	var res MergeResult
	if _, err := os.Stat(filepath.Join(dir, LayoutFile)); err != nil {
		return res, fmt.Errorf("%w: %s has no %s file: did any shard write into it?", ErrNotLayout, dir, LayoutFile)
	}
	var idx index
	if err := artifactsReadJSON(filepath.Join(dir, IndexFile), &idx); err != nil {
		return res, fmt.Errorf("%w: %v", ErrNotLayout, err)
	}
	if idx.SchemaVersion == 0 {
		idx.SchemaVersion = 2
	}
	partDir := filepath.Join(dir, filepath.FromSlash(PartsDir))
	files, err := os.ReadDir(partDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("reading %s: %w", partDir, err)
	}
	var paths []string
	for _, f := range files {
		if f.IsDir() || !strings.HasSuffix(f.Name(), ".json") || strings.HasPrefix(f.Name(), tmpPrefix) {
			continue
		}
		paths = append(paths, filepath.Join(partDir, f.Name()))
	}
	sort.Strings(paths)
	l := &Layout{dir: dir}
	var missing []string
	for _, p := range paths {
		var part index
		if err := artifactsReadJSON(p, &part); err != nil {
			return res, fmt.Errorf("index part %w", err)
		}
		for _, d := range part.Manifests {
			bp, err := l.blobPath(d.Digest)
			if err != nil {
				return res, fmt.Errorf("index part %s: %w", p, err)
			}
			if _, err := os.Stat(bp); err != nil {
				missing = append(missing, fmt.Sprintf("%s names %s (no file %s)", filepath.Base(p), d.Digest, bp))
				continue
			}
			idx.Manifests = upsert(idx.Manifests, d)
		}
		res.Parts = append(res.Parts, strings.TrimSuffix(filepath.Base(p), ".json"))
	}
	if len(missing) > 0 {
		return res, fmt.Errorf("%w: %s; run the shards that wrote them again (their mirror step rewrites what is missing), then merge again", ErrPartBlobMissing, strings.Join(missing, "; "))
	}
	if idx.Manifests == nil {
		idx.Manifests = []registry.Descriptor{}
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return res, err
	}
	if err := writeAtomic(filepath.Join(dir, IndexFile), b); err != nil {
		return res, fmt.Errorf("writing %s: %w", filepath.Join(dir, IndexFile), err)
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil {
			return res, fmt.Errorf("removing the merged part %s: %w", p, err)
		}
	}
	l.removeTemps()
	res.Entries = len(idx.Manifests)
	for _, d := range idx.Manifests {
		if refName(d.Annotations) != "" {
			res.Named++
		}
	}
	return res, nil
}

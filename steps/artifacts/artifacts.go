// Package artifacts reads and writes the run-directory layout of DESIGN.md,
// the same locally and as Argo artifacts:
//
//	images.txt digests.txt shards.json export.json report.json report.md
//	shards/<id>/{images.txt,mapping.txt,mirror.log,mirror.json,verify.json,backfill.json,metadata/}
//
// Lists are text a person can grep; results are JSON with a stable schema.
package artifacts

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
)

// Item is one image (tag) in scope: where it comes from, where it goes, and
// the digest export resolved (empty when it could not).
type Item struct {
	Source imageref.Ref `json:"source"`
	Target imageref.Ref `json:"target"`
	// Error is why export could not resolve the image (it is still in scope
	// and reported failed).
	Error string `json:"error,omitempty"`
}

// Digest is the source digest export resolved.
func (it Item) Digest() string { return it.Source.Digest }

// Shard is one unit of fan-out.
type Shard struct {
	ID         string   `json:"id"`
	Namespaces []string `json:"namespaces"`
	Images     int      `json:"images"`
	Part       int      `json:"part,omitempty"` // 1-based part of a split namespace
}

// Plan is shards.json.
type Plan struct {
	Source string  `json:"source"`
	Target string  `json:"target"`
	Total  int     `json:"total"`
	Shards []Shard `json:"shards"`
}

// Dir is a run directory.
type Dir string

// Path joins elements under the run directory.
func (d Dir) Path(elem ...string) string {
	return filepath.Join(append([]string{string(d)}, elem...)...)
}

// ShardDir is shards/<id>.
func (d Dir) ShardDir(id string) string { return d.Path(contract.ShardsDir, id) }

// WriteJSON writes v as indented JSON, atomically (temp file + rename), so
// that an interrupted run never leaves half a result behind.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return WriteFile(path, append(b, '\n'))
}

// WriteFile writes atomically, creating parent folders.
func WriteFile(path string, b []byte) error {
	return writeAtomic(path, func(f *os.File) error {
		_, err := f.Write(b)
		return err
	})
}

// WriteStream writes atomically what write writes, through a buffer: a
// file as large as a 100,000-image report.json is never whole in memory.
func WriteStream(path string, write func(io.Writer) error) error {
	return writeAtomic(path, func(f *os.File) error {
		bw := bufio.NewWriterSize(f, 64<<10)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
}

func writeAtomic(path string, write func(*os.File) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReadJSON reads a JSON file into v.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	return nil
}

// relRef prints a source reference relative to its registry (the seeds'
// `ns/repo:tag` list form).
func relRef(r imageref.Ref) string {
	r.Registry = ""
	r.Digest = ""
	return r.String()
}

// FormatImages is images.txt: `ns/repo:tag`, sorted, one a line.
func FormatImages(items []Item) []byte {
	lines := make([]string, 0, len(items))
	for _, it := range items {
		lines = append(lines, relRef(it.Source))
	}
	return joinSorted(lines)
}

// FormatDigests is digests.txt: `ns/repo:tag sha256:...` for resolved images.
func FormatDigests(items []Item) []byte {
	lines := make([]string, 0, len(items))
	for _, it := range items {
		if it.Source.Digest != "" {
			lines = append(lines, relRef(it.Source)+" "+it.Source.Digest)
		}
	}
	return joinSorted(lines)
}

// PlanLists gathers a run's images.txt and digests.txt from its shards'
// plans one shard at a time: of each image it keeps one line, `ns/repo:tag`
// and, when resolved, ` sha256:...`, not the item.
type PlanLists struct{ lines []string }

// Add adds a shard's images.
func (l *PlanLists) Add(items []Item) {
	for _, it := range items {
		line := relRef(it.Source)
		if it.Source.Digest != "" {
			line += " " + it.Source.Digest
		}
		l.lines = append(l.lines, line)
	}
}

// Write writes images.txt and digests.txt into dir, as FormatImages and
// FormatDigests would from every image added.
func (l *PlanLists) Write(dir Dir) error {
	// A line sorts where its reference alone sorts: references hold no
	// character below the space that ends them.
	sort.Strings(l.lines)
	err := WriteStream(dir.Path(contract.ImagesFile), func(w io.Writer) error {
		for _, line := range l.lines {
			ref, _, _ := strings.Cut(line, " ")
			if _, err := io.WriteString(w, ref+"\n"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return WriteStream(dir.Path(contract.DigestsFile), func(w io.Writer) error {
		for _, line := range l.lines {
			if !strings.Contains(line, " ") {
				continue
			}
			if _, err := io.WriteString(w, line+"\n"); err != nil {
				return err
			}
		}
		return nil
	})
}

// FormatMapping is mapping.txt: `SRC[@DIGEST]=DST`, oc image mirror's form.
// It is the shard's plan: mirror-shard reads it back with ParseMapping.
func FormatMapping(items []Item) []byte {
	lines := make([]string, 0, len(items))
	for _, it := range items {
		l := it.Source.String() + "=" + it.Target.WithoutDigest().String()
		if it.Error != "" {
			l += " # " + strings.ReplaceAll(it.Error, "\n", " ")
		}
		lines = append(lines, l)
	}
	return joinSorted(lines)
}

func joinSorted(lines []string) []byte {
	sort.Strings(lines)
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	b := make([]byte, 0, n) // one allocation, not a builder's doublings and a copy
	for _, l := range lines {
		b = append(append(b, l...), '\n')
	}
	return b
}

// ReadMapping reads a mapping.txt written by FormatMapping.
func ReadMapping(path string) ([]Item, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var items []Item
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		var note string
		if i := strings.Index(line, " # "); i >= 0 {
			note = strings.TrimSpace(line[i+3:])
			line = strings.TrimSpace(line[:i])
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		src, dst, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: %q is not SRC=DST", path, n, line)
		}
		s, err := imageref.Parse(src)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		d, err := imageref.Parse(dst)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		items = append(items, Item{Source: s, Target: d, Error: note})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return items, nil
}

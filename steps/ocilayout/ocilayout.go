// Package ocilayout is an OCI image layout on disk (oci:DIR) as a
// registry.Store: the source or the target of a migration, the medium of
// a disconnected (air-gapped) move. Every tag is named in index.json by its
// full ns/repo:tag (the org.opencontainers.image.ref.name annotation), every
// blob is stored once under blobs/<alg>/<hex> however many images share
// it, and referrers (manifests with a subject) are listed in index.json
// without a name, so that they are found again on the other side.
//
// Writes are safe to interrupt: a blob is written to a temporary file,
// synced and renamed into place (the caller's reader checks its digest on
// the way, so nothing is stored under a digest it does not have), and
// index.json is replaced the same way, after the blobs it names. A
// layout left by an interrupted run is whole for what index.json names and
// is resumed by running again.
//
// Layouts written by other tools are read as well: skopeo
// (oci:DIR:ns/repo:tag), crane pull --format oci (ref.name with the
// registry host, dropped here), containerd (io.containerd.image.name).
package ocilayout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/registry"
)

// Annotations and file names of the OCI image layout spec.
const (
	AnnotationRefName    = "org.opencontainers.image.ref.name"
	annotationContainerd = "io.containerd.image.name"
	LayoutFile           = "oci-layout"
	IndexFile            = "index.json"
	BlobsDir             = "blobs"
	layoutVersion        = `{"imageLayoutVersion":"1.0.0"}`
	maxManifestSize      = 8 << 20
	tmpPrefix            = ".tmp-"
)

// ErrNotLayout: the directory is not an OCI image layout.
var ErrNotLayout = errors.New("not an OCI image layout")

// index is index.json.
type index struct {
	SchemaVersion int                   `json:"schemaVersion"`
	MediaType     string                `json:"mediaType,omitempty"`
	Manifests     []registry.Descriptor `json:"manifests"`
	Annotations   map[string]string     `json:"annotations,omitempty"`
}

// Layout is one OCI image layout directory.
type Layout struct {
	dir      string
	writable bool

	mu       sync.Mutex
	idx      index
	tags     map[string]int                   // "repo:tag" -> position in idx.Manifests
	subjects map[string][]registry.Descriptor // subject digest -> its referrers
	named    map[string]bool                  // digests listed in idx (referrers: once)
	types    map[string]string                // digest -> media type, as known
	unnamed  []registry.Descriptor            // index entries without a usable name

	// part: the index entries this Layout puts go to PartsDir/<part>.json
	// (partIdx), not to index.json; Merge folds them in (parts.go).
	part    string
	partIdx index
}

// Options for Open.
type Options struct {
	// Create makes the directory a new, empty layout when it is not one
	// (a target); a source must be a layout already.
	Create bool
	// DryRun: a target that is not there yet is read as empty and not
	// created (a dry run writes nothing).
	DryRun bool
	// Part names this writer's own index part (PartsDir/<Part>.json):
	// one of several processes writing into one layout at once (the
	// shard pods of a Workflow on a shared volume). Its index entries go
	// to the part, read back over index.json when opened again; blobs go
	// to the shared blobs/ directory, each written whole and renamed into
	// place; Merge folds the parts into index.json once they are done.
	// Temporary files are left alone (another writer's may be in flight).
	Part string
}

// Open opens the layout in dir.
func Open(ctx context.Context, dir string, o Options) (*Layout, error) {
	l := &Layout{dir: dir, writable: o.Create, tags: map[string]int{}, subjects: map[string][]registry.Descriptor{},
		named: map[string]bool{}, types: map[string]string{}, part: o.Part,
		partIdx: index{SchemaVersion: 2, MediaType: registry.MediaOCIIndex, Manifests: []registry.Descriptor{}}}
	if o.Part != "" && !validPart(o.Part) {
		return nil, fmt.Errorf("layout %s: index part %q: want letters, digits, '.', '_' and '-'", dir, o.Part)
	}
	_, err := os.Stat(filepath.Join(dir, LayoutFile))
	switch {
	case errors.Is(err, fs.ErrNotExist) && o.Create && o.DryRun:
		l.writable = false
		l.idx = index{SchemaVersion: 2, MediaType: registry.MediaOCIIndex, Manifests: []registry.Descriptor{}}
		return l, nil
	case errors.Is(err, fs.ErrNotExist) && o.Create:
		if err := l.create(); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %s has no %s file; give the directory a previous run (or skopeo, or crane pull --format oci) wrote", ErrNotLayout, dir, LayoutFile)
	case err != nil:
		return nil, fmt.Errorf("opening layout %s: %w", dir, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotLayout, dir, err)
	}
	if err := json.Unmarshal(b, &l.idx); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotLayout, filepath.Join(dir, IndexFile), err)
	}
	if o.Create && o.Part == "" {
		l.removeTemps()
	}
	entries := l.idx.Manifests
	l.idx.Manifests = make([]registry.Descriptor, 0, len(entries))
	if err := l.load(ctx, entries, IndexFile); err != nil {
		return nil, err
	}
	if o.Part != "" {
		// This writer's part, left by an earlier attempt: read over
		// index.json, and kept (rewritten whole with what comes next).
		var part index
		err := artifactsReadJSON(l.partPath(), &part)
		switch {
		case err == nil:
			if err := l.load(ctx, part.Manifests, l.partPath()); err != nil {
				return nil, err
			}
			l.partIdx.Manifests = append(l.partIdx.Manifests, part.Manifests...)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("layout %s: %w", dir, err)
		}
	}
	return l, nil
}

// load adds index entries: a name replaces the entry that had it; a
// referrer (a manifest with a subject) is listed once.
func (l *Layout) load(ctx context.Context, entries []registry.Descriptor, from string) error {
	for _, d := range entries {
		if d.MediaType != "" {
			l.types[d.Digest] = d.MediaType
		}
		if name := refName(d.Annotations); name != "" {
			repo, tag, ok := l.parseName(name)
			if ok {
				if i, ok := l.tags[repo+":"+tag]; ok {
					l.idx.Manifests[i] = d
				} else {
					l.tags[repo+":"+tag] = len(l.idx.Manifests)
					l.idx.Manifests = append(l.idx.Manifests, d)
				}
				continue
			}
		}
		if l.named[d.Digest] {
			continue
		}
		l.idx.Manifests = append(l.idx.Manifests, d)
		// Unnamed: a referrer (it has a subject) or an image nobody named.
		body, _, err := l.readManifest(ctx, d.Digest)
		if err != nil {
			return fmt.Errorf("layout %s: %s lists %s: %w", l.dir, from, d.Digest, err)
		}
		var m struct {
			Subject *registry.Descriptor `json:"subject"`
		}
		if json.Unmarshal(body, &m) == nil && m.Subject != nil {
			l.subjects[m.Subject.Digest] = append(l.subjects[m.Subject.Digest], d)
			l.named[d.Digest] = true
			continue
		}
		l.unnamed = append(l.unnamed, d)
	}
	return nil
}

func (l *Layout) create() error {
	if err := os.MkdirAll(filepath.Join(l.dir, BlobsDir), 0o755); err != nil {
		return fmt.Errorf("creating layout %s: %w", l.dir, err)
	}
	if _, err := os.Stat(filepath.Join(l.dir, IndexFile)); errors.Is(err, fs.ErrNotExist) {
		// Written whole even by a writer of a part: writers racing to
		// create the layout all write this same empty index.
		l.idx = index{SchemaVersion: 2, MediaType: registry.MediaOCIIndex, Manifests: []registry.Descriptor{}}
		b, _ := json.MarshalIndent(l.idx, "", "  ")
		if err := writeAtomic(filepath.Join(l.dir, IndexFile), b); err != nil {
			return fmt.Errorf("writing %s: %w", filepath.Join(l.dir, IndexFile), err)
		}
	}
	// oci-layout last: a directory with it is a layout whose index.json is in place.
	return writeAtomic(filepath.Join(l.dir, LayoutFile), []byte(layoutVersion))
}

// removeTemps deletes what interrupted writes left.
func (l *Layout) removeTemps() {
	algs, _ := os.ReadDir(filepath.Join(l.dir, BlobsDir))
	for _, a := range algs {
		files, _ := os.ReadDir(filepath.Join(l.dir, BlobsDir, a.Name()))
		for _, f := range files {
			if strings.HasPrefix(f.Name(), tmpPrefix) {
				_ = os.Remove(filepath.Join(l.dir, BlobsDir, a.Name(), f.Name()))
			}
		}
	}
}

func refName(a map[string]string) string {
	if n := a[AnnotationRefName]; n != "" {
		return n
	}
	return a[annotationContainerd]
}

// parseName reads a ref.name: ns/repo:tag (regmigrate, skopeo given a full
// name), host/ns/repo:tag (crane, containerd: the host is dropped), or a
// bare tag (the layout spec's examples; the repository is then the
// directory's name).
func (l *Layout) parseName(name string) (repo, tag string, ok bool) {
	if imageref.ValidTag(name) && !strings.Contains(name, "/") {
		return l.defaultRepo(), name, true
	}
	r, err := imageref.Parse(name)
	if err != nil || r.Tag == "" || r.Repository == "" {
		return "", "", false
	}
	return r.Repository, r.Tag, true
}

// defaultRepo is the repository of images named by a bare tag: the
// directory's name, made a valid repository name.
func (l *Layout) defaultRepo() string {
	base := strings.ToLower(filepath.Base(filepath.Clean(l.dir)))
	var b strings.Builder
	for _, r := range base {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else if b.Len() > 0 {
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if !imageref.ValidRepository(s) {
		return "image"
	}
	return s
}

// Dir is the layout's directory.
func (l *Layout) Dir() string { return l.dir }

// Describe names the layout.
func (l *Layout) Describe() string { return "oci:" + l.dir }

// Unnamed lists the images index.json holds without a name regmigrate can
// use (no ref.name): they are not in the catalog.
func (l *Layout) Unnamed() []registry.Descriptor {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]registry.Descriptor(nil), l.unnamed...)
}

// Catalog lists the repositories named in index.json.
func (l *Layout) Catalog(context.Context) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for k := range l.tags {
		repo := k[:strings.LastIndex(k, ":")]
		if !seen[repo] {
			seen[repo] = true
			out = append(out, repo)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ListTags lists the tags of repo.
func (l *Layout) ListTags(_ context.Context, repo string) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for k := range l.tags {
		if i := strings.LastIndex(k, ":"); k[:i] == repo {
			out = append(out, k[i+1:])
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no image named %s:* in %s", registry.ErrNotFound, repo, l.Describe())
	}
	sort.Strings(out)
	return out, nil
}

// blobPath is where a digest's blob lives.
func (l *Layout) blobPath(digest string) (string, error) {
	if !imageref.ValidDigest(digest) {
		return "", fmt.Errorf("%w: %q", registry.ErrInvalidDigest, digest)
	}
	alg, hx, _ := strings.Cut(digest, ":")
	return filepath.Join(l.dir, BlobsDir, alg, hx), nil
}

// Where names the file of a blob.
func (l *Layout) Where(digest string) string {
	p, err := l.blobPath(digest)
	if err != nil {
		return l.Describe()
	}
	return p
}

// HeadManifest resolves a tag or a digest.
func (l *Layout) HeadManifest(ctx context.Context, repo, ref string) (registry.Descriptor, error) {
	if !imageref.ValidDigest(ref) {
		l.mu.Lock()
		i, ok := l.tags[repo+":"+ref]
		var d registry.Descriptor
		if ok {
			d = l.idx.Manifests[i]
		}
		l.mu.Unlock()
		if !ok {
			return registry.Descriptor{}, fmt.Errorf("%w: %s:%s is not in %s", registry.ErrNotFound, repo, ref, l.Describe())
		}
		d.Annotations, d.Platform = nil, nil
		if d.MediaType == "" {
			_, mt, err := l.readManifest(ctx, d.Digest)
			if err != nil {
				return registry.Descriptor{}, err
			}
			d.MediaType = mt
		}
		return d, nil
	}
	body, mt, err := l.readManifest(ctx, ref)
	if err != nil {
		return registry.Descriptor{}, err
	}
	return registry.Descriptor{MediaType: mt, Digest: ref, Size: int64(len(body))}, nil
}

// GetManifest returns the bytes of a tag or digest, checked against the
// digest.
func (l *Layout) GetManifest(ctx context.Context, repo, ref string) ([]byte, string, error) {
	d, err := l.HeadManifest(ctx, repo, ref)
	if err != nil {
		return nil, "", err
	}
	body, mt, err := l.readManifest(ctx, d.Digest)
	if err != nil {
		return nil, "", err
	}
	if d.MediaType != "" {
		mt = d.MediaType
	}
	return body, mt, nil
}

// readManifest reads a manifest blob, checks its digest and tells its
// media type (what index.json or a put said, else its mediaType field,
// else its shape).
func (l *Layout) readManifest(_ context.Context, digest string) ([]byte, string, error) {
	p, err := l.blobPath(digest)
	if err != nil {
		return nil, "", err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("%w: manifest %s: no file %s", registry.ErrNotFound, digest, p)
	}
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", p, err)
	}
	if len(body) > maxManifestSize {
		return nil, "", fmt.Errorf("%s: a manifest larger than %d bytes", p, maxManifestSize)
	}
	if !registry.Matches(digest, body) {
		got, _ := registry.DigestAs(digest, body)
		return nil, "", fmt.Errorf("%w: %s is damaged: its content has digest %s", registry.ErrDigestMismatch, p, got)
	}
	l.mu.Lock()
	mt := l.types[digest]
	l.mu.Unlock()
	if mt == "" {
		mt = sniff(body)
	}
	return body, mt, nil
}

// sniff tells a manifest's media type from its content.
func sniff(body []byte) string {
	var m struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
	}
	_ = json.Unmarshal(body, &m)
	switch {
	case m.MediaType != "":
		return m.MediaType
	case m.Manifests != nil:
		return registry.MediaOCIIndex
	default:
		return registry.MediaOCIManifest
	}
}

// PutManifest stores a manifest: its blob, then, for a tag, its line in
// index.json named repo:tag, and for a manifest with a subject its
// unnamed line (so that its referrers are found again).
func (l *Layout) PutManifest(ctx context.Context, repo, ref, mt string, body []byte) error {
	if !l.writable {
		return fmt.Errorf("%s is open for reading only", l.Describe())
	}
	digest := registry.Digest(body)
	if imageref.ValidDigest(ref) {
		digest = ref
	}
	p, err := l.blobPath(digest)
	if err != nil {
		return err
	}
	if _, err := os.Stat(p); err != nil {
		if err := writeAtomic(p, body); err != nil {
			return fmt.Errorf("writing manifest %s to %s: %w", digest, l.Describe(), err)
		}
	}
	var m registry.Manifest
	_ = json.Unmarshal(body, &m)
	l.mu.Lock()
	defer l.mu.Unlock()
	if mt != "" {
		l.types[digest] = mt
	}
	d := registry.Descriptor{MediaType: mt, Digest: digest, Size: int64(len(body))}
	if !imageref.ValidDigest(ref) {
		d.Annotations = map[string]string{AnnotationRefName: repo + ":" + ref}
		if i, ok := l.tags[repo+":"+ref]; ok {
			if l.idx.Manifests[i].Digest == digest {
				return nil
			}
			l.idx.Manifests[i] = d
		} else {
			l.tags[repo+":"+ref] = len(l.idx.Manifests)
			l.idx.Manifests = append(l.idx.Manifests, d)
		}
		l.partIdx.Manifests = upsert(l.partIdx.Manifests, d)
		return l.writeIndex()
	}
	if m.Subject == nil || l.named[digest] {
		return nil
	}
	d.ArtifactType = m.ArtifactType
	if d.ArtifactType == "" && m.Config != nil {
		d.ArtifactType = m.Config.MediaType
	}
	var ann struct {
		Annotations map[string]string `json:"annotations"`
	}
	_ = json.Unmarshal(body, &ann)
	d.Annotations = ann.Annotations
	l.named[digest] = true
	l.subjects[m.Subject.Digest] = append(l.subjects[m.Subject.Digest], d)
	l.idx.Manifests = append(l.idx.Manifests, d)
	l.partIdx.Manifests = upsert(l.partIdx.Manifests, d)
	return l.writeIndex()
}

// writeIndex replaces index.json, or this writer's part (under l.mu).
func (l *Layout) writeIndex() error {
	idx, p := l.idx, filepath.Join(l.dir, IndexFile)
	if l.part != "" {
		idx, p = l.partIdx, l.partPath()
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(p, b); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// HasBlob reports whether the layout holds the blob. Blobs land under
// their name only whole and checked; verify reads them again.
func (l *Layout) HasBlob(_ context.Context, digest string) (bool, error) {
	p, err := l.blobPath(digest)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// OpenBlob opens a blob and returns its size on disk.
func (l *Layout) OpenBlob(_ context.Context, d registry.Descriptor) (io.ReadCloser, int64, error) {
	p, err := l.blobPath(d.Digest)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("%w: blob %s: no file %s", registry.ErrNotFound, d.Digest, p)
	}
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// WriteBlob writes a blob from r into a temporary file, syncs it and
// renames it into place once r has ended without error (r checks the
// digest: a reader whose content has another digest fails its last read).
func (l *Layout) WriteBlob(ctx context.Context, d registry.Descriptor, r io.Reader) (int64, error) {
	if !l.writable {
		return 0, fmt.Errorf("%s is open for reading only", l.Describe())
	}
	p, err := l.blobPath(d.Digest)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return 0, err
	}
	tmp := filepath.Join(filepath.Dir(p), tmpPrefix+filepath.Base(p)+"-"+randomSuffix())
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, fmt.Errorf("writing blob %s: %w", d.Digest, err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, readerCtx{ctx, r})
	if err != nil {
		return n, fmt.Errorf("writing blob %s to %s: %w", d.Digest, l.Describe(), err)
	}
	if err := f.Sync(); err != nil {
		return n, fmt.Errorf("writing blob %s to %s: %w", d.Digest, l.Describe(), err)
	}
	if err := f.Close(); err != nil {
		return n, err
	}
	done = true
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return n, fmt.Errorf("writing blob %s to %s: %w", d.Digest, l.Describe(), err)
	}
	return n, nil
}

// readerCtx stops a copy when the context ends.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// Referrers lists the manifests whose subject is digest.
func (l *Layout) Referrers(_ context.Context, _, digest string) ([]registry.Descriptor, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]registry.Descriptor(nil), l.subjects[digest]...), nil
}

// Tags returns every name of the layout (repo:tag) and its digest.
func (l *Layout) Tags() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]string{}
	for k, i := range l.tags {
		out[k] = l.idx.Manifests[i].Digest
	}
	return out
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeAtomic writes a small file through a synced temporary file renamed
// into place.
func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), tmpPrefix+filepath.Base(path)+"-"+randomSuffix())
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

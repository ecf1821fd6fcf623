package ocilayout

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/regmigrate/regmigrate/steps/registry"
)

// StagingSuffix names the layout kept beside an archive: the one an
// oci-archive target is written into before it is packed (a rerun resumes
// there), and the one an archive source is unpacked into (a rerun reuses
// it). Delete it once the archive is carried and read.
const StagingSuffix = ".layout"

// completeFile marks a staging layout unpacked to its end.
const completeFile = ".regmigrate-complete"

// Staging is the layout directory kept beside an archive file.
func Staging(file string) string { return file + StagingSuffix }

// partName is the name of the i-th part of a split archive.
func partName(file string, i int) string { return fmt.Sprintf("%s.%03d", file, i) }

// openArchive opens an archive file, or the concatenation of its parts
// (FILE.000, FILE.001...) when it was split.
func openArchive(file string) (io.ReadCloser, error) {
	f, err := os.Open(file)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var parts []*os.File
	for i := 0; ; i++ {
		p, err := os.Open(partName(file, i))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("no archive %s (nor its parts %s, %s...): give the file the first phase wrote", file, partName(file, 0), partName(file, 1))
	}
	rs := make([]io.Reader, len(parts))
	for i, p := range parts {
		rs[i] = p
	}
	return multiCloser{io.MultiReader(rs...), parts}, nil
}

type multiCloser struct {
	io.Reader
	files []*os.File
}

func (m multiCloser) Close() error {
	for _, f := range m.files {
		f.Close()
	}
	return nil
}

// OpenArchive unpacks an oci-archive (a tar of an OCI image layout, whole
// or split in parts) beside it, once, and opens the layout for reading.
func OpenArchive(ctx context.Context, file string) (*Layout, error) {
	dir, err := stage(file, func(dir string) error { return untar(file, dir) })
	if err != nil {
		return nil, err
	}
	return Open(ctx, dir, Options{})
}

// stage fills the staging directory of file once (fill), marking it
// complete; an incomplete one (an interrupted unpack) is filled again.
func stage(file string, fill func(dir string) error) (string, error) {
	dir := Staging(file)
	if _, err := os.Stat(filepath.Join(dir, completeFile)); err == nil {
		return dir, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("unpacking %s beside it: %w", file, err)
	}
	if err := fill(dir); err != nil {
		return "", fmt.Errorf("unpacking %s into %s: %w", file, dir, err)
	}
	return dir, os.WriteFile(filepath.Join(dir, completeFile), nil, 0o644)
}

// untar unpacks a tar archive into dir, refusing paths that leave it.
func untar(file, dir string) error {
	rc, err := openArchive(file)
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Clean(h.Name)
		if filepath.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") {
			return fmt.Errorf("%s: entry %q leaves the archive's folder", file, h.Name)
		}
		dst := filepath.Join(dir, p)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			f, err := os.Create(dst)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}

// Pack writes the layout in dir as an oci-archive (a tar of the layout's
// files) to file, through a temporary file renamed into place. With
// splitSize > 0 the archive is cut into parts FILE.000, FILE.001... of at
// most splitSize bytes each (for media with a size limit; `cat FILE.* >
// FILE` joins them, and regmigrate reads the parts as they are). It
// returns the files written.
func Pack(dir, file string, splitSize int64) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), tmpPrefix) && d.Name() != completeFile && !strings.HasPrefix(d.Name(), ".regmigrate.lock") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	// Remove what an earlier pack left: the whole file or its parts.
	old, _ := filepath.Glob(file + ".[0-9][0-9][0-9]")
	for _, o := range append(old, file) {
		_ = os.Remove(o)
	}
	w := &splitWriter{file: file, limit: splitSize}
	tw := tar.NewWriter(w)
	for _, p := range files {
		rel, _ := filepath.Rel(dir, p)
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("packing %s into %s: %w", p, file, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return w.finish()
}

// splitWriter writes one file, or parts of at most limit bytes, each
// through a temporary file renamed into place when full.
type splitWriter struct {
	file  string
	limit int64
	cur   *os.File
	n     int64
	done  []string
}

func (w *splitWriter) name() string {
	if w.limit <= 0 {
		return w.file
	}
	return partName(w.file, len(w.done))
}

func (w *splitWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if w.cur == nil {
			f, err := os.Create(w.name() + tmpPrefix)
			if err != nil {
				return written, err
			}
			w.cur, w.n = f, 0
		}
		chunk := p
		if w.limit > 0 && int64(len(chunk)) > w.limit-w.n {
			chunk = chunk[:w.limit-w.n]
		}
		n, err := w.cur.Write(chunk)
		written += n
		w.n += int64(n)
		p = p[n:]
		if err != nil {
			return written, err
		}
		if w.limit > 0 && w.n >= w.limit {
			if err := w.close(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (w *splitWriter) close() error {
	name := w.name()
	if err := w.cur.Sync(); err != nil {
		return err
	}
	if err := w.cur.Close(); err != nil {
		return err
	}
	w.cur = nil
	if err := os.Rename(name+tmpPrefix, name); err != nil {
		return err
	}
	w.done = append(w.done, name)
	return nil
}

func (w *splitWriter) finish() ([]string, error) {
	if w.cur != nil {
		if err := w.close(); err != nil {
			return nil, err
		}
	}
	return w.done, nil
}

// OpenDockerArchive reads what `docker save` writes (one or more images,
// each named by its RepoTags) into an OCI layout beside the file, once,
// and opens it. docker save stores layers uncompressed: they are
// compressed (gzip) on the way, so the images get new manifest digests;
// their configs (image IDs) and layer contents are kept.
func OpenDockerArchive(ctx context.Context, file string) (*Layout, error) {
	dir, err := stage(file, func(dir string) error {
		opener := func() (io.ReadCloser, error) { return openArchive(file) }
		m, err := tarball.LoadManifest(opener)
		if err != nil {
			return fmt.Errorf("not a docker save archive: %w", err)
		}
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			return err
		}
		n := 0
		for _, d := range m {
			for _, rt := range d.RepoTags {
				tag, err := name.NewTag(rt)
				if err != nil {
					return fmt.Errorf("RepoTags %q: %w", rt, err)
				}
				img, err := tarball.Image(opener, &tag)
				if err != nil {
					return fmt.Errorf("%s: %w", rt, err)
				}
				ref := tag.RepositoryStr() + ":" + tag.TagStr()
				if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{AnnotationRefName: ref})); err != nil {
					return fmt.Errorf("%s: %w", rt, err)
				}
				n++
			}
		}
		if n == 0 {
			return errors.New("its images have no RepoTags: nothing names them (docker save them by name, not by ID)")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return Open(ctx, dir, Options{})
}

// OpenDir reads a containers/image dir: directory (manifest.json, its
// blobs named by their hex digest, version) into an OCI layout beside it,
// once, and opens it. The image is named <directory name>:latest.
func OpenDir(ctx context.Context, src string) (*Layout, error) {
	dir, err := stage(filepath.Clean(src), func(dir string) error {
		mf, err := os.ReadFile(filepath.Join(src, "manifest.json"))
		if err != nil {
			return fmt.Errorf("not a dir: image (skopeo copy ... dir:DIR): %w", err)
		}
		m, err := registry.ParseManifest(mf, "")
		if err != nil {
			return err
		}
		if len(m.Manifests) > 0 {
			return errors.New("a dir: folder with a manifest list: copy it with skopeo --all to oci:DIR instead, which keeps every child")
		}
		l, err := Open(ctx, dir, Options{Create: true})
		if err != nil {
			return err
		}
		for _, d := range m.Blobs() {
			_, hx, _ := strings.Cut(d.Digest, ":")
			f, err := os.Open(filepath.Join(src, hx))
			if err != nil {
				return err
			}
			_, err = l.WriteBlob(ctx, d, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		mt := m.MediaType
		if mt == "" {
			mt = sniff(mf)
		}
		return l.PutManifest(ctx, l.defaultRepoOf(src), "latest", mt, mf)
	})
	if err != nil {
		return nil, err
	}
	return Open(ctx, dir, Options{})
}

func (l *Layout) defaultRepoOf(src string) string {
	saved := l.dir
	l.dir = src
	defer func() { l.dir = saved }()
	return l.defaultRepo()
}

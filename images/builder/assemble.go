// Package builder builds regmigrate's step images without a Docker daemon:
// it cross-compiles each step binary (steps/cmd/<step>) per platform and
// assembles, with go-containerregistry, one OCI image per platform and one
// OCI image index per step, which it writes as an OCI layout or pushes.
//
// An image holds two layers: a base layer shared by every step and platform
// (the CA bundle, /etc/passwd and /etc/group with the non-root user
// regmigrate, uid/gid 65532) and the step binary at /usr/local/bin/<step>.
// Every timestamp is fixed (Meta.Epoch), so the same inputs give the same
// digests.
package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths and identity inside the images.
const (
	BinDir      = "/usr/local/bin"
	CABundle    = "/etc/ssl/certs/ca-certificates.crt"
	PasswdPath  = "/etc/passwd"
	GroupPath   = "/etc/group"
	UserName    = "regmigrate"
	UID         = 65532
	GID         = 65532
	HomeDir     = "/home/regmigrate"
	User        = "65532:65532"
	DefaultPATH = "/usr/local/bin"
)

// OCI label (and index annotation) keys.
const (
	LabelSource  = "org.opencontainers.image.source"
	LabelVersion = "org.opencontainers.image.version"
	LabelTitle   = "org.opencontainers.image.title"
	// AnnotationRefName names an index in an OCI layout's index.json
	// (skopeo's oci:DIR:TAG).
	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// Passwd and Group are the images' /etc/passwd and /etc/group.
var (
	Passwd = fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n", UserName, UID, GID, UserName, HomeDir)
	Group  = fmt.Sprintf("root:x:0:\n%s:x:%d:\n", UserName, GID)
)

// Meta is what every image of a build shares.
type Meta struct {
	Version  string    // org.opencontainers.image.version
	Source   string    // org.opencontainers.image.source
	Epoch    time.Time // every timestamp: the config's created, history, tar entries
	CABundle []byte    // the content of /etc/ssl/certs/ca-certificates.crt
}

// Binary is one compiled step binary.
type Binary struct {
	Platform v1.Platform
	Data     []byte
}

// BinaryPath is where the step's binary is inside its image.
func BinaryPath(step string) string { return path.Join(BinDir, step) }

// file is one entry of a layer.
type file struct {
	name string // absolute
	mode int64
	uid  int
	gid  int
	dir  bool
	data []byte
}

// tarGz writes the entries, their parent directories first, as a gzipped
// tar with every timestamp at epoch and numeric owners only.
func tarGz(files []file, epoch time.Time) ([]byte, error) {
	entries := map[string]file{}
	for _, f := range files {
		entries[f.name] = f
		for d := path.Dir(f.name); d != "/"; d = path.Dir(d) {
			if _, ok := entries[d]; !ok {
				entries[d] = file{name: d, mode: 0o755, dir: true}
			}
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names) // a parent sorts before its children

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	mtime := epoch.UTC().Truncate(time.Second)
	for _, n := range names {
		f := entries[n]
		h := &tar.Header{
			Name:    n[1:],
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if f.dir {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// layer turns a gzipped tar held in memory into an OCI layer.
func layer(gz []byte) (v1.Layer, error) {
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// BaseLayer is the layer every image shares: the CA bundle, /etc/passwd,
// /etc/group and the user's (empty, read-only) home.
func BaseLayer(m Meta) (v1.Layer, error) {
	if len(m.CABundle) == 0 {
		return nil, fmt.Errorf("no CA bundle: the images need one at %s", CABundle)
	}
	gz, err := tarGz([]file{
		{name: CABundle, mode: 0o644, data: m.CABundle},
		{name: PasswdPath, mode: 0o644, data: []byte(Passwd)},
		{name: GroupPath, mode: 0o644, data: []byte(Group)},
		{name: HomeDir, mode: 0o755, uid: UID, gid: GID, dir: true},
	}, m.Epoch)
	if err != nil {
		return nil, err
	}
	return layer(gz)
}

// BinaryLayer holds the step binary at /usr/local/bin/<step>, mode 0755,
// owned by root.
func BinaryLayer(step string, bin []byte, epoch time.Time) (v1.Layer, error) {
	gz, err := tarGz([]file{{name: BinaryPath(step), mode: 0o755, data: bin}}, epoch)
	if err != nil {
		return nil, err
	}
	return layer(gz)
}

// ConfigFor is the image configuration of a step on a platform.
func ConfigFor(step string, p v1.Platform, m Meta) *v1.ConfigFile {
	return &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      v1.Time{Time: m.Epoch.UTC()},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			User:       User,
			Entrypoint: []string{BinaryPath(step)},
			WorkingDir: "/",
			Env:        []string{"PATH=" + DefaultPATH},
			Labels:     labels(step, m),
		},
	}
}

func labels(step string, m Meta) map[string]string {
	l := map[string]string{LabelTitle: step, LabelVersion: m.Version}
	if m.Source != "" {
		l[LabelSource] = m.Source
	}
	return l
}

// Image assembles one platform's image of a step over a base layer (see
// BaseLayer; pass the same one to every image so that registries store it
// once).
func Image(step string, bin Binary, base v1.Layer, m Meta) (v1.Image, error) {
	if step == "" {
		return nil, fmt.Errorf("no step name")
	}
	if bin.Platform.OS == "" || bin.Platform.Architecture == "" {
		return nil, fmt.Errorf("%s: binary without a platform", step)
	}
	if len(bin.Data) == 0 {
		return nil, fmt.Errorf("%s %s: empty binary", step, bin.Platform)
	}
	top, err := BinaryLayer(step, bin.Data, m.Epoch)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, ConfigFor(step, bin.Platform, m))
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: m.Epoch.UTC()}
	return mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "regmigrate build-images: CA bundle, /etc/passwd, /etc/group (user regmigrate, 65532)"}},
		mutate.Addendum{Layer: top, History: v1.History{Created: created, CreatedBy: "regmigrate build-images: " + BinaryPath(step)}},
	)
}

// Index assembles a step's OCI image index: one image per binary, each
// descriptor with its platform, in the binaries' order.
func Index(step string, bins []Binary, m Meta) (v1.ImageIndex, error) {
	if len(bins) == 0 {
		return nil, fmt.Errorf("%s: no binaries", step)
	}
	base, err := BaseLayer(m)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, b := range bins {
		if seen[b.Platform.String()] {
			return nil, fmt.Errorf("%s: platform %s twice", step, b.Platform)
		}
		seen[b.Platform.String()] = true
	}
	// One goroutine per platform: compressing the binaries is most of the work.
	imgs := make([]v1.Image, len(bins))
	errs := make([]error, len(bins))
	var wg sync.WaitGroup
	for i, b := range bins {
		wg.Go(func() { imgs[i], errs[i] = Image(step, b, base, m) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	adds := make([]mutate.IndexAddendum, 0, len(bins))
	for i, b := range bins {
		p := b.Platform
		adds = append(adds, mutate.IndexAddendum{Add: imgs[i], Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1,
			Platform:  &p,
		}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	return mutate.Annotations(idx, labels(step, m)).(v1.ImageIndex), nil
}

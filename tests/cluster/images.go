package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/regmigrate/regmigrate/tests/kubeapi"
)

// ImportImage puts img into the node's containerd as ref, so that pods
// naming ref run it without pulling (the node has no registry to pull from).
func (n *Node) ImportImage(ctx context.Context, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	dir := filepath.Join(n.Dir, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		return err
	}
	_, err = ctr(ctx, "images", "import", "--all-platforms", path)
	return err
}

// BinaryImage is a linux/amd64 image of static binaries: each file at
// /usr/local/bin/<its base name>, PATH=/usr/local/bin, /tmp, and entry as
// the entrypoint.
func BinaryImage(entry string, files ...string) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, d := range []struct {
		name string
		mode int64
	}{{"usr/", 0o755}, {"usr/local/", 0o755}, {"usr/local/bin/", 0o755}, {"tmp/", 0o1777}} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: epoch})
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/local/bin/" + filepath.Base(f), Mode: 0o755, Size: int64(len(b)), ModTime: epoch})
		tw.Write(b)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = v1.Config{Entrypoint: []string{entry}, Env: []string{"PATH=/usr/local/bin"}, WorkingDir: "/"}
	return mutate.ConfigFile(img, cf)
}

// importBaseImages imports the sandbox image (tests/cluster/cmd/pause) and
// Argo's executor image (argoexec, which must be on the image's PATH).
func (n *Node) importBaseImages(ctx context.Context) error {
	pause := filepath.Join(n.Dir, "bin", "pause")
	log, err := os.Create(filepath.Join(n.Dir, "build-pause.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	src, err := sourceDir("cmd/pause")
	if err != nil {
		return err
	}
	if err := kubeapi.GoCommand(ctx, src, log, nil, "build", "-trimpath", "-ldflags=-s -w", "-o", pause, "."); err != nil {
		return err
	}
	for ref, files := range map[string][]string{
		PauseImage:    {pause},
		ExecutorImage: {filepath.Join(n.Bin, "argoexec")},
	} {
		img, err := BinaryImage("/usr/local/bin/"+filepath.Base(files[0]), files...)
		if err != nil {
			return err
		}
		if err := n.ImportImage(ctx, ref, img); err != nil {
			return err
		}
	}
	return nil
}

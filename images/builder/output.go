package builder

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// WriteLayout writes the index as a fresh OCI image layout at dir, its
// index.json naming it tag (org.opencontainers.image.ref.name). A layout
// already at dir is replaced; any other non-empty dir is an error.
func WriteLayout(dir, tag string, idx v1.ImageIndex) (layout.Path, error) {
	if err := clearLayout(dir); err != nil {
		return "", err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	var opts []layout.Option
	if tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{AnnotationRefName: tag}))
	}
	if err := p.AppendIndex(idx, opts...); err != nil {
		return "", fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	return p, nil
}

func clearLayout(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return fmt.Errorf("%s exists and is not an OCI layout: not overwriting it", dir)
	}
	return os.RemoveAll(dir)
}

// Ref is where a step's image is pushed: PREFIX/<step>:<tag>, PREFIX being
// REGISTRY[/PATH].
func Ref(prefix, step, tag string, insecure bool) (name.Tag, error) {
	prefix = strings.TrimSuffix(strings.TrimSpace(prefix), "/")
	if prefix == "" {
		return name.Tag{}, errors.New("no registry to push to")
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	s := prefix + "/" + step + ":" + tag
	t, err := name.NewTag(s, append(opts, name.StrictValidation)...)
	if err != nil {
		return name.Tag{}, fmt.Errorf("push reference %s: %w", s, err)
	}
	return t, nil
}

// Push writes the index, its images and their blobs to ref. Credentials come
// from the docker config ($DOCKER_CONFIG, ~/.docker/config.json, credential
// helpers). With insecure the registry may be plain HTTP or present a
// certificate that does not verify.
func Push(ctx context.Context, ref name.Tag, idx v1.ImageIndex, insecure bool, opts ...remote.Option) error {
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with --insecure
	}
	all := append([]remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithTransport(tr),
	}, opts...)
	if err := remote.WriteIndex(ref, idx, all...); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

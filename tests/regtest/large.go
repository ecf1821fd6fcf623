package regtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
)

// PushLargeImage pushes an image with one layer of size pseudo-random bytes
// to an anonymous plain-HTTP registry, streaming the layer (the test
// process never holds it in memory). It returns the manifest digest.
func PushLargeImage(ctx context.Context, host, repo, tag string, size int64) (string, error) {
	base := "http://" + host
	h := sha256.New()
	src := io.TeeReader(io.LimitReader(&pseudoRandom{r: rand.New(rand.NewPCG(uint64(size), 7))}, size), h)
	layerDigest, err := pushBlob(ctx, base, repo, src, size, func() string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) })
	if err != nil {
		return "", fmt.Errorf("pushing the layer: %w", err)
	}
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + layerDigest + `"]}}`)
	cs := sha256.Sum256(config)
	configDigest := "sha256:" + hex.EncodeToString(cs[:])
	if _, err := pushBlob(ctx, base, repo, bytes.NewReader(config), int64(len(config)), func() string { return configDigest }); err != nil {
		return "", fmt.Errorf("pushing the config: %w", err)
	}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": len(config)},
		"layers":        []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": size}},
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(manifest))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("PUT manifest: %s: %s", resp.Status, b)
	}
	ms := sha256.Sum256(manifest)
	return "sha256:" + hex.EncodeToString(ms[:]), nil
}

// pushBlob: POST, one streamed PATCH, then PUT with the digest known only
// after the stream was read.
func pushBlob(ctx context.Context, base, repo string, body io.Reader, size int64, digest func() string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("POST upload: %s", resp.Status)
	}
	loc, err := resolve(base, resp.Header.Get("Location"))
	if err != nil {
		return "", err
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPatch, loc.String(), body)
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("PATCH upload: %s", resp.Status)
	}
	if loc, err = resolve(base, resp.Header.Get("Location")); err != nil {
		return "", err
	}
	d := digest()
	q := loc.Query()
	q.Set("digest", d)
	loc.RawQuery = q.Encode()
	req, _ = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("PUT upload: %s", resp.Status)
	}
	return d, nil
}

func resolve(base, loc string) (*url.URL, error) {
	b, _ := url.Parse(base + "/")
	l, err := url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("bad Location %q: %w", loc, err)
	}
	return b.ResolveReference(l), nil
}

// pseudoRandom is a fast, incompressible byte stream.
type pseudoRandom struct{ r *rand.Rand }

func (p *pseudoRandom) Read(b []byte) (int, error) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := p.r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(p.r.Uint32())
	}
	return len(b), nil
}

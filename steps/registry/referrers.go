package registry

import (
	"context"
	"errors"
	"net/http"
)

// Referrers returns the referrers index of digest in repo through the OCI
// 1.1 referrers API. ErrUnsupported when the registry has no such API (then
// referrers live under the tag-schema fallback tag, which regmigrate copies
// as a tag). The answer is cached per registry after the first call. The
// index is capped like a manifest, and every digest in it must be valid.
func (c *Client) Referrers(ctx context.Context, host, repo, digest string) ([]Descriptor, error) {
	if s := c.StoreOf(host); s != nil {
		if err := checkDigest(digest); err != nil {
			return nil, err
		}
		return s.Referrers(ctx, repo, digest)
	}
	if err := checkRepo(repo); err != nil {
		return nil, err
	}
	if err := checkDigest(digest); err != nil {
		return nil, err
	}
	h, err := c.host(host)
	if err != nil {
		return nil, err
	}
	// Until the registry is known to have the API or not, one request at
	// a time asks: the others wait for its answer rather than all
	// probing a registry without it at once.
	var state int
	for {
		h.refMu.Lock()
		state = h.referrers
		probe := h.refProbe
		if state != 0 || probe == nil {
			if state == 0 {
				probe = make(chan struct{})
				h.refProbe = probe
				defer func() {
					h.refMu.Lock()
					h.refProbe = nil
					h.refMu.Unlock()
					close(probe)
				}()
			}
			h.refMu.Unlock()
			break
		}
		h.refMu.Unlock()
		select {
		case <-probe:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if state < 0 {
		return nil, ErrUnsupported
	}
	var idx Manifest
	err = c.retry(ctx, "referrers", func() error {
		idx = Manifest{}
		_, err := c.getJSON(ctx, host, repo, []string{pullScope(repo)}, "/v2/"+repo+"/referrers/"+digest, maxManifestSize, &idx)
		return err
	})
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && (se.Status == http.StatusNotFound || se.Status == http.StatusMethodNotAllowed || se.Status == http.StatusBadRequest) && state == 0 {
			h.refMu.Lock()
			h.referrers = -1
			h.refMu.Unlock()
			return nil, ErrUnsupported
		}
		return nil, err
	}
	for _, d := range idx.Manifests {
		if err := checkDigest(d.Digest); err != nil {
			return nil, err
		}
	}
	h.refMu.Lock()
	h.referrers = 1
	h.refMu.Unlock()
	return idx.Manifests, nil
}

package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/regmigrate/regmigrate/steps/imageref"
)

// Media types the client asks for and understands.
const (
	MediaOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaDockerV2       = "application/vnd.docker.distribution.manifest.v2+json"
	MediaDockerV1       = "application/vnd.docker.distribution.manifest.v1+json"
	MediaDockerV1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

var acceptManifests = strings.Join([]string{
	MediaOCIIndex, MediaOCIManifest, MediaDockerList, MediaDockerV2,
	MediaDockerV1Signed, MediaDockerV1,
}, ", ")

// IsIndex reports whether a media type is a manifest list or an OCI index.
func IsIndex(mt string) bool { return mt == MediaOCIIndex || mt == MediaDockerList }

// Descriptor is the part of an OCI descriptor regmigrate needs.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	Platform     *Platform         `json:"platform,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// Platform of an index child.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

func (p *Platform) String() string {
	if p == nil {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Manifest covers image manifests, indexes and artifacts.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	ArtifactType  string       `json:"artifactType,omitempty"`
	Config        *Descriptor  `json:"config,omitempty"`
	Layers        []Descriptor `json:"layers,omitempty"`
	Manifests     []Descriptor `json:"manifests,omitempty"`
	Subject       *Descriptor  `json:"subject,omitempty"`
	FSLayers      []struct {
		BlobSum string `json:"blobSum"`
	} `json:"fsLayers,omitempty"`
}

// ParseManifest decodes a manifest; mt is the Content-Type the registry gave.
// Every digest it references must be well formed: a manifest that names a
// blob or child by an invalid digest is refused.
func ParseManifest(body []byte, mt string) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("decoding manifest: %w", err)
	}
	if m.MediaType == "" {
		m.MediaType = mt
	}
	for _, d := range m.references() {
		if err := checkDigest(d.Digest); err != nil {
			return nil, fmt.Errorf("manifest references %w", err)
		}
	}
	return &m, nil
}

// references lists every descriptor the manifest names.
func (m *Manifest) references() []Descriptor {
	var out []Descriptor
	if m.Config != nil {
		out = append(out, *m.Config)
	}
	out = append(out, m.Layers...)
	out = append(out, m.Manifests...)
	if m.Subject != nil {
		out = append(out, *m.Subject)
	}
	return out
}

// Blobs lists the blobs an image manifest references (config first).
// Foreign (non-distributable) layers are left out: registries do not hold them.
func (m *Manifest) Blobs() []Descriptor {
	var out []Descriptor
	if m.Config != nil && m.Config.Digest != "" {
		out = append(out, *m.Config)
	}
	for _, l := range m.Layers {
		if len(l.URLs) > 0 || strings.Contains(l.MediaType, "foreign") || strings.Contains(l.MediaType, "nondistributable") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// maxManifestSize caps a manifest (and a referrers index): the
// distribution registry refuses manifests over 4 MiB.
const maxManifestSize = 8 << 20

// HeadManifest returns the descriptor of ref (tag or digest) in repo. A
// registry that sends no Docker-Content-Digest, or one that is not a valid
// digest, is asked for the manifest itself, whose digest is computed here.
func (c *Client) HeadManifest(ctx context.Context, host, repo, ref string) (Descriptor, error) {
	d, _, err := c.headManifest(ctx, host, repo, ref, "")
	return d, err
}

// HeadManifestUnlessDigest is HeadManifest for a caller that expects ref to
// resolve to known: it asks the registry to answer 304 Not Modified when it
// does (If-None-Match), which spares the distribution registry reading and
// parsing the manifest (most of a HEAD's cost to it). same reports that ref
// resolves to known; the descriptor then has that digest and, on a 304, no
// media type or size. A registry that ignores the header answers as to
// HEAD, and same is worked out from its digest.
func (c *Client) HeadManifestUnlessDigest(ctx context.Context, host, repo, ref, known string) (d Descriptor, same bool, err error) {
	if !imageref.ValidDigest(known) {
		return Descriptor{}, false, fmt.Errorf("HeadManifestUnlessDigest: %q is not a digest", known)
	}
	return c.headManifest(ctx, host, repo, ref, known)
}

func (c *Client) headManifest(ctx context.Context, host, repo, ref, known string) (Descriptor, bool, error) {
	if s := c.StoreOf(host); s != nil {
		if err := checkRef(repo, ref); err != nil {
			return Descriptor{}, false, err
		}
		d, err := s.HeadManifest(ctx, repo, ref)
		return d, err == nil && known != "" && d.Digest == known, err
	}
	if err := checkRef(repo, ref); err != nil {
		return Descriptor{}, false, err
	}
	hdr := http.Header{"Accept": {acceptManifests}}
	if known != "" {
		hdr["If-None-Match"] = []string{`"` + known + `"`}
	}
	var d Descriptor
	err := c.retry(ctx, "HEAD manifest", func() error {
		resp, err := c.do(ctx, call{host: host, repo: repo, scopes: []string{pullScope(repo)}, method: http.MethodHead,
			path: "/v2/" + repo + "/manifests/" + ref, hdr: hdr})
		if err != nil {
			return err
		}
		want := []int{http.StatusOK}
		if known != "" {
			want = append(want, http.StatusNotModified)
		}
		err = checkResponse(resp, want...)
		drain(resp) // the request slot is free again before any fallback
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusNotModified {
			// Only a registry whose ETag for ref is our digest answers 304.
			d = Descriptor{Digest: known}
			return nil
		}
		d = Descriptor{MediaType: mediaType(resp.Header.Get("Content-Type")), Digest: resp.Header.Get("Docker-Content-Digest"), Size: resp.ContentLength}
		if d.Digest != "" && imageref.ValidDigest(d.Digest) && (!imageref.ValidDigest(ref) || d.Digest == ref) {
			return nil
		}
		if d.Digest != "" {
			c.o.Logger.Warn("registry sent an unusable Docker-Content-Digest on HEAD; reading the manifest instead",
				"registry", host, "repository", repo, "reference", ref, "digest", d.Digest)
		}
		// No usable digest on HEAD: GET the manifest and digest it here.
		body, mt, digest, err := c.getManifestOnce(ctx, host, repo, ref)
		if err != nil {
			return err
		}
		d = Descriptor{MediaType: mt, Digest: digest, Size: int64(len(body))}
		return nil
	})
	return d, err == nil && known != "" && d.Digest == known, err
}

// GetManifest returns the exact manifest bytes of ref and their media type.
// The bytes are checked against ref when it is a digest, and against the
// registry's Docker-Content-Digest when it sends one.
func (c *Client) GetManifest(ctx context.Context, host, repo, ref string) ([]byte, string, error) {
	if s := c.StoreOf(host); s != nil {
		if err := checkRef(repo, ref); err != nil {
			return nil, "", err
		}
		return s.GetManifest(ctx, repo, ref)
	}
	body, mt, _, err := c.GetManifestDigest(ctx, host, repo, ref)
	return body, mt, err
}

// GetManifestDigest is GetManifest that also returns the manifest's
// digest: ref itself when it is a digest, else the registry's
// Docker-Content-Digest (checked against the bytes) or the sha256 of the
// bytes. One GET by tag resolves and reads an image the target lacks.
func (c *Client) GetManifestDigest(ctx context.Context, host, repo, ref string) ([]byte, string, string, error) {
	if s := c.StoreOf(host); s != nil {
		if err := checkRef(repo, ref); err != nil {
			return nil, "", "", err
		}
		d, err := s.HeadManifest(ctx, repo, ref)
		if err != nil {
			return nil, "", "", err
		}
		body, mt, err := s.GetManifest(ctx, repo, d.Digest)
		return body, mt, d.Digest, err
	}
	if err := checkRef(repo, ref); err != nil {
		return nil, "", "", err
	}
	var body []byte
	var mt, digest string
	err := c.retry(ctx, "GET manifest", func() error {
		var err error
		body, mt, digest, err = c.getManifestOnce(ctx, host, repo, ref)
		return err
	})
	return body, mt, digest, err
}

// getManifestOnce GETs a manifest and returns it with its media type and
// its digest (ref when ref is a digest; else the registry's header, checked,
// or sha256 of the bytes).
func (c *Client) getManifestOnce(ctx context.Context, host, repo, ref string) ([]byte, string, string, error) {
	release, err := c.spendPull(ctx, host) // a pull quota (quota.go)
	if err != nil {
		return nil, "", "", err
	}
	defer release()
	resp, err := c.do(ctx, call{host: host, repo: repo, scopes: []string{pullScope(repo)}, method: http.MethodGet,
		path: "/v2/" + repo + "/manifests/" + ref, hdr: http.Header{"Accept": {acceptManifests}}})
	if err != nil {
		return nil, "", "", err
	}
	defer resp.Body.Close()
	if err := checkResponse(resp, http.StatusOK); err != nil {
		return nil, "", "", err
	}
	if resp.ContentLength > maxManifestSize {
		return nil, "", "", fmt.Errorf("manifest %s/%s:%s is %d bytes, more than the %d this client reads", host, repo, ref, resp.ContentLength, maxManifestSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, "", "", fmt.Errorf("reading manifest %s/%s:%s: %w", host, repo, ref, err)
	}
	if len(body) > maxManifestSize {
		return nil, "", "", fmt.Errorf("manifest %s/%s:%s is larger than %d bytes", host, repo, ref, maxManifestSize)
	}
	if resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength {
		return nil, "", "", &truncatedError{fmt.Sprintf("manifest %s/%s:%s: got %d of %d bytes", host, repo, ref, len(body), resp.ContentLength)}
	}
	digest := Digest(body)
	if imageref.ValidDigest(ref) {
		if !Matches(ref, body) {
			got, _ := DigestAs(ref, body)
			return nil, "", "", fmt.Errorf("%w: manifest %s/%s@%s: its content has digest %s", ErrDigestMismatch, host, repo, ref, got)
		}
		digest = ref
	} else if hd := resp.Header.Get("Docker-Content-Digest"); hd != "" && imageref.ValidDigest(hd) {
		if !Matches(hd, body) {
			got, _ := DigestAs(hd, body)
			return nil, "", "", fmt.Errorf("%w: manifest %s/%s:%s: the registry says %s, the content it sent has %s", ErrInvalidDigest, host, repo, ref, hd, got)
		}
		digest = hd
	}
	mt := mediaType(resp.Header.Get("Content-Type"))
	if mt == "" || mt == "application/json" || mt == "text/plain" || mt == "application/octet-stream" {
		var m Manifest
		if json.Unmarshal(body, &m) == nil && m.MediaType != "" {
			mt = m.MediaType
		}
	}
	return body, mt, digest, nil
}

func mediaType(ct string) string {
	if i := strings.Index(ct, ";"); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimSpace(ct)
}

// PutManifest pushes the exact bytes under ref (tag or digest). The caller
// has checked the bytes against their digest; a digest ref is checked here
// again, so nothing is stored under a digest it does not have.
func (c *Client) PutManifest(ctx context.Context, host, repo, ref, mt string, body []byte) error {
	if s := c.StoreOf(host); s != nil {
		if err := checkRef(repo, ref); err != nil {
			return err
		}
		if imageref.ValidDigest(ref) && !Matches(ref, body) {
			return fmt.Errorf("%w: refusing to store a manifest as %s@%s: its content has another digest", ErrInvalidDigest, repo, ref)
		}
		return s.PutManifest(ctx, repo, ref, mt, body)
	}
	if err := checkRef(repo, ref); err != nil {
		return err
	}
	if imageref.ValidDigest(ref) && !Matches(ref, body) {
		return fmt.Errorf("%w: refusing to push a manifest as %s/%s@%s: its content has another digest", ErrInvalidDigest, host, repo, ref)
	}
	return c.retry(ctx, "PUT manifest", func() error {
		resp, err := c.do(ctx, call{host: host, repo: repo, scopes: []string{pushScope(repo)}, method: http.MethodPut,
			path: "/v2/" + repo + "/manifests/" + ref, body: body, size: int64(len(body)), hdr: http.Header{"Content-Type": {mt}}})
		if err != nil {
			return err
		}
		defer drain(resp)
		return checkResponse(resp, http.StatusCreated, http.StatusOK, http.StatusAccepted)
	})
}

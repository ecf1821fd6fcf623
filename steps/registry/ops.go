package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
func ParseManifest(body []byte, mt string) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("decoding manifest: %w", err)
	}
	if m.MediaType == "" {
		m.MediaType = mt
	}
	return &m, nil
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

// Digest of bytes, as sha256:hex.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// request performs one HTTP request on host with the scopes, holding a slot
// of the registry's limit until the response body is closed by the caller.
// The caller must call release() after consuming the response.
func (c *Client) request(ctx context.Context, host, repo string, scopes []string, method, path string, body io.Reader, size int64, hdr http.Header) (*http.Response, func(), error) {
	h, err := c.host(host)
	if err != nil {
		return nil, nil, err
	}
	rt, err := c.roundTripper(ctx, h, repo, scopes...)
	if err != nil {
		return nil, nil, err
	}
	u := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		u = h.scheme + "://" + host + path
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if err := h.acquire(ctx); err != nil {
		return nil, nil, err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		h.release()
		return nil, nil, fmt.Errorf("%s %s: %w", method, shortURL(req), err)
	}
	var once bool
	return resp, func() {
		if !once {
			once = true
			h.release()
		}
	}, nil
}

// HeadManifest returns the descriptor of ref (tag or digest) in repo.
func (c *Client) HeadManifest(ctx context.Context, host, repo, ref string) (Descriptor, error) {
	var d Descriptor
	err := c.retry(ctx, "HEAD manifest", func() error {
		resp, done, err := c.request(ctx, host, repo, []string{pullScope(repo)}, http.MethodHead,
			"/v2/"+repo+"/manifests/"+ref, nil, 0, http.Header{"Accept": {acceptManifests}})
		if err != nil {
			return err
		}
		defer done()
		defer drain(resp)
		if err := checkResponse(resp, http.StatusOK); err != nil {
			return err
		}
		d = Descriptor{
			MediaType: resp.Header.Get("Content-Type"),
			Digest:    resp.Header.Get("Docker-Content-Digest"),
			Size:      resp.ContentLength,
		}
		if d.Digest == "" {
			// Some registries omit the digest on HEAD: fall back to GET.
			body, mt, err := c.getManifestOnce(ctx, host, repo, ref)
			if err != nil {
				return err
			}
			d = Descriptor{MediaType: mt, Digest: Digest(body), Size: int64(len(body))}
		}
		return nil
	})
	return d, err
}

// GetManifest returns the exact manifest bytes of ref and their media type.
// When ref is a digest the bytes are checked against it.
func (c *Client) GetManifest(ctx context.Context, host, repo, ref string) ([]byte, string, error) {
	var body []byte
	var mt string
	err := c.retry(ctx, "GET manifest", func() error {
		var err error
		body, mt, err = c.getManifestOnce(ctx, host, repo, ref)
		return err
	})
	return body, mt, err
}

const maxManifestSize = 8 << 20

func (c *Client) getManifestOnce(ctx context.Context, host, repo, ref string) ([]byte, string, error) {
	resp, done, err := c.request(ctx, host, repo, []string{pullScope(repo)}, http.MethodGet,
		"/v2/"+repo+"/manifests/"+ref, nil, 0, http.Header{"Accept": {acceptManifests}})
	if err != nil {
		return nil, "", err
	}
	defer done()
	defer resp.Body.Close()
	if err := checkResponse(resp, http.StatusOK); err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("reading manifest %s/%s:%s: %w", host, repo, ref, err)
	}
	if len(body) > maxManifestSize {
		return nil, "", fmt.Errorf("manifest %s/%s:%s is larger than %d bytes", host, repo, ref, maxManifestSize)
	}
	if resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength {
		return nil, "", &truncatedError{fmt.Sprintf("manifest %s/%s:%s: got %d of %d bytes", host, repo, ref, len(body), resp.ContentLength)}
	}
	if strings.HasPrefix(ref, "sha256:") && Digest(body) != ref {
		return nil, "", &truncatedError{fmt.Sprintf("manifest %s/%s@%s: content has digest %s", host, repo, ref, Digest(body))}
	}
	mt := resp.Header.Get("Content-Type")
	if i := strings.Index(mt, ";"); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	if mt == "" || mt == "application/json" || mt == "text/plain" {
		var m Manifest
		if json.Unmarshal(body, &m) == nil && m.MediaType != "" {
			mt = m.MediaType
		}
	}
	return body, mt, nil
}

// PutManifest pushes the exact bytes under ref (tag or digest).
func (c *Client) PutManifest(ctx context.Context, host, repo, ref, mt string, body []byte) error {
	return c.retry(ctx, "PUT manifest", func() error {
		resp, done, err := c.request(ctx, host, repo, []string{pushScope(repo)}, http.MethodPut,
			"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(body), int64(len(body)), http.Header{"Content-Type": {mt}})
		if err != nil {
			return err
		}
		defer done()
		defer drain(resp)
		return checkResponse(resp, http.StatusCreated, http.StatusOK, http.StatusAccepted)
	})
}

// HeadBlob reports whether repo holds the blob.
func (c *Client) HeadBlob(ctx context.Context, host, repo, digest string) (bool, error) {
	var ok bool
	err := c.retry(ctx, "HEAD blob", func() error {
		resp, done, err := c.request(ctx, host, repo, []string{pullScope(repo)}, http.MethodHead,
			"/v2/"+repo+"/blobs/"+digest, nil, 0, nil)
		if err != nil {
			return err
		}
		defer done()
		defer drain(resp)
		if resp.StatusCode == http.StatusNotFound {
			ok = false
			return nil
		}
		if err := checkResponse(resp, http.StatusOK); err != nil {
			return err
		}
		ok = true
		return nil
	})
	return ok, err
}

// Mount asks the registry to mount a blob from another repository of the
// same registry. It reports false (and cancels the opened upload) when the
// registry chose not to mount.
func (c *Client) Mount(ctx context.Context, host, repo, digest, from string) (bool, error) {
	var mounted bool
	err := c.retry(ctx, "mount blob", func() error {
		q := url.Values{"mount": {digest}, "from": {from}}
		resp, done, err := c.request(ctx, host, repo, []string{pushScope(repo), pullScope(from)}, http.MethodPost,
			"/v2/"+repo+"/blobs/uploads/?"+q.Encode(), nil, 0, nil)
		if err != nil {
			return err
		}
		loc := resp.Header.Get("Location")
		drain(resp)
		done()
		switch resp.StatusCode {
		case http.StatusCreated:
			mounted = true
			return nil
		case http.StatusAccepted:
			mounted = false
			c.cancelUpload(ctx, host, repo, resp.Request.URL, loc)
			return nil
		}
		return checkResponse(resp)
	})
	return mounted, err
}

func (c *Client) cancelUpload(ctx context.Context, host, repo string, base *url.URL, loc string) {
	u, err := resolveLocation(base, loc)
	if err != nil {
		return
	}
	resp, done, err := c.request(ctx, host, repo, []string{pushScope(repo)}, http.MethodDelete, u.String(), nil, 0, nil)
	if err != nil {
		return
	}
	drain(resp)
	done()
}

func resolveLocation(base *url.URL, loc string) (*url.URL, error) {
	if loc == "" {
		return nil, fmt.Errorf("registry gave no upload Location")
	}
	l, err := url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("bad upload Location %q: %w", loc, err)
	}
	return base.ResolveReference(l), nil
}

// CopyBlob streams one blob from the source repository to the target
// repository (GET, then a monolithic upload of the same stream). It never
// buffers the blob: memory stays flat whatever the layer size. A body that
// ends early or hashes wrong fails the upload and is retried.
func (c *Client) CopyBlob(ctx context.Context, srcHost, srcRepo, dstHost, dstRepo string, d Descriptor) (int64, error) {
	var n int64
	err := c.retry(ctx, "copy blob", func() error {
		var err error
		n, err = c.copyBlobOnce(ctx, srcHost, srcRepo, dstHost, dstRepo, d)
		return err
	})
	return n, err
}

func (c *Client) copyBlobOnce(ctx context.Context, srcHost, srcRepo, dstHost, dstRepo string, d Descriptor) (int64, error) {
	// Open the upload first: a target that refuses should not cost a source read.
	resp, done, err := c.request(ctx, dstHost, dstRepo, []string{pushScope(dstRepo)}, http.MethodPost,
		"/v2/"+dstRepo+"/blobs/uploads/", nil, 0, nil)
	if err != nil {
		return 0, err
	}
	loc := resp.Header.Get("Location")
	base := resp.Request.URL
	drain(resp)
	done()
	if err := checkResponse(resp, http.StatusAccepted); err != nil {
		return 0, err
	}
	up, err := resolveLocation(base, loc)
	if err != nil {
		return 0, err
	}
	get, gdone, err := c.request(ctx, srcHost, srcRepo, []string{pullScope(srcRepo)}, http.MethodGet,
		"/v2/"+srcRepo+"/blobs/"+d.Digest, nil, 0, nil)
	if err != nil {
		c.cancelUploadURL(ctx, dstHost, dstRepo, up)
		return 0, err
	}
	// Release the source's request slot once the headers are in: the stream
	// is bounded by the target's slot held for the upload, and holding two
	// slots at once could deadlock when source and target are one registry.
	gdone()
	defer get.Body.Close()
	if err := checkResponse(get, http.StatusOK); err != nil {
		c.cancelUploadURL(ctx, dstHost, dstRepo, up)
		return 0, fmt.Errorf("reading from the source: %w", err)
	}
	size := d.Size
	if get.ContentLength >= 0 {
		if size > 0 && get.ContentLength != size {
			c.cancelUploadURL(ctx, dstHost, dstRepo, up)
			return 0, fmt.Errorf("blob %s in %s/%s has %d bytes, the manifest says %d", d.Digest, srcHost, srcRepo, get.ContentLength, size)
		}
		size = get.ContentLength
	}
	q := up.Query()
	q.Set("digest", d.Digest)
	up.RawQuery = q.Encode()
	body := &countingReader{r: get.Body, want: size}
	put, pdone, err := c.request(ctx, dstHost, dstRepo, []string{pushScope(dstRepo)}, http.MethodPut,
		up.String(), body, size, http.Header{"Content-Type": {"application/octet-stream"}})
	if err != nil {
		if body.n < size {
			return 0, &truncatedError{fmt.Sprintf("blob %s: source stream ended after %d of %d bytes: %v", d.Digest, body.n, size, err)}
		}
		return 0, err
	}
	defer pdone()
	defer drain(put)
	if err := checkResponse(put, http.StatusCreated, http.StatusNoContent); err != nil {
		if body.n < size {
			return 0, &truncatedError{fmt.Sprintf("blob %s: source stream ended after %d of %d bytes", d.Digest, body.n, size)}
		}
		return 0, fmt.Errorf("writing to the target: %w", err)
	}
	return body.n, nil
}

func (c *Client) cancelUploadURL(ctx context.Context, host, repo string, u *url.URL) {
	c.cancelUpload(ctx, host, repo, u, u.String())
}

type countingReader struct {
	r    io.Reader
	n    int64
	want int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == io.EOF && c.n < c.want {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// ListTags returns every tag of repo, following pagination.
func (c *Client) ListTags(ctx context.Context, host, repo string) ([]string, error) {
	tags, err := c.paginate(ctx, host, repo, []string{pullScope(repo)}, "/v2/"+repo+"/tags/list", "tags", nil)
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s/%s: %w", host, repo, err)
	}
	return tags, nil
}

// Catalog returns every repository of the registry, following pagination.
// progress, when set, is called after each page with the count so far.
func (c *Client) Catalog(ctx context.Context, host string, progress func(n int)) ([]string, error) {
	repos, err := c.paginate(ctx, host, "", []string{catalogScope}, "/v2/_catalog", "repositories", progress)
	if err != nil {
		return nil, fmt.Errorf("listing the catalog of %s: %w", host, err)
	}
	return repos, nil
}

// paginate follows `Link: <...>; rel="next"` (the distribution spec). A
// registry that sends no Link but a full page is asked again with
// `last=<the last entry>`; a page that brings nothing new ends the listing.
func (c *Client) paginate(ctx context.Context, host, repo string, scopes []string, path, field string, progress func(int)) ([]string, error) {
	n := c.o.PageSize
	var all []string
	seen := map[string]bool{}
	next := path + "?n=" + strconv.Itoa(n)
	for next != "" {
		var page map[string]json.RawMessage
		var link string
		err := c.retry(ctx, "list "+field, func() error {
			var err error
			page = nil
			link, err = c.getJSON(ctx, host, repo, scopes, next, &page)
			return err
		})
		if err != nil {
			return nil, err
		}
		var entries []string
		if raw, ok := page[field]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &entries); err != nil {
				return nil, fmt.Errorf("decoding %s: %w", field, err)
			}
		}
		added := 0
		for _, e := range entries {
			if !seen[e] {
				seen[e] = true
				all = append(all, e)
				added++
			}
		}
		if progress != nil {
			progress(len(all))
		}
		switch {
		case added == 0:
			next = ""
		case link != "":
			next = link
		case len(entries) >= n:
			next = path + "?n=" + strconv.Itoa(n) + "&last=" + url.QueryEscape(entries[len(entries)-1])
		default:
			next = ""
		}
	}
	return all, nil
}

// getJSON GETs path and decodes it; it returns the next page from the Link header.
func (c *Client) getJSON(ctx context.Context, host, repo string, scopes []string, path string, v any) (string, error) {
	resp, done, err := c.request(ctx, host, repo, scopes, http.MethodGet, path, nil, 0, nil)
	if err != nil {
		return "", err
	}
	defer done()
	defer resp.Body.Close()
	if err := checkResponse(resp, http.StatusOK); err != nil {
		return "", err
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return "", &truncatedError{fmt.Sprintf("decoding %s: %v", shortURL(resp.Request), err)}
	}
	return nextLink(resp), nil
}

// nextLink parses `Link: </v2/...?n=..&last=..>; rel="next"`.
func nextLink(resp *http.Response) string {
	l := resp.Header.Get("Link")
	if l == "" {
		return ""
	}
	start, end := strings.Index(l, "<"), strings.Index(l, ">")
	if start < 0 || end <= start || !strings.Contains(l[end:], `rel="next"`) {
		return ""
	}
	u, err := url.Parse(l[start+1 : end])
	if err != nil {
		return ""
	}
	next := resp.Request.URL.ResolveReference(u)
	if next.Host == resp.Request.URL.Host {
		return next.RequestURI()
	}
	return next.String()
}

// Referrers returns the referrers index of digest in repo through the OCI
// 1.1 referrers API. ErrUnsupported when the registry has no such API (then
// referrers live under the tag-schema fallback tag, which regmigrate copies
// as a tag). The answer is cached per registry after the first call.
func (c *Client) Referrers(ctx context.Context, host, repo, digest string) ([]Descriptor, error) {
	h, err := c.host(host)
	if err != nil {
		return nil, err
	}
	h.refMu.Lock()
	state := h.referrers
	h.refMu.Unlock()
	if state < 0 {
		return nil, ErrUnsupported
	}
	var idx Manifest
	err = c.retry(ctx, "referrers", func() error {
		_, err := c.getJSON(ctx, host, repo, []string{pullScope(repo)}, "/v2/"+repo+"/referrers/"+digest, &idx)
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
	h.refMu.Lock()
	h.referrers = 1
	h.refMu.Unlock()
	return idx.Manifests, nil
}

// SupportsReferrers reports what the client learned about the registry:
// 1 yes, -1 no, 0 not asked yet.
func (c *Client) SupportsReferrers(host string) int {
	h, err := c.host(host)
	if err != nil {
		return 0
	}
	h.refMu.Lock()
	defer h.refMu.Unlock()
	return h.referrers
}

package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Store is a place images live that is not reached over the distribution
// API: an OCI image layout on disk, an archive. A Client serves the hosts
// attached to a Store (Attach) from it, so that export, mirror, verify and
// backfill treat a layout as they treat a registry: one engine, two
// transports. Repositories and tags are the layout's names
// (org.opencontainers.image.ref.name "ns/repo:tag"); blobs are shared by
// every repository of the store.
type Store interface {
	// Describe names the store for people ("oci:/media/export").
	Describe() string
	// Catalog lists the repositories the store names.
	Catalog(ctx context.Context) ([]string, error)
	// ListTags lists the tags of repo; ErrNotFound when it has none.
	ListTags(ctx context.Context, repo string) ([]string, error)
	// HeadManifest resolves a tag or digest; ErrNotFound when absent.
	HeadManifest(ctx context.Context, repo, ref string) (Descriptor, error)
	// GetManifest returns the exact bytes of a tag or digest and their
	// media type; the bytes are checked against their digest.
	GetManifest(ctx context.Context, repo, ref string) ([]byte, string, error)
	// PutManifest stores the exact bytes under ref (a tag or a digest).
	PutManifest(ctx context.Context, repo, ref, mt string, body []byte) error
	// HasBlob reports whether the store holds the blob, whole.
	HasBlob(ctx context.Context, digest string) (bool, error)
	// OpenBlob opens a blob for reading; ErrNotFound when absent. The
	// caller checks the content against the digest.
	OpenBlob(ctx context.Context, d Descriptor) (io.ReadCloser, int64, error)
	// WriteBlob stores a blob from r, which has been checked against the
	// digest when r ends without error. Nothing is stored under the digest
	// unless the whole content arrived and has that digest.
	WriteBlob(ctx context.Context, d Descriptor, r io.Reader) (int64, error)
	// Referrers lists the manifests whose subject is digest.
	Referrers(ctx context.Context, repo, digest string) ([]Descriptor, error)
	// Where names the file that holds a blob, for error messages.
	Where(digest string) string
}

// Attach makes the client serve host from s instead of over HTTP. host is
// a name that no registry has (e.g. "oci.invalid"), used in references
// the way a registry host is.
func (c *Client) Attach(host string, s Store) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stores == nil {
		c.stores = map[string]Store{}
	}
	c.stores[host] = s
}

// StoreOf returns the store attached to host, or nil for a registry.
func (c *Client) StoreOf(host string) Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stores[host]
}

// copyBlobStore copies a blob when the source, the target or both are
// stores: the source opened (a store's file or a registry's GET), hashed
// on the way, written to the target (a store's file, renamed into place
// once whole and checked, or a registry's monolithic upload).
func (c *Client) copyBlobStore(ctx context.Context, srcHost, srcRepo, dstHost, dstRepo string, d Descriptor, w ByteWatcher) (_ int64, rerr error) {
	src, dst := c.StoreOf(srcHost), c.StoreOf(dstHost)
	var (
		rc   io.ReadCloser
		size = d.Size
	)
	where := srcHost + "/" + srcRepo
	if src != nil {
		var n int64
		var err error
		if rc, n, err = src.OpenBlob(ctx, d); err != nil {
			return 0, err
		}
		where = src.Where(d.Digest)
		if size > 0 && n != size {
			rc.Close()
			return 0, fmt.Errorf("%w: blob %s in %s has %d bytes, the manifest says %d", ErrDigestMismatch, d.Digest, where, n, size)
		}
		size = n
	} else {
		get, err := c.do(ctx, call{host: srcHost, repo: srcRepo, scopes: []string{pullScope(srcRepo)}, method: http.MethodGet,
			path: "/v2/" + srcRepo + "/blobs/" + d.Digest, streamsInto: dst == nil})
		if err != nil {
			return 0, err
		}
		if err := checkResponse(get, http.StatusOK); err != nil {
			get.Body.Close()
			return 0, fmt.Errorf("reading from the source: %w", err)
		}
		if get.ContentLength >= 0 {
			if size > 0 && get.ContentLength != size {
				get.Body.Close()
				return 0, fmt.Errorf("blob %s in %s/%s has %d bytes, the manifest says %d", d.Digest, srcHost, srcRepo, get.ContentLength, size)
			}
			size = get.ContentLength
		}
		rc = get.Body
	}
	defer rc.Close()
	h, err := newHasher(d.Digest)
	if err != nil {
		return 0, err
	}
	body := &verifyingReader{r: rc, h: h, want: d.Digest, size: size, where: where, watch: w}
	if w != nil {
		defer func() {
			if rerr != nil {
				n, _ := body.read()
				w.MovedBytes(-n)
			}
		}()
	}
	if dst != nil {
		n, err := dst.WriteBlob(ctx, d, body)
		read, bodyErr := body.read()
		if bodyErr != nil {
			return 0, bodyErr
		}
		if err == nil {
			if err := body.check(); err != nil {
				return 0, err // WriteBlob read to the end: the check ran already
			}
		}
		if err != nil {
			if read < size && src == nil {
				return 0, &truncatedError{fmt.Sprintf("blob %s: source stream ended after %d of %d bytes: %v", d.Digest, read, size, err)}
			}
			return 0, err
		}
		return n, nil
	}
	// A store to a registry: a monolithic upload of the file's stream.
	up, err := c.openUpload(ctx, dstHost, dstRepo)
	if err != nil {
		return 0, err
	}
	q := up.Query()
	q.Set("digest", d.Digest)
	up.RawQuery = q.Encode()
	put, err := c.do(ctx, call{host: dstHost, repo: dstRepo, scopes: []string{pushScope(dstRepo)}, method: http.MethodPut,
		path: up.String(), stream: body, size: size, hdr: http.Header{"Content-Type": {"application/octet-stream"}}})
	if err := body.check(); err != nil {
		if put != nil {
			drain(put)
		}
		return 0, fmt.Errorf("%w; the upload was abandoned", err)
	}
	if err != nil {
		return 0, err
	}
	defer drain(put)
	if err := checkResponse(put, http.StatusCreated, http.StatusNoContent); err != nil {
		return 0, fmt.Errorf("writing to the target: %w", err)
	}
	sent, _ := body.read()
	return sent, nil
}

// checkStoreBlob reads a store's blob to its end against its digest.
func checkStoreBlob(ctx context.Context, s Store, d Descriptor) (int64, error) {
	rc, n, err := s.OpenBlob(ctx, d)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	where := s.Where(d.Digest)
	if d.Size > 0 && n != d.Size {
		return 0, fmt.Errorf("%w: %s has %d bytes, its manifest says %d", ErrDigestMismatch, where, n, d.Size)
	}
	h, err := newHasher(d.Digest)
	if err != nil {
		return 0, err
	}
	v := &verifyingReader{r: rc, h: h, want: d.Digest, size: n, where: where}
	got, err := io.Copy(io.Discard, v)
	if v.err != nil {
		return got, v.err
	}
	if err != nil {
		return got, fmt.Errorf("reading %s: %w", where, err)
	}
	return got, nil
}

package registry

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// HeadBlob reports whether repo holds the blob.
func (c *Client) HeadBlob(ctx context.Context, host, repo, digest string) (bool, error) {
	if s := c.StoreOf(host); s != nil {
		if err := checkDigest(digest); err != nil {
			return false, err
		}
		return s.HasBlob(ctx, digest)
	}
	if err := checkRepo(repo); err != nil {
		return false, err
	}
	if err := checkDigest(digest); err != nil {
		return false, err
	}
	var ok bool
	err := c.retry(ctx, "HEAD blob", func() error {
		resp, err := c.do(ctx, call{host: host, repo: repo, scopes: []string{pullScope(repo)}, method: http.MethodHead,
			path: "/v2/" + repo + "/blobs/" + digest})
		if err != nil {
			return err
		}
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
	if c.StoreOf(host) != nil {
		return false, nil // a store shares its blobs: HasBlob finds them
	}
	for _, r := range []string{repo, from} {
		if err := checkRepo(r); err != nil {
			return false, err
		}
	}
	if err := checkDigest(digest); err != nil {
		return false, err
	}
	var mounted bool
	err := c.retry(ctx, "mount blob", func() error {
		q := url.Values{"mount": {digest}, "from": {from}}
		resp, err := c.do(ctx, call{host: host, repo: repo, scopes: []string{pushScope(repo), pullScope(from)}, method: http.MethodPost,
			path: "/v2/" + repo + "/blobs/uploads/?" + q.Encode()})
		if err != nil {
			return err
		}
		loc := resp.Header.Get("Location")
		switch resp.StatusCode {
		case http.StatusCreated:
			drain(resp)
			mounted = true
			return nil
		case http.StatusAccepted:
			drain(resp)
			mounted = false
			c.cancelUpload(ctx, host, repo, resp.Request.URL, loc)
			return nil
		}
		defer drain(resp)
		return checkResponse(resp)
	})
	return mounted, err
}

func (c *Client) cancelUpload(ctx context.Context, host, repo string, base *url.URL, loc string) {
	u, err := resolveLocation(base, loc)
	if err != nil {
		return
	}
	resp, err := c.do(ctx, call{host: host, repo: repo, scopes: []string{pushScope(repo)}, method: http.MethodDelete, path: u.String()})
	if err != nil {
		return
	}
	drain(resp)
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
// buffers the blob: memory stays flat whatever the layer size. The stream
// is hashed on the way: a body that ends early is retried; content with
// another digest aborts the upload (the target never completes it) and
// fails for good (ErrInvalidDigest).
func (c *Client) CopyBlob(ctx context.Context, srcHost, srcRepo, dstHost, dstRepo string, d Descriptor) (int64, error) {
	for _, r := range []string{srcRepo, dstRepo} {
		if err := checkRepo(r); err != nil {
			return 0, err
		}
	}
	if err := checkDigest(d.Digest); err != nil {
		return 0, err
	}
	w := byteWatcher(ctx)
	if w != nil && d.Size > 0 {
		w.ExpectBytes(d.Size)
	}
	var n int64
	err := c.retry(ctx, "copy blob", func() error {
		var err error
		if c.StoreOf(srcHost) != nil || c.StoreOf(dstHost) != nil {
			n, err = c.copyBlobStore(ctx, srcHost, srcRepo, dstHost, dstRepo, d, w)
		} else {
			n, err = c.copyBlobOnce(ctx, srcHost, srcRepo, dstHost, dstRepo, d, w)
		}
		return err
	})
	if err != nil && w != nil && d.Size > 0 {
		w.ExpectBytes(-d.Size)
	}
	return n, err
}

// ByteWatcher hears the bytes of blob copies (a progress display); see
// WithByteWatcher. Its methods are called from many goroutines.
type ByteWatcher interface {
	// ExpectBytes: a blob of n bytes is about to be copied; negative: a
	// blob that failed for good will not be.
	ExpectBytes(n int64)
	// MovedBytes: n more bytes went from the source to the target;
	// negative: an attempt failed, and its bytes will be sent again.
	MovedBytes(n int64)
}

type byteWatcherKey struct{}

// WithByteWatcher returns a context whose blob copies (CopyBlob) report
// their bytes to w while they stream.
func WithByteWatcher(ctx context.Context, w ByteWatcher) context.Context {
	return context.WithValue(ctx, byteWatcherKey{}, w)
}

func byteWatcher(ctx context.Context) ByteWatcher {
	w, _ := ctx.Value(byteWatcherKey{}).(ByteWatcher)
	return w
}

func (c *Client) copyBlobOnce(ctx context.Context, srcHost, srcRepo, dstHost, dstRepo string, d Descriptor, w ByteWatcher) (_ int64, rerr error) {
	// Open the upload first: a target that refuses should not cost a source read.
	up, err := c.openUpload(ctx, dstHost, dstRepo)
	if err != nil {
		return 0, err
	}
	get, err := c.do(ctx, call{host: srcHost, repo: srcRepo, scopes: []string{pullScope(srcRepo)}, method: http.MethodGet,
		path: "/v2/" + srcRepo + "/blobs/" + d.Digest, streamsInto: true})
	if err != nil {
		c.cancelUpload(ctx, dstHost, dstRepo, up, up.String())
		return 0, err
	}
	// The source's slot is already free (streamsInto): the stream is
	// bounded by the target's slot that the upload holds.
	defer get.Body.Close()
	if err := checkResponse(get, http.StatusOK); err != nil {
		c.cancelUpload(ctx, dstHost, dstRepo, up, up.String())
		return 0, fmt.Errorf("reading from the source: %w", err)
	}
	size := d.Size
	if get.ContentLength >= 0 {
		if size > 0 && get.ContentLength != size {
			c.cancelUpload(ctx, dstHost, dstRepo, up, up.String())
			return 0, fmt.Errorf("blob %s in %s/%s has %d bytes, the manifest says %d", d.Digest, srcHost, srcRepo, get.ContentLength, size)
		}
		size = get.ContentLength
	}
	h, err := newHasher(d.Digest)
	if err != nil {
		return 0, err
	}
	q := up.Query()
	q.Set("digest", d.Digest)
	up.RawQuery = q.Encode()
	body := &verifyingReader{r: get.Body, h: h, want: d.Digest, size: size, where: srcHost + "/" + srcRepo, watch: w}
	if w != nil {
		defer func() {
			if rerr != nil { // what this attempt sent is sent again, or never
				n, _ := body.read()
				w.MovedBytes(-n)
			}
		}()
	}
	put, err := c.do(ctx, call{host: dstHost, repo: dstRepo, scopes: []string{pushScope(dstRepo)}, method: http.MethodPut,
		path: up.String(), stream: body, size: size, hdr: http.Header{"Content-Type": {"application/octet-stream"}}})
	sent, bodyErr := body.read()
	if bodyErr != nil {
		if put != nil {
			drain(put)
		}
		return 0, fmt.Errorf("%w; the upload was abandoned", bodyErr)
	}
	if err != nil {
		if sent < size {
			return 0, &truncatedError{fmt.Sprintf("blob %s: upload ended after %d of %d bytes: %v", d.Digest, sent, size, err)}
		}
		return 0, err
	}
	defer drain(put)
	if err := checkResponse(put, http.StatusCreated, http.StatusNoContent); err != nil {
		if sent < size {
			return 0, &truncatedError{fmt.Sprintf("blob %s: source stream ended after %d of %d bytes", d.Digest, sent, size)}
		}
		return 0, fmt.Errorf("writing to the target: %w", err)
	}
	return sent, nil
}

// CheckBlob reads a blob of repo to its end and checks it against its
// digest, and its size when d.Size is set, keeping nothing: memory stays
// flat whatever the blob's size. It returns the bytes read. ErrNotFound:
// the repository does not hold the blob. ErrDigestMismatch (final): the
// registry serves other content under that digest (corrupt in its
// storage). A body that ends early or stalls is read again; one that ends
// early on every attempt is ErrIncompleteBlob (final).
func (c *Client) CheckBlob(ctx context.Context, host, repo string, d Descriptor) (int64, error) {
	if s := c.StoreOf(host); s != nil {
		if err := checkDigest(d.Digest); err != nil {
			return 0, err
		}
		return checkStoreBlob(ctx, s, d)
	}
	if err := checkRepo(repo); err != nil {
		return 0, err
	}
	if err := checkDigest(d.Digest); err != nil {
		return 0, err
	}
	var n int64
	short := false // the last attempt's body ended early
	err := c.retry(ctx, "read blob", func() error {
		short = false
		resp, err := c.do(ctx, call{host: host, repo: repo, scopes: []string{pullScope(repo)}, method: http.MethodGet,
			path: "/v2/" + repo + "/blobs/" + d.Digest})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := checkResponse(resp, http.StatusOK); err != nil {
			return err
		}
		size := d.Size
		switch {
		case size <= 0:
			size = resp.ContentLength // -1 when unknown: the digest alone decides
		case resp.ContentLength >= 0 && resp.ContentLength != size:
			// The registry says how much it stores: not what was written.
			return fmt.Errorf("%w: blob %s in %s/%s has %d bytes, its manifest says %d", ErrDigestMismatch, d.Digest, host, repo, resp.ContentLength, size)
		}
		h, err := newHasher(d.Digest)
		if err != nil {
			return err
		}
		v := &verifyingReader{r: resp.Body, h: h, want: d.Digest, size: size, where: host + "/" + repo}
		n, err = io.Copy(io.Discard, v)
		if v.err != nil {
			return v.err
		}
		if err != nil {
			short = errors.Is(err, io.ErrUnexpectedEOF)
			return fmt.Errorf("reading blob %s in %s/%s: %w", d.Digest, host, repo, err)
		}
		return nil
	})
	if short && ctx.Err() == nil {
		return n, fmt.Errorf("%w: blob %s in %s/%s: after %d attempts, the registry still ended it after %d of its %d bytes", ErrIncompleteBlob, d.Digest, host, repo, c.o.RetryAttempts, n, d.Size)
	}
	return n, err
}

// verifyingReader counts and hashes a blob stream. At its end it checks
// length and digest and, when they are wrong, fails the read instead of
// ending it, so the upload it feeds is never completed.
//
// Its state is guarded: net/http may still read a request body in its
// own goroutine after RoundTrip returned (it closes the body when done),
// while the uploader already checks what was read.
type verifyingReader struct {
	r     io.Reader
	want  string
	size  int64
	where string
	watch ByteWatcher // nil: nobody listens

	mu  sync.Mutex
	h   hash.Hash
	n   int64
	err error
}

// read is how many bytes were read, and the error that ended the stream
// (a wrong length or digest), if any.
func (v *verifyingReader) read() (int64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.n, v.err
}

// check checks length and digest of what was read, once the consumer
// stopped reading: an HTTP upload with a Content-Length reads exactly its
// bytes and may never ask for the end of the stream, where Read checks.
func (v *verifyingReader) check() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.err != nil {
		return v.err
	}
	if v.size >= 0 && v.n != v.size {
		return nil // ended early: the caller reports the short stream
	}
	alg, _, _ := strings.Cut(v.want, ":")
	if got := alg + ":" + hex.EncodeToString(v.h.Sum(nil)); got != v.want {
		v.err = fmt.Errorf("%w: blob %s in %s: its content has digest %s", ErrDigestMismatch, v.want, v.where, got)
	}
	return v.err
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if _, err := v.read(); err != nil {
		return 0, err
	}
	n, err := v.r.Read(p)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.n += int64(n)
	v.h.Write(p[:n])
	if v.watch != nil && n > 0 {
		v.watch.MovedBytes(int64(n))
	}
	if v.size >= 0 && v.n > v.size {
		v.err = fmt.Errorf("%w: blob %s in %s is longer than its %d bytes", ErrDigestMismatch, v.want, v.where, v.size)
		return 0, v.err
	}
	if err == io.EOF {
		if v.n < v.size {
			return n, io.ErrUnexpectedEOF
		}
		alg, _, _ := strings.Cut(v.want, ":")
		if got := alg + ":" + hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			v.err = fmt.Errorf("%w: blob %s in %s: its content has digest %s", ErrDigestMismatch, v.want, v.where, got)
			return n, v.err
		}
	}
	return n, err
}

// openUpload opens a blob upload session in repo and returns its URL.
func (c *Client) openUpload(ctx context.Context, host, repo string) (*url.URL, error) {
	resp, err := c.do(ctx, call{host: host, repo: repo, scopes: []string{pushScope(repo)}, method: http.MethodPost,
		path: "/v2/" + repo + "/blobs/uploads/"})
	if err != nil {
		return nil, err
	}
	loc := resp.Header.Get("Location")
	base := resp.Request.URL
	err = checkResponse(resp, http.StatusAccepted)
	drain(resp)
	if err != nil {
		return nil, err
	}
	return resolveLocation(base, loc)
}

package mirror

import (
	"context"
	"sync"

	"github.com/regmigrate/regmigrate/steps/registry"
)

// Blobs remembers, for a whole run, which target repositories hold which
// blobs and which blob uploads are under way. Shards that run in one process
// share it, so each unique blob is read from the source once and mounted
// everywhere else, and the same blob is never uploaded twice at once (the
// distribution registry can answer 500 to concurrent writes of one blob).
type Blobs struct {
	mu       sync.Mutex
	present  map[string]struct{} // host/repo@digest known present
	homes    map[string]string   // host@digest -> a repo that holds it
	inflight map[string]*blobJob // host@digest -> the transfer under way
	forced   map[string]struct{} // host/repo@digest uploaded again by a repair in this run
}

type blobJob struct {
	done chan struct{}
	err  error
}

// NewBlobs returns an empty tracker.
func NewBlobs() *Blobs {
	return &Blobs{present: map[string]struct{}{}, homes: map[string]string{}, inflight: map[string]*blobJob{}, forced: map[string]struct{}{}}
}

// UploadWithoutAsking is the size up to which a blob the run knows nothing
// of is uploaded without asking the target first whether it has it: an
// image's config and small layers are nearly always new where the tag is
// new, and sending one costs the same two requests (open, put) that asking
// and then sending would cost three of; when the target had it after all,
// the price is these bytes and one request more. Across data centres, the
// saved request per blob is most of a tag-heavy copy's cost
// (BenchmarkFarAway in tests/e2e).
const UploadWithoutAsking = 64 << 10

// blob actions, counted in results.
type blobAction int

const (
	blobPresent blobAction = iota
	blobMounted
	blobUploaded
)

// Has reports whether the registry confirmed, during this run, that the
// repository holds the blob (upload, mount or HEAD).
func (b *Blobs) Has(host, repo, digest string) bool { return b.isPresent(host, repo, digest) }

func (b *Blobs) isPresent(host, repo, digest string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.present[host+"/"+repo+"@"+digest]
	return ok
}

// ensure makes dstRepo on dstHost hold the blob: already there, mounted
// from a repository known to hold it, or streamed from the source once.
// force uploads it again, once per run and repository, whatever the target
// or this run know of it (a repair of a blob the target holds corrupt).
func (b *Blobs) ensure(ctx context.Context, c *registry.Client, srcHost, srcRepo, dstHost, dstRepo string, d registry.Descriptor, force bool) (blobAction, int64, error) {
	gk := dstHost + "@" + d.Digest
	key := dstHost + "/" + dstRepo + "@" + d.Digest
	for {
		b.mu.Lock()
		_, done := b.forced[key]
		again := force && !done
		if _, ok := b.present[key]; ok && !again {
			b.mu.Unlock()
			return blobPresent, 0, nil
		}
		job, busy := b.inflight[gk]
		if busy {
			b.mu.Unlock()
			select {
			case <-job.done:
			case <-ctx.Done():
				return 0, 0, ctx.Err()
			}
			continue // the blob has a home now (or the transfer failed: try ourselves)
		}
		job = &blobJob{done: make(chan struct{})}
		b.inflight[gk] = job
		if again {
			b.forced[key] = struct{}{}
		}
		home := b.homes[gk]
		b.mu.Unlock()
		act, n, err := b.transfer(ctx, c, srcHost, srcRepo, dstHost, dstRepo, home, d, again)
		b.mu.Lock()
		job.err = err
		delete(b.inflight, gk)
		if err == nil {
			b.present[key] = struct{}{}
			b.homes[gk] = dstRepo
		} else if again {
			delete(b.forced, key)
		}
		b.mu.Unlock()
		close(job.done)
		return act, n, err
	}
}

func (b *Blobs) transfer(ctx context.Context, c *registry.Client, srcHost, srcRepo, dstHost, dstRepo, home string, d registry.Descriptor, force bool) (blobAction, int64, error) {
	if force {
		n, err := c.CopyBlob(ctx, srcHost, srcRepo, dstHost, dstRepo, d)
		if err != nil {
			return 0, 0, err
		}
		return blobUploaded, n, nil
	}
	if home != "" && home != dstRepo {
		if ok, err := c.Mount(ctx, dstHost, dstRepo, d.Digest, home); err == nil && ok {
			return blobMounted, 0, nil
		}
	}
	if d.Size > 0 && d.Size <= UploadWithoutAsking {
		n, err := c.CopyBlob(ctx, srcHost, srcRepo, dstHost, dstRepo, d)
		if err != nil {
			return 0, 0, err
		}
		return blobUploaded, n, nil
	}
	ok, err := c.HeadBlob(ctx, dstHost, dstRepo, d.Digest)
	if err != nil {
		return 0, 0, err
	}
	if ok {
		return blobPresent, 0, nil
	}
	n, err := c.CopyBlob(ctx, srcHost, srcRepo, dstHost, dstRepo, d)
	if err != nil {
		return 0, 0, err
	}
	return blobUploaded, n, nil
}

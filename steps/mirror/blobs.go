package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"

	"github.com/regmigrate/regmigrate/steps/registry"
)

// Blobs remembers, for a whole run, which target repositories hold which
// blobs and which blob uploads are under way. Shards that run in one process
// share it, so each unique blob is read from the source once and mounted
// everywhere else, and the same blob is never uploaded twice at once (the
// distribution registry can answer 500 to concurrent writes of one blob).
//
// It holds an entry per blob and target repository for the whole run, so
// its keys are compact: a digest as 32 bytes, registries and repositories
// as numbers (48 bytes a key, where "host/repo@sha256:..." strings took
// about 100 more; 30,000 entries on the 10,000 tags of the bench's W2).
type Blobs struct {
	mu       sync.Mutex
	present  map[repoBlob]struct{} // known present
	homes    map[hostBlob]uint32   // -> a repository that holds it
	inflight map[hostBlob]*blobJob // -> the transfer under way
	forced   map[repoBlob]struct{} // uploaded again by a repair in this run
	ids      map[string]uint32     // registry and repository names -> number
	names    []string              // number -> name
}

// hostBlob is a blob on a registry; repoBlob, in one of its repositories.
type (
	hostBlob struct {
		sum  [32]byte
		host uint32
	}
	repoBlob struct {
		hostBlob
		repo uint32
	}
)

// keys returns the keys of digest on host and in repo. b.mu is held.
func (b *Blobs) keys(host, repo, digest string) (hostBlob, repoBlob) {
	hb := hostBlob{sum: digestSum(digest), host: b.id(host)}
	return hb, repoBlob{hb, b.id(repo)}
}

// id numbers a name. b.mu is held.
func (b *Blobs) id(name string) uint32 {
	if n, ok := b.ids[name]; ok {
		return n
	}
	n := uint32(len(b.names))
	b.ids[name] = n
	b.names = append(b.names, name)
	return n
}

// digestSum is a sha256 digest's 32 bytes, or for any other digest (sha512,
// a malformed one) the sha256 of its text: a distinct key either way.
func digestSum(digest string) [32]byte {
	var sum [32]byte
	if hexPart, ok := strings.CutPrefix(digest, "sha256:"); ok && len(hexPart) == 64 && strings.ToLower(hexPart) == hexPart {
		if _, err := hex.Decode(sum[:], []byte(hexPart)); err == nil {
			return sum
		}
	}
	return sha256.Sum256([]byte(digest))
}

type blobJob struct {
	done chan struct{}
	err  error
}

// NewBlobs returns an empty tracker.
func NewBlobs() *Blobs {
	return &Blobs{present: map[repoBlob]struct{}{}, homes: map[hostBlob]uint32{}, inflight: map[hostBlob]*blobJob{}, forced: map[repoBlob]struct{}{},
		ids: map[string]uint32{}}
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
	_, key := b.keys(host, repo, digest)
	_, ok := b.present[key]
	return ok
}

// ensure makes dstRepo on dstHost hold the blob: already there, mounted
// from a repository known to hold it, or streamed from the source once.
// force uploads it again, once per run and repository, whatever the target
// or this run know of it (a repair of a blob the target holds corrupt).
func (b *Blobs) ensure(ctx context.Context, c *registry.Client, srcHost, srcRepo, dstHost, dstRepo string, d registry.Descriptor, force bool) (blobAction, int64, error) {
	b.mu.Lock()
	gk, key := b.keys(dstHost, dstRepo, d.Digest)
	b.mu.Unlock()
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
		var home string
		if h, ok := b.homes[gk]; ok {
			home = b.names[h]
		}
		b.mu.Unlock()
		act, n, err := b.transfer(ctx, c, srcHost, srcRepo, dstHost, dstRepo, home, d, again)
		b.mu.Lock()
		job.err = err
		delete(b.inflight, gk)
		if err == nil {
			b.present[key] = struct{}{}
			b.homes[gk] = key.repo
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

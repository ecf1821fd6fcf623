package registry

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/regmigrate/regmigrate/steps/imageref"
)

// ErrInvalidName: a repository, tag or digest that the distribution spec's
// grammar does not allow. It never reaches a request path.
var ErrInvalidName = errors.New("invalid name")

// ErrInvalidDigest: a registry sent a digest that is not well formed, or
// content that does not match its digest. Final: a retry reads the same.
var ErrInvalidDigest = errors.New("invalid digest")

// ErrDigestMismatch: content (a blob, a manifest) that does not have the
// digest it was asked by: corrupt in the registry's storage, or altered on
// the way. It is an ErrInvalidDigest, and final: a retry reads the same.
var ErrDigestMismatch error = digestMismatch{}

type digestMismatch struct{}

func (digestMismatch) Error() string        { return "digest mismatch" }
func (digestMismatch) Is(target error) bool { return target == ErrInvalidDigest }

// ErrIncompleteBlob: a registry that, on every attempt, ended a blob's
// body before its end (the distribution registry does so, with 200 OK,
// for a blob whose data left its storage while its blob descriptor cache
// still knows it). Final: the blob must be uploaded again.
var ErrIncompleteBlob = errors.New("blob served incomplete")

func validHost(host string) bool { return imageref.ValidHost(host) }

// checkRepo refuses a repository name outside the grammar.
func checkRepo(repo string) error {
	if !imageref.ValidRepository(repo) {
		return fmt.Errorf("%w: repository %q is not allowed by the distribution spec (lowercase letters, digits, . _ - separators, '/'-separated)", ErrInvalidName, repo)
	}
	return nil
}

// checkRef refuses a manifest reference that is neither a tag nor a digest.
func checkRef(repo, ref string) error {
	if err := checkRepo(repo); err != nil {
		return err
	}
	if imageref.ValidTag(ref) || imageref.ValidDigest(ref) {
		return nil
	}
	if strings.Contains(ref, ":") {
		return fmt.Errorf("%w: %q in %s is not a valid digest (want sha256:<64 hex> or sha512:<128 hex>)", ErrInvalidName, ref, repo)
	}
	return fmt.Errorf("%w: tag %q in %s is not allowed by the distribution spec ([A-Za-z0-9_.-], at most 128, not starting with . or -)", ErrInvalidName, ref, repo)
}

// checkDigest refuses a digest string outside the registered algorithms.
func checkDigest(d string) error {
	if !imageref.ValidDigest(d) {
		return fmt.Errorf("%w: %q (want sha256:<64 hex> or sha512:<128 hex>)", ErrInvalidDigest, d)
	}
	return nil
}

// Digest of bytes, as sha256:hex.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// newHasher returns a hash for the digest's algorithm.
func newHasher(digest string) (hash.Hash, error) {
	switch {
	case strings.HasPrefix(digest, "sha256:"):
		return sha256.New(), nil
	case strings.HasPrefix(digest, "sha512:"):
		return sha512.New(), nil
	}
	return nil, checkDigest(digest)
}

// DigestAs digests b with the algorithm of want (sha256 or sha512).
func DigestAs(want string, b []byte) (string, error) {
	h, err := newHasher(want)
	if err != nil {
		return "", err
	}
	h.Write(b)
	alg, _, _ := strings.Cut(want, ":")
	return alg + ":" + hex.EncodeToString(h.Sum(nil)), nil
}

// Matches reports whether b has the digest want (sha256 or sha512).
func Matches(want string, b []byte) bool {
	got, err := DigestAs(want, b)
	return err == nil && got == want
}

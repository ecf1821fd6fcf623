package mirror

import (
	"strings"
	"testing"
)

// The tracker's compact keys keep apart what must stay apart: registries,
// repositories, and digests of every algorithm, whatever their length.
func TestBlobKeysKeepBlobsApart(t *testing.T) {
	b := NewBlobs()
	sha256a := "sha256:" + strings.Repeat("ab", 32)
	sha256b := "sha256:" + strings.Repeat("ab", 31) + "ac"
	sha512a := "sha512:" + strings.Repeat("ab", 64)
	odd := "sha256:" + strings.Repeat("AB", 32) // not a canonical digest: keyed by its text
	mark := func(host, repo, d string) {
		b.mu.Lock()
		_, k := b.keys(host, repo, d)
		b.present[k] = struct{}{}
		b.mu.Unlock()
	}
	mark("r1", "ns/a", sha256a)
	mark("r1", "ns/a", sha512a)
	mark("r2", "ns/b", odd)
	for _, tc := range []struct {
		host, repo, digest string
		want               bool
	}{
		{"r1", "ns/a", sha256a, true},
		{"r1", "ns/a", sha512a, true},
		{"r2", "ns/b", odd, true},
		{"r1", "ns/a", sha256b, false},                 // another digest
		{"r1", "ns/b", sha256a, false},                 // another repository
		{"r2", "ns/a", sha256a, false},                 // another registry
		{"r2", "ns/b", strings.ToLower(odd), false},    // its canonical form was never marked there
		{"r1", "ns/a", "sha512:" + sha256a[7:], false}, // same hex, other algorithm
		{"ns/a", "r1", sha256a, false},                 // names are not interchangeable between fields
	} {
		if got := b.Has(tc.host, tc.repo, tc.digest); got != tc.want {
			t.Errorf("Has(%s, %s, %s) = %v, want %v", tc.host, tc.repo, tc.digest, got, tc.want)
		}
	}
}

package e2e

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/generator/runner"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/inputs"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// What a migration costs in requests, counted by kind on both sides through
// proxies in front of two real registries. Across data centres each request
// costs a round trip, so these counts are the speed of a tag-heavy
// migration; they are exact for this corpus, so a change that adds requests
// shows here.
func TestRequestsPerTag(t *testing.T) {
	t.Parallel()
	srcReg, dstReg := regtest.StartDistribution(t, regtest.Options{}), regtest.StartDistribution(t, regtest.Options{})
	seeded, err := regtest.Seed(context.Background(), srcReg.Host, nil,
		regtest.Corpus{Namespaces: []string{"a", "b"}, ReposPerNS: 2, TagsPerRepo: 3, LayerSize: 2 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for r := range seeded.Tags {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	// The blobs each target repository must end up holding.
	repoBlobs := map[string]map[string]bool{}
	for _, r := range refs {
		ref, err := name.ParseReference(srcReg.Host+"/"+r, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(ref)
		if err != nil {
			t.Fatal(err)
		}
		repo, _, _ := strings.Cut(r, ":")
		if repoBlobs[repo] == nil {
			repoBlobs[repo] = map[string]bool{}
		}
		cfg, err := img.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		repoBlobs[repo][cfg.String()] = true
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				t.Fatal(err)
			}
			repoBlobs[repo][d.String()] = true
		}
	}
	blobs := 0
	for _, b := range repoBlobs {
		blobs += len(b)
	}
	tags, repos := len(refs), len(repoBlobs)

	src, dst := faultproxy.New(t, "http://"+srcReg.Host), faultproxy.New(t, "http://"+dstReg.Host)
	migrate := func(out string) {
		t.Helper()
		var entries []inputs.Entry
		for _, r := range refs {
			ref, err := imageref.Parse(r)
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, inputs.Entry{Source: ref})
		}
		rep, err := runner.Run(context.Background(), runner.Options{
			Client: registry.New(registry.Options{Insecure: anyHost}),
			Export: export.Options{From: imageref.Location{Registry: src.Host}, To: imageref.Location{Registry: dst.Host}, Entries: entries},
			Out:    out,
		})
		if err != nil || rep.Failed != 0 || !rep.Verified {
			t.Fatalf("migration: %v (%d failed, verified %v)", err, rep.Failed, rep.Verified)
		}
	}

	migrate(filepath.Join(t.TempDir(), "run"))
	s, d := src.Stats().ByKind, dst.Stats().ByKind
	t.Logf("cold copy of %d tags (%d blobs in %d repositories): source %v; target %v", tags, blobs, repos, s, d)
	want := map[string]int{
		// Every tag read once by tag (the target lacks it: one GET
		// resolves and reads it, no HEAD first); every blob read once (a
		// blob shared between repositories is mounted, not read again);
		// one tag list per repository, for tag-schema signatures.
		faultproxy.KindManifestHead: 0, faultproxy.KindManifestGet: tags,
		faultproxy.KindTagList: repos,
		// Whether the source has the referrers API, asked once.
		faultproxy.KindReferrers: 1,
	}
	for k, n := range want {
		if s[k] != n {
			t.Errorf("source %s: %d requests, want %d", k, s[k], n)
		}
	}
	if s[faultproxy.KindBlobGet] > blobs {
		t.Errorf("source blob reads: %d for %d blobs", s[faultproxy.KindBlobGet], blobs)
	}
	// The target: each tag asked for by the copy (HEAD), its manifest
	// written once and read back once by tag by the verification (which
	// checks the digest of what the tag serves); small blobs are sent
	// without asking first (no blob HEAD), each with one upload (open,
	// put) or one mount.
	for k, n := range map[string]int{
		faultproxy.KindManifestHead: tags, faultproxy.KindManifestPut: tags, faultproxy.KindManifestGet: tags,
		faultproxy.KindBlobHead: 0, faultproxy.KindOther: 0,
	} {
		if d[k] != n {
			t.Errorf("target %s: %d requests, want %d", k, d[k], n)
		}
	}
	if got := d[faultproxy.KindUploadStart] + d[faultproxy.KindMount]; got != blobs {
		t.Errorf("target uploads opened and mounts: %d, want one per blob and repository, %d", got, blobs)
	}
	if d[faultproxy.KindUploadData] != d[faultproxy.KindUploadStart] {
		t.Errorf("target upload PATCH/PUTs: %d for %d uploads (one PUT each)", d[faultproxy.KindUploadData], d[faultproxy.KindUploadStart])
	}

	// A new run with nothing changed (a delta sync, planned afresh) asks
	// each side for each tag once, the source for its tag lists, and
	// nothing else; the source is asked whether its tag still names the
	// digest the target has, and distribution answers 304 without reading
	// the manifest.
	src.ResetStats()
	dst.ResetStats()
	migrate(filepath.Join(t.TempDir(), "delta"))
	s, d = src.Stats().ByKind, dst.Stats().ByKind
	t.Logf("no-op rerun: source %v; target %v", s, d)
	delete(s, faultproxy.KindPing)
	delete(d, faultproxy.KindPing)
	for side, got := range map[string]map[string]int{"source": s, "target": d} {
		want := map[string]int{faultproxy.KindManifestHead: tags}
		if side == "source" {
			want[faultproxy.KindTagList] = repos
			want[faultproxy.KindReferrers] = 1
		}
		for k, n := range got {
			if n != want[k] {
				t.Errorf("no-op rerun, %s %s: %d requests, want %d", side, k, n, want[k])
			}
		}
	}
	if got := src.Stats().NotModified[faultproxy.KindManifestHead]; got != tags {
		t.Errorf("no-op rerun: the source answered %d of %d manifest HEADs 304 Not Modified, want all (If-None-Match with the target's digest)", got, tags)
	}
}

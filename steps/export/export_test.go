package export_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/inputs"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// dstHost is the target registry of tests that only export: export never
// contacts the target, so it need not exist.
const dstHost = "registry-v2.example:5000"

// recorder is a base transport that notes the request URIs the client sends
// (to prove that listings were paged), then passes them on.
type recorder struct {
	mu   sync.Mutex
	uris []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.uris = append(r.uris, req.URL.RequestURI())
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// requests returns the recorded requests to path, with their query.
func (r *recorder) requests(path string) []url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []url.Values
	for _, s := range r.uris {
		u, err := url.Parse(s)
		if err == nil && u.Path == path {
			out = append(out, u.Query())
		}
	}
	return out
}

// newClient is the client as the brief builds it, with an optional page
// size and request recorder.
func newClient(pageSize int, rec *recorder) *registry.Client {
	o := registry.Options{PageSize: pageSize, Insecure: func(string) bool { return true }}
	if rec != nil {
		o.Transport = rec
	}
	return registry.New(o)
}

// pushAll pushes a small random image to every "repo:tag" of refs (each
// its own image, so each tag has its own digest) and returns the digests.
func pushAll(t *testing.T, reg *regtest.Registry, refs ...string) map[string]string {
	t.Helper()
	digests := make(map[string]string, len(refs))
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(4)
	for _, r := range refs {
		g.Go(func() error {
			img, err := random.Image(64, 1)
			if err != nil {
				return err
			}
			ref, err := name.ParseReference(reg.Host+"/"+r, name.Insecure)
			if err != nil {
				return err
			}
			if err := remote.Write(ref, img, reg.RemoteOptions()...); err != nil {
				return fmt.Errorf("push %s: %w", ref, err)
			}
			d, err := img.Digest()
			if err != nil {
				return err
			}
			mu.Lock()
			digests[r] = d.String()
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("seeding %s: %v", reg.Host, err)
	}
	return digests
}

// tagsOf returns "repo:tag" for every tag of repo.
func tagsOf(repo string, tags ...string) []string {
	out := make([]string, 0, len(tags))
	for _, tag := range tags {
		out = append(out, repo+":"+tag)
	}
	return out
}

// attachment tags: cosign's signature, attestation and SBOM tags and the
// OCI referrers fallback tag of some digest.
var (
	hex64        = strings.Repeat("ab", 32)
	sigTag       = "sha256-" + hex64 + ".sig"
	attTag       = "sha256-" + hex64 + ".att"
	sbomTag      = "sha256-" + hex64 + ".sbom"
	referrersTag = "sha256-" + hex64
	// notAttachment looks like one but has no 64-hex digest: an image.
	notAttachment = "sha256-abc.sig"
)

// run runs export and fails the test on error.
func run(t *testing.T, o export.Options) export.Result {
	t.Helper()
	res, err := export.Run(context.Background(), o)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	return res
}

// mapping summarizes items as source (registry-relative, with tag) -> target.
func mapping(items []artifacts.Item) map[string]string {
	m := map[string]string{}
	for _, it := range items {
		src := it.Source.WithoutDigest()
		src.Registry = ""
		m[src.String()] = it.Target.String()
	}
	return m
}

// sources returns the registry-relative "repo:tag" of the items, sorted.
func sources(items []artifacts.Item) []string {
	var out []string
	for _, it := range items {
		src := it.Source.WithoutDigest()
		src.Registry = ""
		out = append(out, src.String())
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkOnce fails unless got holds every element of want exactly once and
// nothing else.
func checkOnce(t *testing.T, what string, got, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	for _, w := range want {
		if count[w] != 1 {
			t.Errorf("%s: %q found %d times, want once", what, w, count[w])
		}
		delete(count, w)
	}
	for g, n := range count {
		t.Errorf("%s: unexpected %q (%d times)", what, g, n)
	}
}

func TestCatalogPaginationOnDistribution(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	manyTags := []string{"1.0", "1.1", "2.0", "latest", "v1", "v2", "v3"}
	refs := []string{"busybox:latest", "ns1/app:v1", "ns1/web:v1", "ns2/app:v1", "ns2/deep/tool:v1", "ns3/app:v1", "ns3/app:v2"}
	refs = append(refs, tagsOf("many/tags", manyTags...)...)
	seeded := pushAll(t, src, refs...)
	repos := []string{"busybox", "many/tags", "ns1/app", "ns1/web", "ns2/app", "ns2/deep/tool", "ns3/app"}

	rec := &recorder{}
	c := newClient(2, rec)
	ctx := context.Background()

	gotRepos, err := c.Catalog(ctx, src.Host, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkOnce(t, "catalog", gotRepos, repos)
	pages := rec.requests("/v2/_catalog")
	if want := (len(repos) + 1) / 2; len(pages) < want {
		t.Errorf("catalog read in %d requests, want at least %d pages of 2", len(pages), want)
	}
	for _, q := range pages {
		if q.Get("n") != "2" {
			t.Errorf("catalog request with n=%q, want the page size 2", q.Get("n"))
		}
	}

	gotTags, err := c.ListTags(ctx, src.Host, "many/tags")
	if err != nil {
		t.Fatal(err)
	}
	checkOnce(t, "tags of many/tags", gotTags, manyTags)
	for _, q := range rec.requests("/v2/many/tags/tags/list") {
		if q.Get("n") != "2" {
			t.Errorf("tag list request with n=%q, want the page size 2", q.Get("n"))
		}
	}

	// Export: every repository and tag exactly once, resolved to the
	// digest that was pushed, mapped to the same path on the target.
	res := run(t, export.Options{
		Client: c,
		From:   imageref.Location{Registry: src.Host},
		To:     imageref.Location{Registry: dstHost},
		Jobs:   3,
	})
	checkOnce(t, "export", sources(res.Items), sortedKeys(seeded))
	for _, it := range res.Items {
		src := it.Source.WithoutDigest()
		src.Registry = ""
		if want := seeded[src.String()]; it.Source.Digest != want || it.Error != "" {
			t.Errorf("%s: digest %q (error %q), want %s", src, it.Source.Digest, it.Error, want)
		}
		if want := dstHost + "/" + src.String(); it.Target.String() != want {
			t.Errorf("%s: target %s, want %s", src, it.Target, want)
		}
	}
	if len(res.Errors) > 0 {
		t.Errorf("export errors: %v", res.Errors)
	}
	if s := res.Summary(); s.Total != len(seeded) || s.Resolved != len(seeded) || s.Unresolved != 0 {
		t.Errorf("summary %+v, want %d resolved", s, len(seeded))
	}
}

// go-containerregistry's registry pages tags with n and last but sends no
// Link header: the client must go on with last=.
func TestTagPaginationWithoutLinkHeader(t *testing.T) {
	t.Parallel()
	src := regtest.StartInProcess(t)
	manyTags := []string{"a", "b", "c", "d", "e", "f", "g"}
	// Its catalog ignores last= (and n orders nothing): two repositories
	// fit the page, which keeps the catalog answer whole.
	refs := append(tagsOf("one/app", manyTags...), "two/app:v1")
	seeded := pushAll(t, src, refs...)

	rec := &recorder{}
	c := newClient(2, rec)
	tags, err := c.ListTags(context.Background(), src.Host, "one/app")
	if err != nil {
		t.Fatal(err)
	}
	checkOnce(t, "tags of one/app", tags, manyTags)
	reqs := rec.requests("/v2/one/app/tags/list")
	if len(reqs) < 4 {
		t.Errorf("tags read in %d requests, want at least 4 pages of 2", len(reqs))
	}
	var lasts []string
	for _, q := range reqs {
		if q.Has("last") {
			lasts = append(lasts, q.Get("last"))
		}
	}
	if !slices.Equal(lasts[:min(3, len(lasts))], []string{"b", "d", "f"}) {
		t.Errorf("last= of the follow-up requests: %q, want b, d, f (the last tag of each full page)", lasts)
	}

	// A loopback registry needs no Insecure: go-containerregistry's ping
	// tries https, then plain http for loopback hosts.
	res := run(t, export.Options{
		Client: registry.New(registry.Options{Insecure: anyHost, PageSize: 2}),
		From:   imageref.Location{Registry: src.Host},
		To:     imageref.Location{Registry: dstHost},
	})
	checkOnce(t, "export", sources(res.Items), sortedKeys(seeded))
	for _, it := range res.Items {
		src := it.Source.WithoutDigest()
		src.Registry = ""
		if it.Source.Digest != seeded[src.String()] {
			t.Errorf("%s: digest %q, want %s", src, it.Source.Digest, seeded[src.String()])
		}
	}
}

func TestNamespaceMappingAndExplicitTargets(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	pushAll(t, src,
		"old/team/app:v1", "old/team/app:v2", "old/team/sub/lib:1.0",
		"old/teamx/app:v1", // shares the namespace's prefix, not the namespace
		"old/app:v1", "other/app:v1", "other/app:v2",
	)
	c := newClient(2, nil)
	from := imageref.Location{Registry: src.Host, Namespace: "old/team"}

	tests := []struct {
		name    string
		from    imageref.Location
		to      imageref.Location
		entries []inputs.Entry
		want    map[string]string // source "repo:tag" -> target
		errs    []string          // parts of res.Errors, one each
	}{
		{
			name: "namespace to namespace, catalog",
			from: from,
			to:   imageref.Location{Registry: dstHost, Namespace: "new/platform"},
			want: map[string]string{
				"old/team/app:v1":      dstHost + "/new/platform/app:v1",
				"old/team/app:v2":      dstHost + "/new/platform/app:v2",
				"old/team/sub/lib:1.0": dstHost + "/new/platform/sub/lib:1.0",
			},
		},
		{
			name: "namespace to registry root keeps the path",
			from: from,
			to:   imageref.Location{Registry: dstHost},
			want: map[string]string{
				"old/team/app:v1":      dstHost + "/old/team/app:v1",
				"old/team/app:v2":      dstHost + "/old/team/app:v2",
				"old/team/sub/lib:1.0": dstHost + "/old/team/sub/lib:1.0",
			},
		},
		{
			name: "registry root to namespace prefixes every path",
			from: imageref.Location{Registry: src.Host},
			to:   imageref.Location{Registry: dstHost, Namespace: "mirror"},
			want: map[string]string{
				"old/team/app:v1":      dstHost + "/mirror/old/team/app:v1",
				"old/team/app:v2":      dstHost + "/mirror/old/team/app:v2",
				"old/team/sub/lib:1.0": dstHost + "/mirror/old/team/sub/lib:1.0",
				"old/teamx/app:v1":     dstHost + "/mirror/old/teamx/app:v1",
				"old/app:v1":           dstHost + "/mirror/old/app:v1",
				"other/app:v1":         dstHost + "/mirror/other/app:v1",
				"other/app:v2":         dstHost + "/mirror/other/app:v2",
			},
		},
		{
			name: "explicit targets from mapping entries",
			from: from,
			to:   imageref.Location{Registry: dstHost, Namespace: "new/platform"},
			entries: []inputs.Entry{
				// DST without registry and tag: the --to registry, the source tag.
				{Source: imageref.Ref{Repository: "old/team/app", Tag: "v1"}, Target: imageref.Ref{Repository: "renamed/app"}},
				// Every tag to another repository.
				{Source: imageref.Ref{Repository: "other/app"}, Target: imageref.Ref{Repository: "apps/other"}, AllTags: true},
				// A full DST with another registry and tag.
				{Source: imageref.Ref{Registry: src.Host, Repository: "old/app", Tag: "v1"}, Target: imageref.Ref{Registry: "elsewhere.example", Repository: "z/app", Tag: "prod"}},
				// No explicit target: the namespace mapping.
				{Source: imageref.Ref{Repository: "old/team/sub/lib", Tag: "1.0"}},
				// A second source for a target already taken: the first wins, and it is said.
				{Source: imageref.Ref{Repository: "old/team/app", Tag: "v2"}, Target: imageref.Ref{Repository: "renamed/app", Tag: "v1"}},
			},
			want: map[string]string{
				"old/team/app:v1":      dstHost + "/renamed/app:v1",
				"other/app:v1":         dstHost + "/apps/other:v1",
				"other/app:v2":         dstHost + "/apps/other:v2",
				"old/app:v1":           "elsewhere.example/z/app:prod",
				"old/team/sub/lib:1.0": dstHost + "/new/platform/sub/lib:1.0",
			},
			errs: []string{"/old/team/app:v1 and " + src.Host + "/old/team/app:v2 both map to " + dstHost + "/renamed/app:v1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, export.Options{Client: c, From: tc.from, To: tc.to, Entries: tc.entries})
			got := mapping(res.Items)
			for _, k := range sortedKeys(tc.want) {
				if got[k] != tc.want[k] {
					t.Errorf("%s -> %q, want %s", k, got[k], tc.want[k])
				}
			}
			for _, k := range sortedKeys(got) {
				if _, ok := tc.want[k]; !ok {
					t.Errorf("%s -> %s is in scope, want it left out", k, got[k])
				}
			}
			for _, it := range res.Items {
				if it.Source.Registry != src.Host {
					t.Errorf("%s: source registry %q, want %s", it.Source, it.Source.Registry, src.Host)
				}
				if it.Source.Digest == "" || it.Error != "" {
					t.Errorf("%s not resolved: %s", it.Source, it.Error)
				}
			}
			if len(res.Errors) != len(tc.errs) {
				t.Errorf("errors %q, want %d", res.Errors, len(tc.errs))
			}
			for i, e := range tc.errs {
				if i < len(res.Errors) && !strings.Contains(res.Errors[i], e) {
					t.Errorf("error %q, want it to name %s", res.Errors[i], e)
				}
			}
			if res.Plan.Source != tc.from.String() || res.Plan.Target != tc.to.String() {
				t.Errorf("plan source %q target %q, want %q %q", res.Plan.Source, res.Plan.Target, tc.from, tc.to)
			}
		})
	}
}

func TestFilters(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	var refs []string
	for _, repo := range []string{"team-a/app0", "team-a/app1", "team-b/app0", "team-b/web", "tmp/scratch", "busybox"} {
		refs = append(refs, tagsOf(repo, "v1.0", "v1.1", "latest", "dev-123")...)
	}
	// Attachments of team-a/app0 travel with their image (mirror), they are
	// never images of their own in catalog mode.
	refs = append(refs, tagsOf("team-a/app0", sigTag, attTag, sbomTag, referrersTag, notAttachment)...)
	pushAll(t, src, refs...)
	c := newClient(0, nil)

	// every lists repo:tag for the repositories and tags given (default:
	// the four tags of every repository), plus more.
	every := func(repos []string, tags []string, more ...string) []string {
		if tags == nil {
			tags = []string{"v1.0", "v1.1", "latest", "dev-123"}
		}
		var out []string
		for _, r := range repos {
			out = append(out, tagsOf(r, tags...)...)
		}
		return append(out, more...)
	}
	all := []string{"busybox", "team-a/app0", "team-a/app1", "team-b/app0", "team-b/web", "tmp/scratch"}
	odd := "team-a/app0:" + notAttachment // an image whose tag only looks like an attachment

	tests := []struct {
		name    string
		filter  inputs.FilterOptions
		entries []inputs.Entry
		want    []string
	}{
		{name: "no filter", want: every(all, nil, odd)},
		{name: "include namespace", filter: inputs.FilterOptions{IncludeNamespaces: []string{"team-a"}}, want: every([]string{"team-a/app0", "team-a/app1"}, nil, odd)},
		{name: "include library namespace", filter: inputs.FilterOptions{IncludeNamespaces: []string{"library"}}, want: every([]string{"busybox"}, nil)},
		{name: "exclude namespaces", filter: inputs.FilterOptions{ExcludeNamespaces: []string{"tmp", "team-b"}}, want: every([]string{"busybox", "team-a/app0", "team-a/app1"}, nil, odd)},
		{name: "include and exclude", filter: inputs.FilterOptions{IncludeNamespaces: []string{"team-a", "team-b"}, ExcludeNamespaces: []string{"team-b"}}, want: every([]string{"team-a/app0", "team-a/app1"}, nil, odd)},
		{name: "repo regex, unanchored", filter: inputs.FilterOptions{RepoRegex: `app[0-9]`}, want: every([]string{"team-a/app0", "team-a/app1", "team-b/app0"}, nil, odd)},
		{name: "repo regex, official image without library", filter: inputs.FilterOptions{RepoRegex: `^busybox$`}, want: every([]string{"busybox"}, nil)},
		{name: "repo regex, official image with library", filter: inputs.FilterOptions{RepoRegex: `^library/busybox$`}, want: every([]string{"busybox"}, nil)},
		{name: "exclude repo regex", filter: inputs.FilterOptions{ExcludeRepoRegex: `^team-b/|scratch`}, want: every([]string{"busybox", "team-a/app0", "team-a/app1"}, nil, odd)},
		{name: "tag regex", filter: inputs.FilterOptions{TagRegex: `^v[0-9]`}, want: every(all, []string{"v1.0", "v1.1"})},
		{name: "tag regex, unanchored as grep", filter: inputs.FilterOptions{TagRegex: `1\.1|123`}, want: every(all, []string{"v1.1", "dev-123"})},
		{name: "exclude tag regex", filter: inputs.FilterOptions{ExcludeTagRegex: `^dev-|latest`}, want: every(all, []string{"v1.0", "v1.1"}, odd)},
		{name: "repository and tag filters together", filter: inputs.FilterOptions{IncludeNamespaces: []string{"team-a"}, ExcludeRepoRegex: `app1`, TagRegex: `^v1\.1$`}, want: []string{"team-a/app0:v1.1"}},
		{
			name:   "filters apply to listed images too",
			filter: inputs.FilterOptions{ExcludeNamespaces: []string{"team-b"}, TagRegex: `^v`},
			entries: []inputs.Entry{
				{Source: imageref.Ref{Repository: "team-a/app0", Tag: "v1.0"}},
				{Source: imageref.Ref{Repository: "team-a/app0", Tag: "latest"}}, // tag filtered out
				{Source: imageref.Ref{Repository: "team-b/web", Tag: "v1.0"}},    // namespace excluded
				{Source: imageref.Ref{Repository: "team-a/app1"}, AllTags: true},
			},
			want: []string{"team-a/app0:v1.0", "team-a/app1:v1.0", "team-a/app1:v1.1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := inputs.NewFilter(tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			res := run(t, export.Options{
				Client: c, Filter: f, Entries: tc.entries, SkipResolve: true,
				From: imageref.Location{Registry: src.Host}, To: imageref.Location{Registry: dstHost},
			})
			checkOnce(t, "scope", sources(res.Items), tc.want)
			for _, it := range res.Items {
				if export.AttachmentTag.MatchString(it.Source.Tag) {
					t.Errorf("attachment %s listed as an image: it travels with its image", it.Source)
				}
			}
			if len(res.Errors) > 0 {
				t.Errorf("export errors: %v", res.Errors)
			}
		})
	}
}

func TestUnresolvableImagesStayInScope(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	seeded := pushAll(t, src, "team/app:v1", "team/app:v2", "team/web:v1")
	entries := []inputs.Entry{
		{Source: imageref.Ref{Repository: "team/app", Tag: "v1"}},
		{Source: imageref.Ref{Repository: "team/app", Tag: "gone"}},                                  // no such tag
		{Source: imageref.Ref{Repository: "team/nosuch", Tag: "v1"}},                                 // no such repository
		{Source: imageref.Ref{Repository: "team/web"}, AllTags: true},                                // every tag
		{Source: imageref.Ref{Repository: "team/ghost"}, AllTags: true, File: "images.txt", Line: 5}, // every tag of a repository that does not exist
	}
	res := run(t, export.Options{
		Client: newClient(0, nil), Entries: entries,
		From: imageref.Location{Registry: src.Host}, To: imageref.Location{Registry: dstHost},
	})
	checkOnce(t, "scope", sources(res.Items), []string{"team/app:v1", "team/app:gone", "team/nosuch:v1", "team/web:v1"})
	for _, it := range res.Items {
		rel := it.Source.WithoutDigest()
		rel.Registry = ""
		switch rel.String() {
		case "team/app:v1", "team/web:v1":
			if it.Source.Digest != seeded[rel.String()] || it.Error != "" {
				t.Errorf("%s: digest %q error %q, want %s", rel, it.Source.Digest, it.Error, seeded[rel.String()])
			}
		default:
			if it.Source.Digest != "" {
				t.Errorf("%s: digest %s for an image the source lacks", rel, it.Source.Digest)
			}
			if !strings.Contains(it.Error, rel.String()) || !strings.Contains(it.Error, "404") {
				t.Errorf("%s: error %q, want it to name the image and the registry's 404", rel, it.Error)
			}
		}
	}
	if s := res.Summary(); s.Total != 4 || s.Resolved != 2 || s.Unresolved != 2 {
		t.Errorf("summary %+v, want 4 total, 2 resolved, 2 unresolved", s)
	}
	// A listed repository that does not exist is a scope problem the user
	// must hear about: every tag of it was asked for, none can be copied.
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "images.txt:5: ") || !strings.Contains(res.Errors[0], src.Host+"/team/ghost") {
		t.Errorf("export errors %q, want one naming images.txt:5 and team/ghost, a listed repository missing on the source", res.Errors)
	}
}

// items builds n images per namespace, repositories "<ns>/app".
func items(counts map[string]int) []artifacts.Item {
	var out []artifacts.Item
	for ns, n := range counts {
		for i := range n {
			repo := ns + "/app"
			tag := fmt.Sprintf("t%03d", i)
			out = append(out, artifacts.Item{
				Source: imageref.Ref{Registry: "legacy.example:5000", Repository: repo, Tag: tag, Digest: fmt.Sprintf("sha256:%064x", len(out)+1)},
				Target: imageref.Ref{Registry: dstHost, Repository: repo, Tag: tag},
			})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source.String() < out[j].Source.String() })
	return out
}

// dnsLabel is what Argo node and pod names need of a shard ID.
var dnsLabel = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// checkCut checks the invariants of every cut: IDs unique, DNS labels that
// start with a letter, at most 52 characters; the plan and the shards
// agree; every item in exactly one shard; the plan's namespaces are those
// of the shard's items.
func checkCut(t *testing.T, in []artifacts.Item, plan artifacts.Plan, shards map[string][]artifacts.Item) {
	t.Helper()
	if plan.Total != len(in) {
		t.Errorf("plan total %d, want %d", plan.Total, len(in))
	}
	ids := map[string]bool{}
	total := 0
	for _, s := range plan.Shards {
		if ids[s.ID] {
			t.Errorf("shard ID %q used twice", s.ID)
		}
		ids[s.ID] = true
		if !dnsLabel.MatchString(s.ID) || len(s.ID) > 52 {
			t.Errorf("shard ID %q (%d chars): want a DNS label starting with a letter, at most 52 characters", s.ID, len(s.ID))
		}
		if s.Images != len(shards[s.ID]) {
			t.Errorf("shard %s: plan says %d images, the shard holds %d", s.ID, s.Images, len(shards[s.ID]))
		}
		total += s.Images
		var nss []string
		for _, it := range shards[s.ID] {
			if ns := inputs.NamespaceOf(it.Source.Repository); !slices.Contains(nss, ns) {
				nss = append(nss, ns)
			}
		}
		sort.Strings(nss)
		if !slices.Equal(nss, s.Namespaces) {
			t.Errorf("shard %s: plan namespaces %q, its items are in %q", s.ID, s.Namespaces, nss)
		}
	}
	if total != len(in) {
		t.Errorf("shards hold %d images in all, want %d", total, len(in))
	}
	if len(shards) != len(plan.Shards) {
		t.Errorf("%d shards for %d plan entries", len(shards), len(plan.Shards))
	}
	var got []string
	for id, its := range shards {
		if !ids[id] {
			t.Errorf("shard %s is not in the plan", id)
		}
		for _, it := range its {
			got = append(got, it.Source.String())
		}
	}
	var want []string
	for _, it := range in {
		want = append(want, it.Source.String())
	}
	checkOnce(t, "items in shards", got, want)
}

func TestCut(t *testing.T) {
	t.Parallel()
	type shard struct {
		id     string
		images int
		part   int
	}
	tests := []struct {
		name                string
		counts              map[string]int
		size, minSize, max  int
		want                []shard // nil: only the invariants (and max)
		wantWholeNamespaces bool
	}{
		{
			name: "a namespace over the size is split into parts", counts: map[string]int{"big": 5}, size: 2, minSize: 1,
			want: []shard{{"ns-big-p1", 2, 1}, {"ns-big-p2", 2, 2}, {"ns-big-p3", 1, 3}},
		},
		{
			name: "small namespaces are packed", counts: map[string]int{"a": 1, "b": 2, "c": 1}, size: 10, minSize: 5,
			want: []shard{{"ns-a-to-c", 4, 0}},
		},
		{
			name: "a pack never exceeds the size", counts: map[string]int{"a": 2, "b": 2, "c": 2}, size: 4, minSize: 3,
			want: []shard{{"ns-a-to-b", 4, 0}, {"ns-c", 2, 0}},
		},
		{
			name: "split, whole, packed", counts: map[string]int{"big": 7, "mid": 4, "s1": 1, "s2": 1}, size: 5, minSize: 2,
			want: []shard{{"ns-big-p1", 5, 1}, {"ns-big-p2", 2, 2}, {"ns-mid", 4, 0}, {"ns-s1-to-s2", 2, 0}},
		},
		{
			name: "max shards spreads namespaces", counts: map[string]int{"a": 3, "b": 3, "c": 3, "d": 3, "e": 3}, size: 2, minSize: 1, max: 2,
			wantWholeNamespaces: true,
		},
		{
			name: "max shards bounds a split namespace", counts: map[string]int{"big": 5, "small": 1}, size: 2, minSize: 1, max: 2,
			wantWholeNamespaces: true,
		},
		{
			name: "one shard at most", counts: map[string]int{"big": 9}, size: 2, minSize: 1, max: 1,
			wantWholeNamespaces: true,
		},
		{
			name: "max shards above what is needed changes nothing", counts: map[string]int{"big": 5}, size: 2, minSize: 1, max: 10,
			want: []shard{{"ns-big-p1", 2, 1}, {"ns-big-p2", 2, 2}, {"ns-big-p3", 1, 3}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := items(tc.counts)
			plan, shards := export.Cut(in, tc.size, tc.minSize, tc.max)
			checkCut(t, in, plan, shards)
			if tc.want != nil {
				var got []shard
				for _, s := range plan.Shards {
					got = append(got, shard{s.ID, s.Images, s.Part})
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("shards %+v, want %+v", got, tc.want)
				}
			}
			if tc.max > 0 && len(plan.Shards) > tc.max {
				t.Errorf("%d shards, want at most %d", len(plan.Shards), tc.max)
			}
			if tc.wantWholeNamespaces {
				seen := map[string]string{}
				for _, s := range plan.Shards {
					if s.Part != 0 {
						t.Errorf("shard %s is part %d of a namespace: max shards keeps namespaces whole", s.ID, s.Part)
					}
					for _, ns := range s.Namespaces {
						if prev, ok := seen[ns]; ok {
							t.Errorf("namespace %s in shards %s and %s", ns, prev, s.ID)
						}
						seen[ns] = s.ID
					}
				}
			}
		})
	}
}

func TestCutIDs(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 100)
	tests := []struct {
		name          string
		counts        map[string]int
		size, minSize int
	}{
		{name: "a 100-character namespace", counts: map[string]int{long: 3}, size: 10, minSize: 1},
		{name: "a 100-character namespace split", counts: map[string]int{long: 5}, size: 2, minSize: 1},
		{name: "long namespaces differing at the end", counts: map[string]int{long + "x": 3, long + "y": 3}, size: 10, minSize: 1},
		{name: "a pack of long namespaces", counts: map[string]int{long + "x": 1, long + "y": 1, long + "z": 1}, size: 10, minSize: 5},
		{name: "underscores and dots", counts: map[string]int{"my_team": 2, "web.tools": 2, "a__b": 2}, size: 10, minSize: 1},
		{name: "names that clean to the same label", counts: map[string]int{"my_team": 2, "my.team": 2, "my-team": 2}, size: 10, minSize: 1},
		{name: "a namespace named like a pack", counts: map[string]int{"a": 1, "a-to-c": 5, "c": 1}, size: 10, minSize: 3},
		{name: "a namespace named like a part", counts: map[string]int{"x": 5, "x-p1": 2}, size: 2, minSize: 1},
		{name: "digits first", counts: map[string]int{"9lives": 2, "0": 2}, size: 10, minSize: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := items(tc.counts)
			plan, shards := export.Cut(in, tc.size, tc.minSize, 0)
			checkCut(t, in, plan, shards)

			// Stable: the same scope in another order, or cut again, gives
			// the same shards.
			rev := slices.Clone(in)
			slices.Reverse(rev)
			shuffled := slices.Clone(in)
			rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			for _, again := range [][]artifacts.Item{in, rev, shuffled} {
				plan2, shards2 := export.Cut(again, tc.size, tc.minSize, 0)
				checkCut(t, again, plan2, shards2)
				if fmt.Sprint(plan2) != fmt.Sprint(plan) {
					t.Errorf("plan changed with the input order:\n%+v\nwant\n%+v", plan2, plan)
				}
			}
		})
	}

	// Readable IDs where the names allow.
	plan, _ := export.Cut(items(map[string]int{"my_team": 2, "web.tools": 2}), 10, 1, 0)
	var ids []string
	for _, s := range plan.Shards {
		ids = append(ids, s.ID)
	}
	if want := []string{"ns-my-team", "ns-web-tools"}; !slices.Equal(ids, want) {
		t.Errorf("IDs %q, want %q", ids, want)
	}
}

func TestWriteRunDirectory(t *testing.T) {
	t.Parallel()
	in := items(map[string]int{"big": 5, "small": 1, "library": 1})
	// One image export could not resolve: in scope, no digest, its error kept.
	in[0].Source.Digest = ""
	in[0].Error = "resolving " + in[0].Source.String() + ": HEAD manifest: 404 Not Found: MANIFEST_UNKNOWN"
	plan, shards := export.Cut(in, 2, 2, 0)
	plan.Source, plan.Target = "legacy.example:5000", dstHost
	res := export.Result{Items: in, Plan: plan, Shards: shards, Errors: []string{"listing tags of legacy.example:5000/x/y: 500"}}

	dir := artifacts.Dir(t.TempDir())
	if err := export.Write(dir, res); err != nil {
		t.Fatal(err)
	}
	read := func(elem ...string) string {
		t.Helper()
		b, err := os.ReadFile(dir.Path(elem...))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	lines := func(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

	var wantImages, wantDigests []string
	for _, it := range in {
		rel := it.Source.WithoutDigest()
		rel.Registry = ""
		wantImages = append(wantImages, rel.String())
		if it.Source.Digest != "" {
			wantDigests = append(wantDigests, rel.String()+" "+it.Source.Digest)
		}
	}
	sort.Strings(wantImages)
	sort.Strings(wantDigests)
	if got := lines(read(contract.ImagesFile)); !slices.Equal(got, wantImages) {
		t.Errorf("images.txt:\n%q\nwant\n%q", got, wantImages)
	}
	if got := lines(read(contract.DigestsFile)); !slices.Equal(got, wantDigests) {
		t.Errorf("digests.txt:\n%q\nwant\n%q", got, wantDigests)
	}

	var gotPlan artifacts.Plan
	if err := artifacts.ReadJSON(dir.Path(contract.ShardsFile), &gotPlan); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(gotPlan) != fmt.Sprint(plan) {
		t.Errorf("shards.json %+v, want %+v", gotPlan, plan)
	}
	var ids []string
	if err := artifacts.ReadJSON(dir.Path(contract.ShardIDsParam), &ids); err != nil {
		t.Fatal(err)
	}
	var wantIDs []string
	for _, s := range plan.Shards {
		wantIDs = append(wantIDs, s.ID)
	}
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("shard-ids.json %q, want %q", ids, wantIDs)
	}
	var sum export.Summary
	if err := artifacts.ReadJSON(dir.Path(contract.ExportFile), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Total != len(in) || sum.Resolved != len(in)-1 || sum.Unresolved != 1 || sum.Shards != len(plan.Shards) || !slices.Equal(sum.Errors, res.Errors) {
		t.Errorf("export.json %+v, want %d total, 1 unresolved, %d shards, errors %q", sum, len(in), len(plan.Shards), res.Errors)
	}

	entries, err := os.ReadDir(dir.Path(contract.ShardsDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(plan.Shards) {
		t.Errorf("%d shard folders, want %d", len(entries), len(plan.Shards))
	}
	for _, s := range plan.Shards {
		want := shards[s.ID]
		var wantShardImages []string
		for _, it := range want {
			rel := it.Source.WithoutDigest()
			rel.Registry = ""
			wantShardImages = append(wantShardImages, rel.String())
		}
		sort.Strings(wantShardImages)
		if got := lines(read(contract.ShardsDir, s.ID, contract.ShardImages)); !slices.Equal(got, wantShardImages) {
			t.Errorf("shard %s images.txt %q, want %q", s.ID, got, wantShardImages)
		}
		got, err := artifacts.ReadMapping(filepath.Join(dir.ShardDir(s.ID), contract.ShardMapping))
		if err != nil {
			t.Fatal(err)
		}
		key := func(its []artifacts.Item) []string {
			var out []string
			for _, it := range its {
				out = append(out, fmt.Sprintf("%s=%s #%s", it.Source, it.Target, it.Error))
			}
			sort.Strings(out)
			return out
		}
		if !slices.Equal(key(got), key(want)) {
			t.Errorf("shard %s mapping.txt reads back as\n%q\nwant\n%q", s.ID, key(got), key(want))
		}
	}
}

// anyHost marks every registry insecure: the test registries speak plain
// HTTP on loopback, which the client uses only when told.
func anyHost(string) bool { return true }

// Names from a catalog or a tag list that the distribution grammar does not
// allow fail alone, with their reason: they never enter the plan, never
// reach a request path, and the valid names still export.
func TestOddNamesFailAloneAndNeverEnterThePlan(t *testing.T) {
	t.Parallel()
	up := regtest.StartInProcess(t)
	seeded := pushAll(t, up, "ns/app:latest", "ns/app:v1")
	odd := faultproxy.DefaultOddNames()
	px := faultproxy.New(t, "http://"+up.Host, faultproxy.Fault{Method: "GET", PathRegex: regexp.MustCompile(`/tags/list$|^/v2/_catalog$`), Kind: faultproxy.OddNames, Times: -1})
	res := run(t, export.Options{
		Client: newClient(0, nil),
		From:   imageref.Location{Registry: px.Host},
		To:     imageref.Location{Registry: dstHost},
	})
	var got []string
	for _, it := range res.Items {
		if imageref.NameProblem(it.Source.Repository, it.Source.Tag) != "" || imageref.NameProblem(it.Target.Repository, it.Target.Tag) != "" {
			t.Errorf("an invalid name entered the plan: %s -> %s", it.Source, it.Target)
		}
		if it.Error != "" {
			t.Errorf("%s: %s", it.Source, it.Error)
		}
		got = append(got, it.Source.Repository+":"+it.Source.Tag)
	}
	// The odd tags that are valid (UPPER, v9.9.9) are copied like any other.
	want := sortedKeys(seeded)
	for _, n := range odd {
		if imageref.ValidTag(n) {
			want = append(want, "ns/app:"+n)
		}
	}
	checkOnce(t, "export", got, want)
	errs := strings.Join(res.Errors, "\n")
	for _, n := range odd {
		if imageref.ValidTag(n) && imageref.ValidRepository(n) {
			continue
		}
		// Each invalid tag or repository is named (as Go quotes it) in a scope error.
		if !strings.Contains(errs, fmt.Sprintf("%q", n)) {
			t.Errorf("invalid tag %q is not reported; scope errors:\n%s", n, errs)
		}
	}
	for _, u := range px.RequestURIs() {
		p, _, _ := strings.Cut(u, "?")
		if strings.Contains(p, "/manifests/") && (strings.Contains(u, "y=1") || strings.Contains(p, "..") || strings.Contains(p, " ")) {
			t.Errorf("a request carried an odd name: %s", u)
		}
	}
}

// Package export decides what a migration moves: it discovers images (the
// registry catalog, list files, mapping files, image-migrator rules), applies
// the filters, brings signatures and referrer tags along with their images,
// resolves every digest, maps each image to its target, and cuts shards.
package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/inputs"
	"github.com/regmigrate/regmigrate/steps/par"
	"github.com/regmigrate/regmigrate/steps/progress"
	"github.com/regmigrate/regmigrate/steps/registry"
)

// Defaults.
const (
	DefaultJobs         = 16
	DefaultShardSize    = 500 // a namespace with more images is split
	DefaultMinShardSize = 50  // namespaces with fewer images are packed together
)

// Options for Run.
type Options struct {
	Client *registry.Client
	From   imageref.Location
	To     imageref.Location
	// Entries come from list, mapping and rules files. When empty, the
	// source catalog is the scope.
	Entries []inputs.Entry
	Filter  inputs.Filter
	// SkipResolve leaves digests to the copy step (the local runner fuses
	// resolution into the copy, so source and target are asked at once).
	SkipResolve  bool
	ShardSize    int
	MinShardSize int
	MaxShards    int // 0 = no bound
	Jobs         int
	// Hub, when set, lists the source's repositories with Docker Hub's
	// API instead of the catalog (hub.go).
	Hub      *Hub
	Progress *progress.Reporter
	Logger   *slog.Logger
}

// Validate checks the options and sets defaults.
func (o *Options) Validate() error {
	if o.Client == nil {
		return errors.New("export: no registry client")
	}
	if o.From.Registry == "" && len(o.Entries) == 0 {
		return errors.New("export: nothing to discover: give --from (catalog) or an image list")
	}
	if o.To.Registry == "" {
		return errors.New("export: no target registry: give --to HOST[:PORT][/NAMESPACE]")
	}
	if o.ShardSize == 0 {
		o.ShardSize = DefaultShardSize
	}
	if o.MinShardSize == 0 {
		o.MinShardSize = DefaultMinShardSize
	}
	if o.ShardSize < 1 || o.MinShardSize < 1 || o.MaxShards < 0 {
		return fmt.Errorf("export: shard sizes must be positive (shard size %d, min shard size %d, max shards %d)", o.ShardSize, o.MinShardSize, o.MaxShards)
	}
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Result is what export found.
type Result struct {
	Items  []artifacts.Item
	Plan   artifacts.Plan
	Shards map[string][]artifacts.Item
	// Errors are scope problems that did not stop the export (a repository
	// whose tags could not be listed). Unresolvable images are Items with
	// Error set.
	Errors []string `json:"errors,omitempty"`
	// Excluded counts the tags the filters left out; ExcludedRepos the
	// repositories left out whole (their tags never listed).
	Excluded, ExcludedRepos int
}

// Summary is export.json.
type Summary struct {
	Total      int `json:"total"`
	Resolved   int `json:"resolved"`
	Unresolved int `json:"unresolved"`
	Shards     int `json:"shards"`
	// Excluded tags and ExcludedRepos (left out whole) by the filters.
	Excluded      int      `json:"excluded"`
	ExcludedRepos int      `json:"excludedRepositories"`
	Errors        []string `json:"errors,omitempty"`
}

// Summary of the result.
func (r Result) Summary() Summary {
	s := Summary{Shards: len(r.Plan.Shards), Errors: r.Errors, Excluded: r.Excluded, ExcludedRepos: r.ExcludedRepos}
	s.Count(r.Items)
	return s
}

// Count adds items to the totals: each is resolved or not.
func (s *Summary) Count(items []artifacts.Item) {
	s.Total += len(items)
	for _, it := range items {
		if it.Source.Digest != "" {
			s.Resolved++
		} else {
			s.Unresolved++
		}
	}
}

// AttachmentTag matches cosign's tag schema (sha256-<hex>.sig/.att/.sbom)
// and the OCI referrers fallback tag (sha256-<hex>).
var AttachmentTag = regexp.MustCompile(`^sha256-([a-f0-9]{64})(\.(sig|att|sbom))?$`)

type repoKey struct{ registry, repo string }

// Run discovers, filters, resolves and shards.
func Run(ctx context.Context, o Options) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	var res Result
	var mu sync.Mutex
	addErr := func(format string, args ...any) {
		mu.Lock()
		res.Errors = append(res.Errors, fmt.Sprintf(format, args...))
		mu.Unlock()
	}

	// 1. Entries: explicit, or every repository of the catalog.
	entries := o.Entries
	fromCatalog := len(entries) == 0
	if fromCatalog {
		ph := o.Progress.StartCounting("plan/catalog", "repositories", 0)
		var repos []string
		var err error
		if o.Hub != nil {
			repos, err = o.listHub(ctx, ph.Done)
		} else {
			repos, err = o.Client.Catalog(ctx, o.From.Registry, ph.Done)
		}
		ph.Finish()
		if err != nil {
			return res, err
		}
		for _, repo := range repos {
			if o.From.Namespace != "" && !strings.HasPrefix(repo, o.From.Namespace+"/") {
				continue
			}
			// A name outside the grammar fails alone and never enters the plan.
			if p := imageref.NameProblem(repo, ""); p != "" {
				addErr("%s catalog: %s: not copied", o.From.Registry, p)
				continue
			}
			entries = append(entries, inputs.Entry{Source: imageref.Ref{Registry: o.From.Registry, Repository: repo}, AllTags: true})
		}
	}

	// 2. Expand repositories to tags.
	tagsOf := map[repoKey][]string{}
	var need []repoKey
	var needAt []string // where each needed repository was listed
	for i := range entries {
		e := &entries[i]
		if e.Source.Registry == "" {
			e.Source.Registry = o.From.Registry
		}
		o.hubSource(e)
		k := repoKey{e.Source.Registry, e.Source.Repository}
		if _, ok := tagsOf[k]; !ok && e.AllTags && o.Filter.MatchRepo(e.Source.Repository) {
			tagsOf[k] = nil
			need = append(need, k)
			at := ""
			if e.File != "" {
				at = fmt.Sprintf("%s:%d: ", e.File, e.Line)
			}
			needAt = append(needAt, at)
		}
	}
	ph := o.Progress.StartCounting("plan/tags", "repositories", len(need))
	par.ForEach(ctx, o.Jobs, len(need), func(i int) {
		k := need[i]
		tags, err := o.Client.ListTags(ctx, k.registry, k.repo)
		switch {
		case err == nil:
		case !errors.Is(err, registry.ErrNotFound):
			addErr("%v", err) // ListTags names the repository
		case !fromCatalog:
			// A repository the catalog named may be gone since; one the
			// user listed (every tag) and that is missing is their mistake.
			addErr("%s%s/%s: no such repository on the source, nothing to copy (check the name)", needAt[i], k.registry, k.repo)
		}
		mu.Lock()
		tagsOf[k] = tags
		mu.Unlock()
		ph.Add("", 0)
	}, nil)
	ph.Finish()

	// 3. Items, filtered and mapped to targets.
	seenTarget := make(map[string]string, len(entries))
	items := make([]artifacts.Item, 0, len(entries)) // a tag an entry, mostly: one allocation
	add := func(src, dst imageref.Ref) {
		key := dst.WithoutDigest().String()
		if prev, ok := seenTarget[key]; ok {
			if prev != src.WithoutDigest().String() {
				addErr("%s and %s both map to %s: keeping the first", prev, src.WithoutDigest(), key)
			}
			return
		}
		seenTarget[key] = src.WithoutDigest().String()
		items = append(items, artifacts.Item{Source: src, Target: dst})
	}
	for _, e := range entries {
		if !o.Filter.MatchRepo(e.Source.Repository) {
			if e.AllTags {
				res.ExcludedRepos++
			} else {
				res.Excluded++
			}
			continue
		}
		if e.AllTags {
			for _, t := range tagsOf[repoKey{e.Source.Registry, e.Source.Repository}] {
				if !imageref.ValidTag(t) {
					addErr("%s/%s: %s: not copied", e.Source.Registry, e.Source.Repository, imageref.NameProblem(e.Source.Repository, t))
					continue
				}
				// Signature and referrer tags travel with their image (mirror).
				if AttachmentTag.MatchString(t) {
					continue
				}
				if !o.Filter.MatchTag(t) {
					res.Excluded++
					continue
				}
				src := e.Source
				src.Tag, src.Digest = t, ""
				add(src, o.target(src, e.Target))
			}
			continue
		}
		if e.Source.Tag != "" && !AttachmentTag.MatchString(e.Source.Tag) && !o.Filter.MatchTag(e.Source.Tag) {
			res.Excluded++
			continue
		}
		add(e.Source, o.target(e.Source, e.Target))
	}

	// 4. Resolve digests (HEAD on the source) for items that lack one.
	if !o.SkipResolve {
		ph = o.Progress.Start("plan/digests", len(items))
		par.ForEach(ctx, o.Jobs, len(items), func(i int) {
			it := &items[i]
			if it.Source.Digest == "" {
				d, err := o.Client.HeadManifest(ctx, it.Source.Registry, it.Source.Repository, it.Source.Reference())
				if err != nil {
					it.Error = fmt.Sprintf("resolving %s: %v", it.Source, err)
				} else {
					it.Source.Digest = d.Digest
				}
			}
			ph.Add("", 0)
		}, nil)
		ph.Finish()
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}

	res.Items = sortBySource(items)
	res.Plan, res.Shards = Cut(items, o.ShardSize, o.MinShardSize, o.MaxShards)
	res.Plan.Source, res.Plan.Target = o.From.String(), o.To.String()
	sort.Strings(res.Errors)
	return res, ctx.Err()
}

// target maps a source to its target: an explicit target wins (its registry
// defaulting to --to); else the source path with --from's namespace
// replaced by --to's (or prefixed with it).
func (o Options) target(src, explicit imageref.Ref) imageref.Ref {
	if explicit.Repository != "" {
		t := explicit
		if t.Registry == "" {
			t.Registry = o.To.Registry
		}
		if t.Tag == "" {
			t.Tag = src.Tag
		}
		t.Digest = ""
		return t
	}
	path := src.Repository
	if o.From.Namespace != "" && strings.HasPrefix(path, o.From.Namespace+"/") && src.Registry == o.From.Registry {
		path = strings.TrimPrefix(path, o.From.Namespace+"/")
		if o.To.Namespace == "" {
			path = o.From.Namespace + "/" + path
		}
	}
	path = o.hubTarget(path)
	if o.To.Namespace != "" {
		path = o.To.Namespace + "/" + path
	}
	return imageref.Ref{Registry: o.To.Registry, Repository: path, Tag: src.Tag}
}

// sortBySource orders items by their source's name (Ref.String), each
// name built once: built in the comparison, twice per comparison, the
// names of 100,000 tags were 110 MB of garbage. Equal names keep their
// order.
func sortBySource(items []artifacts.Item) []artifacts.Item {
	keys := make([]string, len(items))
	order := make([]int, len(items))
	for i := range items {
		keys[i], order[i] = items[i].Source.String(), i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	sorted := make([]artifacts.Item, len(items))
	for k, i := range order {
		sorted[k] = items[i]
	}
	return sorted
}

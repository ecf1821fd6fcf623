// Package verify proves a migration: every image in scope resolves on the
// target to the expected digest, and (deep) every child manifest and every
// blob it references is present there. The ImageStreamTag check is package
// imagecheck (it needs a Kubernetes client); its verdicts are kept here, in
// Result.ImageAPI, so that verify.json and the report link no Kubernetes.
package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/mirror"
	"github.com/regmigrate/regmigrate/steps/par"
	"github.com/regmigrate/regmigrate/steps/progress"
	"github.com/regmigrate/regmigrate/steps/registry"
)

// DefaultJobs is the number of images checked at once.
const DefaultJobs = 16

// Statuses of a check.
const (
	Passed = "passed"
	Failed = "failed"
)

// Modes of verification.
const (
	// ModeFull resolves every tag on the target and checks every child
	// manifest and blob it references. The cutover uses it.
	ModeFull = "full"
	// ModeAuto checks every tag's digest and deep-checks what this run
	// copied; a tag the copy found already in place (Proven) counts as
	// resolved by that check, and blobs the registry confirmed during this
	// run (Known) are not asked again.
	ModeAuto = "auto"
	// ModeDigest checks tag digests only.
	ModeDigest = "digest"
)

// Expect is one image to check.
type Expect struct {
	Target imageref.Ref // with its tag
	Digest string       // the digest the target tag must resolve to
	// Proven: the target tag was seen at Digest by this run's copy step
	// (it skipped the image), so ModeAuto does not ask again.
	Proven bool
	// Copied: this run wrote the image, so ModeAuto checks it deeply.
	Copied bool
}

// TagExpect is one ImageStreamTag to check (package imagecheck checks
// them through a cluster's Image API).
type TagExpect struct {
	Target imageref.Ref // TARGET/ns/stream:tag
	Digest string
}

// TagExpects are the ImageStreamTags behind expectations: every image with
// an expected digest.
func TagExpects(exp []Expect) []TagExpect {
	var tags []TagExpect
	for _, e := range exp {
		if e.Digest != "" {
			tags = append(tags, TagExpect{Target: e.Target, Digest: e.Digest})
		}
	}
	return tags
}

// Options for Run.
type Options struct {
	Client  *registry.Client
	Expects []Expect
	// Mode is ModeAuto (default), ModeFull or ModeDigest.
	Mode string
	// Known reports blobs the registry confirmed present during this run
	// (upload, mount or HEAD by the copy step); ModeAuto trusts them.
	Known    func(host, repo, digest string) bool
	Jobs     int
	Cache    *Cache // shared by the shards of one run; nil = new
	Progress *progress.Phase
	Logger   *slog.Logger
}

// Check is one image's verdict (verify.json).
type Check struct {
	Target  string   `json:"target"`
	Digest  string   `json:"digest"`
	Got     string   `json:"got,omitempty"`
	Status  string   `json:"status"`
	Error   string   `json:"error,omitempty"`
	Missing []string `json:"missing,omitempty"`
}

// Result is verify.json.
type Result struct {
	Total  int     `json:"total"`
	Passed int     `json:"passed"`
	Failed int     `json:"failed"`
	Mode   string  `json:"mode"`
	Images []Check `json:"images"`
	// ImageAPI holds the ImageStreamTag checks when a cluster was named.
	ImageAPI *APIResult `json:"imageAPI,omitempty"`
}

// APIResult sums the Image API checks (ImageStreamTags).
type APIResult struct {
	Total  int     `json:"total"`
	Passed int     `json:"passed"`
	Failed int     `json:"failed"`
	Tags   []Check `json:"tags"`
}

// NewAPIResult sums checks.
func NewAPIResult(checks []Check) *APIResult {
	r := &APIResult{Total: len(checks), Tags: checks}
	for _, c := range checks {
		if c.Status == Passed {
			r.Passed++
		} else {
			r.Failed++
		}
	}
	return r
}

// OK reports whether everything passed.
func (r Result) OK() bool { return r.Failed == 0 && (r.ImageAPI == nil || r.ImageAPI.Failed == 0) }

// Cache remembers what was proven present, so shared base layers and
// children are checked once per repository.
type Cache struct {
	mu sync.Mutex
	ok map[string]bool
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{ok: map[string]bool{}} }

func (c *Cache) has(k string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ok[k]
}

func (c *Cache) set(k string) {
	c.mu.Lock()
	c.ok[k] = true
	c.mu.Unlock()
}

// Run checks every expectation. Failures are in the result, never an error.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Client == nil {
		return Result{}, errors.New("verify: no registry client")
	}
	switch o.Mode {
	case "":
		o.Mode = ModeAuto
	case ModeAuto, ModeFull, ModeDigest:
	default:
		return Result{}, fmt.Errorf("verify: mode %q: want auto, full or digest", o.Mode)
	}
	if o.Known == nil || o.Mode == ModeFull {
		o.Known = func(string, string, string) bool { return false }
	}
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs
	}
	if o.Cache == nil {
		o.Cache = NewCache()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	res := Result{Total: len(o.Expects), Mode: o.Mode, Images: make([]Check, len(o.Expects))}
	par.ForEach(ctx, o.Jobs, len(o.Expects), func(i int) {
		res.Images[i] = check(ctx, o, o.Expects[i])
		o.Progress.Add(res.Images[i].Status, 0)
	}, func(i int) {
		e := o.Expects[i]
		res.Images[i] = Check{Target: e.Target.WithoutDigest().String(), Digest: e.Digest, Status: Failed, Error: fmt.Sprintf("not checked: %v", ctx.Err())}
	})
	for _, c := range res.Images {
		if c.Status == Passed {
			res.Passed++
		} else {
			res.Failed++
		}
	}
	sort.SliceStable(res.Images, func(i, j int) bool { return res.Images[i].Target < res.Images[j].Target })
	return res, ctx.Err()
}

func check(ctx context.Context, o Options, e Expect) Check {
	t := e.Target
	c := Check{Target: t.WithoutDigest().String(), Digest: e.Digest, Status: Failed}
	if e.Digest == "" {
		c.Error = "no expected digest: the source image could not be resolved"
		return c
	}
	if !e.Proven || o.Mode == ModeFull {
		d, err := o.Client.HeadManifest(ctx, t.Registry, t.Repository, t.Tag)
		if err != nil {
			if errors.Is(err, registry.ErrNotFound) {
				c.Error = "tag not found on the target"
			} else {
				c.Error = err.Error()
			}
			return c
		}
		c.Got = d.Digest
		if d.Digest != e.Digest {
			c.Error = fmt.Sprintf("target tag resolves to %s, expected %s", d.Digest, e.Digest)
			return c
		}
	}
	if o.Mode == ModeFull || (o.Mode == ModeAuto && e.Copied) {
		missing, err := deep(ctx, o, t, e.Digest, 0)
		if err != nil {
			c.Error = err.Error()
			return c
		}
		if len(missing) > 0 {
			c.Missing = missing
			c.Error = fmt.Sprintf("%d referenced manifests or blobs missing on the target", len(missing))
			return c
		}
	}
	c.Got = ""
	c.Status = Passed
	return c
}

// deep fetches the manifest by digest (checking its bytes) and checks that
// every child and blob it references is present.
func deep(ctx context.Context, o Options, t imageref.Ref, digest string, depth int) ([]string, error) {
	key := t.Registry + "/" + t.Repository + "@" + digest
	if o.Cache.has(key) {
		return nil, nil
	}
	if depth > 8 {
		return nil, fmt.Errorf("indexes nested deeper than 8 at %s", digest)
	}
	body, mt, err := o.Client.GetManifest(ctx, t.Registry, t.Repository, digest)
	if errors.Is(err, registry.ErrNotFound) {
		return []string{"manifest " + digest}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s@%s on the target: %w", t.Repo(), digest, err)
	}
	m, err := registry.ParseManifest(body, mt)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, ch := range m.Manifests {
		ms, err := deep(ctx, o, t, ch.Digest, depth+1)
		if err != nil {
			return nil, err
		}
		missing = append(missing, ms...)
	}
	for _, b := range m.Blobs() {
		bk := t.Registry + "/" + t.Repository + "@" + b.Digest
		if o.Cache.has(bk) || o.Known(t.Registry, t.Repository, b.Digest) {
			continue
		}
		ok, err := o.Client.HeadBlob(ctx, t.Registry, t.Repository, b.Digest)
		if err != nil {
			return nil, fmt.Errorf("checking blob %s in %s: %w", b.Digest, t.Repo(), err)
		}
		if !ok {
			missing = append(missing, "blob "+b.Digest)
			continue
		}
		o.Cache.set(bk)
	}
	if len(missing) == 0 {
		o.Cache.set(key)
	}
	return missing, nil
}

// FromMirror turns mirror-shard's results into expectations: the digest now
// on the target, deep checks for what was copied. observed says the results
// come from a copy that looked at the target (so a skipped image's tag was
// seen at its digest); reuse-storage's synthesized results did not.
func FromMirror(images []mirror.ImageResult, observed bool) ([]Expect, error) {
	exp := make([]Expect, 0, len(images))
	for _, im := range images {
		t, err := imageref.Parse(im.Target)
		if err != nil {
			return nil, err
		}
		exp = append(exp, Expect{Target: t, Digest: im.Digest,
			Proven: observed && im.Status == contract.StatusSkipped, Copied: im.Status == contract.StatusCopied})
	}
	return exp, nil
}

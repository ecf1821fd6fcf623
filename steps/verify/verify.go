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
	"slices"
	"sort"
	"strings"
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
	// ModeFull resolves every tag on the target, reads every child
	// manifest and checks it against its digest, and reads and hashes
	// every blob it references (streamed, memory flat). The cutover uses
	// it.
	ModeFull = "full"
	// ModeAuto checks every tag's digest and deep-checks what this run
	// copied (manifests read, blobs present); a tag the copy found already
	// in place (Proven) counts as resolved by that check, and blobs the
	// registry confirmed during this run (Known) are not asked again. An
	// image the copy repaired is checked in full.
	ModeAuto = "auto"
	// ModeDigest checks tag digests only.
	ModeDigest = "digest"
)

// blobsPerImage bounds the blobs of one image checked at once (requests
// per registry are bounded by the client as well).
const blobsPerImage = 16

// Expect is one image to check.
type Expect struct {
	Target imageref.Ref // with its tag
	Digest string       // the digest the target tag must resolve to
	// Proven: the target tag was seen at Digest by this run's copy step
	// (it skipped the image), so ModeAuto does not ask again.
	Proven bool
	// Copied: this run wrote the image, so ModeAuto checks it deeply.
	Copied bool
	// Repaired: the image had failed verification and this run's copy
	// walked it again; unless ModeDigest it is checked in full.
	Repaired bool
	// Reuploaded are the blobs the repair uploaded again although the
	// target had them (they were corrupt): still corrupt, they are named
	// as kept by the registry.
	Reuploaded []string
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
	Target string `json:"target"`
	Digest string `json:"digest"`
	Got    string `json:"got,omitempty"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Missing and Corrupt name what the target lacks or serves with
	// another digest: "manifest sha256:..." or "blob sha256:..."; Unread
	// the blobs that could not be checked (the registry failed).
	Missing []string `json:"missing,omitempty"`
	Corrupt []string `json:"corrupt,omitempty"`
	Unread  []string `json:"unread,omitempty"`
	// Retryable: the check could not be made for a transient reason
	// (registry unreachable, 5xx, 429, a stall); a rerun may pass. Integrity
	// failures (wrong digest, missing or corrupt content) are final.
	Retryable bool `json:"retryable,omitempty"`
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

// ExitCode is the verify step's exit code for a shard: ExitOK when
// everything passed, ExitRetryable when every failure is transient, else
// ExitFailed.
func (r Result) ExitCode() int {
	if r.OK() {
		return contract.ExitOK
	}
	checks := r.Images
	if r.ImageAPI != nil {
		checks = append(slices.Clone(checks), r.ImageAPI.Tags...)
	}
	for _, c := range checks {
		if c.Status != Passed && !c.Retryable {
			return contract.ExitFailed
		}
	}
	return contract.ExitRetryable
}

// Cache remembers what was proven, so shared base layers and children are
// checked once per repository, and (ModeFull) each blob's content is read
// once per registry.
type Cache struct {
	mu sync.Mutex
	ok map[string]bool // "host/repo@digest" present; "full host/repo@digest" read and checked
	// content is the verdict of reading a blob, per "host@digest": "" when
	// its content has its digest, else what is wrong with it. A registry
	// stores a blob once whatever the repositories that link it, so it is
	// read through the first repository that asks; the others HEAD it.
	content par.Memo[string, string]
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
	fail := func(err error) Check {
		c.Error = err.Error()
		c.Retryable = registry.IsRetryable(err) || errors.Is(err, context.Canceled)
		return c
	}
	full := o.Mode == ModeFull || (e.Repaired && o.Mode != ModeDigest)
	deep := full || (o.Mode == ModeAuto && e.Copied)
	var root *fetched
	if deep {
		// One GET by tag proves what the tag resolves to (the digest of
		// the bytes it serves) and gives the manifest to walk: a HEAD
		// and then a GET by digest would cost a request more per image.
		body, mt, err := o.Client.GetManifest(ctx, t.Registry, t.Repository, t.Tag)
		if errors.Is(err, registry.ErrNotFound) {
			c.Error = "tag not found on the target"
			return c
		}
		if err != nil {
			return fail(err)
		}
		if !registry.Matches(e.Digest, body) {
			c.Got, _ = registry.DigestAs(e.Digest, body)
			c.Error = fmt.Sprintf("target tag resolves to %s, expected %s", c.Got, e.Digest)
			return c
		}
		root = &fetched{body: body, mediaType: mt}
	} else if !e.Proven {
		d, err := o.Client.HeadManifest(ctx, t.Registry, t.Repository, t.Tag)
		if errors.Is(err, registry.ErrNotFound) {
			c.Error = "tag not found on the target"
			return c
		}
		if err != nil {
			return fail(err)
		}
		c.Got = d.Digest
		if d.Digest != e.Digest {
			c.Error = fmt.Sprintf("target tag resolves to %s, expected %s", d.Digest, e.Digest)
			return c
		}
	}
	if deep {
		w := walk{o: o, full: full}
		if err := w.manifest(ctx, t, e.Digest, 0, root); err != nil {
			return fail(err)
		}
		c.Unread = w.unread
		if len(w.missing)+len(w.corrupt) > 0 {
			c.Missing, c.Corrupt = w.missing, w.corrupt
			c.Error = w.describe(c.Target, e.Reuploaded)
			return c
		}
		if len(w.unread) > 0 {
			sort.Strings(c.Unread)
			c.Retryable = true
			for _, err := range w.unreadErrs {
				c.Retryable = c.Retryable && (registry.IsRetryable(err) || errors.Is(err, context.Canceled))
			}
			c.Error = fmt.Sprintf("%d blobs could not be checked: %v", len(w.unread), w.unreadErrs[0])
			return c
		}
	}
	c.Got = ""
	c.Status = Passed
	return c
}

// walk checks one image's tree: every child manifest read (and so checked
// against its digest) and every blob present, or in full read and hashed.
type walk struct {
	o    Options
	full bool

	mu         sync.Mutex
	missing    []string
	corrupt    []string
	details    map[string]string // entry -> what is wrong
	unread     []string          // blobs whose check failed
	unreadErrs []error
}

// failed records a blob whose check failed (the registry did not answer):
// the other blobs are still checked, and a repair uploads this one again.
func (w *walk) failed(digest string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.unread = append(w.unread, "blob "+digest)
	w.unreadErrs = append(w.unreadErrs, err)
}

func (w *walk) found(list *[]string, entry, detail string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	*list = append(*list, entry)
	if detail != "" {
		if w.details == nil {
			w.details = map[string]string{}
		}
		w.details[entry] = detail
	}
}

func (w *walk) key(t imageref.Ref, digest string) string {
	k := t.Registry + "/" + t.Repository + "@" + digest
	if w.full {
		return "full " + k
	}
	return k
}

// manifest checks the manifest digest of t's repository and what it
// references.
// fetched is a manifest already read (and checked against its digest).
type fetched struct {
	body      []byte
	mediaType string
}

// manifest checks the manifest digest of t's repository and what it
// references; have, when not nil, is its content, already read.
func (w *walk) manifest(ctx context.Context, t imageref.Ref, digest string, depth int, have *fetched) error {
	o := w.o
	key := w.key(t, digest)
	if o.Cache.has(key) {
		return nil
	}
	if depth > 8 {
		return fmt.Errorf("indexes nested deeper than 8 at %s", digest)
	}
	if have == nil {
		body, mt, err := o.Client.GetManifest(ctx, t.Registry, t.Repository, digest)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			w.found(&w.missing, "manifest "+digest, "")
			return nil
		case errors.Is(err, registry.ErrDigestMismatch):
			w.found(&w.corrupt, "manifest "+digest, err.Error())
			return nil
		case err != nil:
			return fmt.Errorf("reading %s@%s on the target: %w", t.Repo(), digest, err)
		}
		have = &fetched{body: body, mediaType: mt}
	}
	body, mt := have.body, have.mediaType
	m, err := registry.ParseManifest(body, mt)
	if err != nil {
		return err
	}
	before := w.problems()
	for _, ch := range m.Manifests {
		if err := w.manifest(ctx, t, ch.Digest, depth+1, nil); err != nil {
			return err
		}
	}
	blobs := m.Blobs()
	errs := make([]error, len(blobs))
	par.ForEach(ctx, blobsPerImage, len(blobs), func(i int) { errs[i] = w.blob(ctx, t, blobs[i]) }, func(i int) { errs[i] = ctx.Err() })
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if w.problems() == before {
		o.Cache.set(key)
	}
	return nil
}

func (w *walk) problems() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.missing) + len(w.corrupt) + len(w.unread)
}

// blob checks one blob of t's repository: present (HEAD), or in full read
// and hashed, once per registry, and present in this repository.
func (w *walk) blob(ctx context.Context, t imageref.Ref, b registry.Descriptor) error {
	o := w.o
	present := t.Registry + "/" + t.Repository + "@" + b.Digest
	key := w.key(t, b.Digest)
	if o.Cache.has(key) || (!w.full && o.Known(t.Registry, t.Repository, b.Digest)) {
		return nil
	}
	if w.full {
		bad, read, err := w.content(ctx, t, b)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			w.found(&w.missing, "blob "+b.Digest, "")
			return nil
		case errors.Is(err, registry.ErrIncompleteBlob):
			// Its data is gone from the storage, though the registry
			// still says it has it: missing, for a rerun to upload.
			w.found(&w.missing, "blob "+b.Digest, err.Error())
			return nil
		case err != nil:
			w.failed(b.Digest, fmt.Errorf("reading blob %s in %s: %w", b.Digest, t.Repo(), err))
			return nil
		case bad != "":
			w.found(&w.corrupt, "blob "+b.Digest, bad)
			return nil
		case read:
			o.Cache.set(present)
			o.Cache.set(key)
			return nil
		}
		// Read through another repository: is it linked in this one?
		if o.Cache.has(present) {
			o.Cache.set(key)
			return nil
		}
	}
	ok, err := o.Client.HeadBlob(ctx, t.Registry, t.Repository, b.Digest)
	if err != nil {
		w.failed(b.Digest, fmt.Errorf("checking blob %s in %s: %w", b.Digest, t.Repo(), err))
		return nil
	}
	if !ok {
		w.found(&w.missing, "blob "+b.Digest, "")
		return nil
	}
	o.Cache.set(present)
	o.Cache.set(key)
	return nil
}

// content reads and hashes a blob once per registry, through t's
// repository if no other read it first. bad says what is wrong with its
// content ("" when it has its digest); read, that it was read through t's
// repository (so it is present there).
func (w *walk) content(ctx context.Context, t imageref.Ref, b registry.Descriptor) (bad string, read bool, err error) {
	readIt := func() (string, error) {
		_, err := w.o.Client.CheckBlob(ctx, t.Registry, t.Repository, b)
		if errors.Is(err, registry.ErrDigestMismatch) {
			return err.Error(), nil
		}
		return "", err
	}
	bad, fresh, err := w.o.Cache.content.Do(ctx, t.Registry+"@"+b.Digest, readIt)
	if err != nil && !fresh && ctx.Err() == nil {
		// Another repository's read failed (it may lack the blob): read
		// it through this one.
		bad, err = readIt()
		fresh = true
	}
	return bad, fresh, err
}

// describe says what is wrong with an image, naming the first problems
// and what a rerun does about them.
func (w *walk) describe(image string, reuploaded []string) string {
	sort.Strings(w.missing)
	sort.Strings(w.corrupt)
	var parts []string
	if n := len(w.corrupt); n > 0 {
		first := w.corrupt[0]
		s := fmt.Sprintf("image %s: %s is corrupt on the target (%s)", image, first, w.details[first])
		if n > 1 {
			s += fmt.Sprintf(", and %d more corrupt", n-1)
		}
		kept := false
		for _, d := range reuploaded {
			kept = kept || slices.Contains(w.corrupt, "blob "+d)
		}
		if kept {
			s += "; this run uploaded it again and the registry still serves the corrupt copy: it keeps a blob it already stores" +
				" (the CNCF distribution registry does, whatever is uploaded, or deleted through its API). Delete the blob's data" +
				" from the target's storage (distribution: <rootdirectory>/docker/registry/v2/blobs/sha256/<first two hex digits>/<hex>/data," +
				" on a filesystem or S3 alike), then run again"
		} else {
			s += "; a rerun uploads it again"
		}
		parts = append(parts, s)
	}
	if n := len(w.missing); n > 0 {
		names := strings.Join(w.missing[:min(n, 3)], ", ")
		if n > 3 {
			names += fmt.Sprintf(" and %d more", n-3)
		}
		s := fmt.Sprintf("%d referenced manifests or blobs missing on the target (%s)", n, names)
		if d := w.details[w.missing[0]]; d != "" {
			s += fmt.Sprintf(" (%s: %s)", w.missing[0], d)
		}
		parts = append(parts, s+"; a rerun copies them again")
	}
	return strings.Join(parts, "; ")
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
		e := Expect{Target: t, Digest: im.Digest,
			Proven: observed && im.Status == contract.StatusSkipped, Copied: im.Status == contract.StatusCopied}
		if im.Repair != nil {
			e.Repaired = true
			if im.Status == contract.StatusCopied {
				e.Reuploaded = im.Repair.Blobs
			}
		}
		exp = append(exp, e)
	}
	return exp, nil
}

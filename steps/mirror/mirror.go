// Package mirror copies one shard of images from the source registry to the
// target: every tag as planned by export (by digest, so the target gets
// exactly the bytes export resolved), manifest lists and indexes whole and
// children first, blobs skipped when present, mounted when another target
// repository holds them, else streamed once. Referrers come along. A failed
// image never stops the others; the result says which failures a retry may
// fix.
package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/par"
	"github.com/regmigrate/regmigrate/steps/progress"
	"github.com/regmigrate/regmigrate/steps/registry"
)

// DefaultJobs is the number of images copied at once. An image asks the
// target, then the source, one request at a time: 16 keep the 6 request
// slots of each registry busy (with 20 ms a request, 8 left them idle:
// BenchmarkFarAwayNoop, 143 tags/s at 8 against 202 at 16).
const DefaultJobs = 16

// maxDepth bounds nested indexes and referrer chains.
const maxDepth = 8

// blobsPerImage bounds the blobs of one image handled at once.
const blobsPerImage = 16

// Options for Run.
type Options struct {
	Client *registry.Client
	Items  []artifacts.Item
	// Jobs is the number of images in flight (default DefaultJobs); requests
	// per registry are bounded by the client.
	Jobs int
	// Platforms keeps only these index children ("linux/amd64"). It changes
	// the index digest, so digest-pinned consumers break: Run warns.
	Platforms []string
	// NoReferrers skips copying OCI referrers.
	NoReferrers bool
	// NoAttachments skips the tag-schema attachments of each image:
	// cosign's sha256-<hex>.sig/.att/.sbom and the referrers fallback tag
	// sha256-<hex>, found with one tag listing per repository.
	NoAttachments bool
	// DryRun compares source and target and reports what would be copied.
	DryRun bool
	// Blobs is shared by the shards of one run; nil means a new tracker.
	Blobs *Blobs
	// Slots, when set, bounds images in flight across several Runs (the
	// shards of one local run share it).
	Slots chan struct{}
	// Repair lists images (by target, without digest) that failed
	// verification since they were last copied: they are not skipped when
	// their tag is in place. Their whole tree is walked again, every child
	// manifest and the image manifest pushed again, every blob the target
	// lacks uploaded, and the blobs Repair names uploaded again whatever
	// the target says of them.
	Repair map[string]Repair
	// Repositories, when set, makes sure the target's repositories exist
	// before the copy (ECR refuses pushes to a missing one: ecrrepos); the
	// images of a repository it refuses fail with its reason, the others
	// are copied.
	Repositories RepositoryMaker
	// Log receives "Copied SRC -> DST@DIGEST" lines (mirror.log).
	Log      io.Writer
	Logger   *slog.Logger
	Progress *progress.Phase
}

// RepositoryMaker creates the target repositories a registry lacks
// (steps/ecrrepos for ECR). Ensure returns the repositories it created
// (in a dry run: would create), and per repository that cannot be
// written, why; err fails every image of the host.
type RepositoryMaker interface {
	Ensure(ctx context.Context, host string, repos []string, dryRun bool) (created []string, refused map[string]error, err error)
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Client == nil {
		return errors.New("mirror: no registry client")
	}
	if o.Jobs < 0 {
		return fmt.Errorf("mirror: jobs must be at least 1, got %d", o.Jobs)
	}
	for _, p := range o.Platforms {
		if strings.Count(p, "/") < 1 || strings.Count(p, "/") > 2 {
			return fmt.Errorf("mirror: platform %q: want OS/ARCH[/VARIANT], e.g. linux/amd64", p)
		}
	}
	return nil
}

// Repair is why an image is copied again although its tag is in place,
// and the blobs to upload again whatever the target says of them.
type Repair struct {
	// Reason is what verification found (its error).
	Reason string `json:"reason"`
	// Blobs are digests the verification found corrupt or missing on the
	// target (a registry may answer HEAD for a blob it no longer has).
	Blobs []string `json:"blobs,omitempty"`
}

// ImageResult is one image's outcome (mirror.json).
type ImageResult struct {
	Source    string `json:"source"`
	Target    string `json:"target"`
	Digest    string `json:"digest"` // the digest now on the target
	MediaType string `json:"mediaType,omitempty"`
	Status    string `json:"status"`
	// Bytes are the bytes this image uploaded to the target in this run:
	// the blobs (layers and config) of its manifest, of every child of an
	// index, and of the referrers copied with it. Blobs the target already
	// had, blobs mounted from another repository of the target, and blobs
	// another image of the run uploaded first count 0; manifests are not
	// counted. A skipped image moved 0 bytes, a failed one what it
	// uploaded before it failed. Signature tags copied along have their
	// own entries and bytes.
	Bytes     int64 `json:"bytes"`
	Referrers int   `json:"referrers,omitempty"`
	// Attachments counts the signature/attestation tags copied along (each
	// also has its own entry).
	Attachments int    `json:"attachments,omitempty"`
	Error       string `json:"error,omitempty"`
	Retryable   bool   `json:"retryable,omitempty"`
	// Repair is set when the image had failed verification and this pass
	// copied it again (Options.Repair); verify then checks it in full.
	Repair *Repair `json:"repair,omitempty"`
}

// Result is mirror.json.
type Result struct {
	Total         int           `json:"total"`
	Copied        int           `json:"copied"`
	Skipped       int           `json:"skipped"`
	Failed        int           `json:"failed"`
	Planned       int           `json:"planned,omitempty"`
	Bytes         int64         `json:"bytes"`
	BlobsUploaded int64         `json:"blobsUploaded"`
	BlobsMounted  int64         `json:"blobsMounted"`
	BlobsPresent  int64         `json:"blobsPresent"`
	Warnings      []string      `json:"warnings,omitempty"`
	Images        []ImageResult `json:"images"`

	// RepositoriesCreated are the target repositories this run created
	// (host/repo; Options.Repositories); in a dry run, those it would.
	RepositoriesCreated []string `json:"repositoriesCreated,omitempty"`
}

// ExitCode maps a result to the step's exit code.
func (r Result) ExitCode() int {
	if r.Failed == 0 {
		return contract.ExitOK
	}
	for _, im := range r.Images {
		if im.Status == contract.StatusFailed && !im.Retryable {
			return contract.ExitFailed
		}
	}
	return contract.ExitRetryable
}

type engine struct {
	o                          Options
	blobs                      *Blobs
	logMu                      sync.Mutex
	uploaded, mounted, present atomic.Int64

	tags     par.Memo[string, []string] // host/repo -> its tags, listed once
	explicit map[string]bool            // targets in the shard's plan
	extraMu  sync.Mutex
	extra    []ImageResult // attachments found on the way
}

// Run copies the shard. It returns an error only for bad options or a
// cancelled context; per-image failures are in the Result.
func Run(ctx context.Context, o Options) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	if o.Jobs == 0 {
		o.Jobs = DefaultJobs
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Progress != nil { // blob copies report their bytes as they stream
		ctx = registry.WithByteWatcher(ctx, o.Progress)
	}
	e := &engine{o: o, blobs: o.Blobs, explicit: map[string]bool{}}
	for _, it := range o.Items {
		e.explicit[it.Target.WithoutDigest().String()] = true
	}
	if e.blobs == nil {
		e.blobs = NewBlobs()
	}
	res := Result{Total: len(o.Items), Images: make([]ImageResult, len(o.Items))}
	if len(o.Platforms) > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("platform filter %v: multi-arch images get new index digests on the target; consumers that pin the source digest will not find them", o.Platforms))
		o.Logger.Warn("platform filter changes index digests", "platforms", o.Platforms)
	}
	blocked := e.prepareRepositories(ctx, &res)
	cancelled := func(i int) { res.Images[i] = failed(o.Items[i], ctx.Err()) }
	one := func(i int) {
		if err := blocked[o.Items[i].Target.Registry+"/"+o.Items[i].Target.Repository]; err != nil {
			res.Images[i] = failed(o.Items[i], err)
			o.Progress.Add(res.Images[i].Status, 0)
			return
		}
		if o.Slots != nil {
			select {
			case o.Slots <- struct{}{}:
				defer func() { <-o.Slots }()
			case <-ctx.Done():
				cancelled(i)
				return
			}
		}
		res.Images[i] = e.copyImage(ctx, o.Items[i])
		o.Progress.Add(res.Images[i].Status, res.Images[i].Bytes)
	}
	// Referrers fallback tags (sha256-<hex>) after every other image: the
	// images before them copy their referrers (and, on a target without
	// the referrers API, maintain that tag), so the tag, copied last as
	// the source has it, finds its children there and keeps the source's
	// digest rather than racing the maintenance of the same tag.
	for _, pass := range fallbackTagsLast(o.Items) {
		par.ForEach(ctx, o.Jobs, len(pass), func(k int) { one(pass[k]) }, func(k int) { cancelled(pass[k]) })
	}
	res.Images = append(res.Images, e.extra...)
	res.Total = len(res.Images)
	for _, im := range res.Images {
		switch im.Status {
		case contract.StatusCopied:
			res.Copied++
		case contract.StatusSkipped:
			res.Skipped++
		case contract.StatusPlanned:
			res.Planned++
		default:
			res.Failed++
		}
		res.Bytes += im.Bytes
	}
	res.BlobsUploaded, res.BlobsMounted, res.BlobsPresent = e.uploaded.Load(), e.mounted.Load(), e.present.Load()
	return res, ctx.Err()
}

// prepareRepositories asks Options.Repositories for the target
// repositories of the items, per host, and returns the errors of the
// repositories that cannot be written (by host/repo).
func (e *engine) prepareRepositories(ctx context.Context, res *Result) map[string]error {
	if e.o.Repositories == nil {
		return nil
	}
	byHost := map[string][]string{}
	var hosts []string
	for _, it := range e.o.Items {
		h := it.Target.Registry
		if _, ok := byHost[h]; !ok {
			hosts = append(hosts, h)
		}
		if !slices.Contains(byHost[h], it.Target.Repository) {
			byHost[h] = append(byHost[h], it.Target.Repository)
		}
	}
	blocked := map[string]error{}
	for _, h := range hosts {
		created, refused, err := e.o.Repositories.Ensure(ctx, h, byHost[h], e.o.DryRun)
		if err != nil {
			for _, r := range byHost[h] {
				blocked[h+"/"+r] = err
			}
			continue
		}
		for r, err := range refused {
			blocked[h+"/"+r] = err
		}
		for _, r := range created {
			res.RepositoriesCreated = append(res.RepositoriesCreated, h+"/"+r)
		}
		if len(created) > 0 {
			if e.o.DryRun {
				res.Warnings = append(res.Warnings, fmt.Sprintf("dry run: %d repositories would be created on %s: %s", len(created), h, strings.Join(created, ", ")))
			} else {
				e.o.Logger.Info("created repositories", "registry", h, "repositories", created)
			}
		}
	}
	return blocked
}

func failed(it artifacts.Item, err error) ImageResult {
	return ImageResult{
		Source: it.Source.WithoutDigest().String(), Target: it.Target.String(), Digest: it.Source.Digest,
		Status: contract.StatusFailed, Error: err.Error(), Retryable: registry.IsRetryable(err) || errors.Is(err, context.Canceled),
	}
}

// copyImage copies one tag. Every error ends up in the ImageResult.
func (e *engine) copyImage(ctx context.Context, it artifacts.Item) ImageResult {
	c := e.o.Client
	src, dst := it.Source, it.Target
	r := ImageResult{Source: src.WithoutDigest().String(), Target: dst.String(), Digest: src.Digest}
	fail := func(err error) ImageResult {
		f := failed(it, err)
		f.Digest = r.Digest
		f.Bytes = r.Bytes
		f.Repair = r.Repair
		if ctx.Err() == nil { // an interrupted run says so once, not per image
			e.o.Logger.Error("image failed", "source", r.Source, "target", r.Target, "err", err)
		}
		return f
	}
	if dst.Tag == "" {
		return fail(fmt.Errorf("target %s has no tag", dst))
	}
	var force map[string]bool // blobs to upload again; non-nil: a repair
	if rep, ok := e.o.Repair[dst.WithoutDigest().String()]; ok {
		r.Repair = &rep
		force = map[string]bool{}
		for _, d := range rep.Blobs {
			force[d] = true
		}
		e.o.Logger.Warn("copying again an image that failed verification", "target", r.Target, "reason", rep.Reason)
	}
	// Ask the target first, then the source only what the target's answer
	// leaves open: when the target has the tag, whether the source's tag
	// still names that digest (If-None-Match: the distribution registry
	// answers 304 without reading the manifest); when it has not, the
	// manifest itself (one GET by tag resolves and reads it). A digest the
	// plan pinned is not asked of the source at all.
	var (
		have    registry.Descriptor
		haveErr error
		body    []byte
		mt      string
	)
	if r.Digest != "" {
		have, _, haveErr = c.HeadManifestUnlessDigest(ctx, dst.Registry, dst.Repository, dst.Tag, r.Digest)
	} else {
		have, haveErr = c.HeadManifest(ctx, dst.Registry, dst.Repository, dst.Tag)
		switch {
		case haveErr == nil:
			d, _, err := c.HeadManifestUnlessDigest(ctx, src.Registry, src.Repository, src.Reference(), have.Digest)
			if err != nil {
				return fail(fmt.Errorf("resolving %s on the source: %w", r.Source, err))
			}
			r.Digest = d.Digest
		case errors.Is(haveErr, registry.ErrNotFound):
			var err error
			if body, mt, r.Digest, err = c.GetManifestDigest(ctx, src.Registry, src.Repository, src.Reference()); err != nil {
				return fail(fmt.Errorf("resolving %s on the source: %w", r.Source, err))
			}
		}
	}
	filtering := len(e.o.Platforms) > 0
	switch {
	case haveErr == nil && have.Digest == r.Digest && !filtering && force == nil:
		r.Status, r.MediaType = contract.StatusSkipped, have.MediaType
		e.copyReferrers(ctx, src, dst, r.Digest, &r)
		e.copyAttachments(ctx, it, r.Digest, &r)
		return r
	case haveErr != nil && !errors.Is(haveErr, registry.ErrNotFound):
		return fail(fmt.Errorf("checking target %s: %w", r.Target, haveErr))
	}
	var err error
	if body == nil {
		if body, mt, err = c.GetManifest(ctx, src.Registry, src.Repository, r.Digest); err != nil {
			return fail(fmt.Errorf("reading %s@%s: %w", r.Source, r.Digest, err))
		}
	}
	r.MediaType = mt
	if filtering && registry.IsIndex(mt) {
		if body, err = filterIndex(body, e.o.Platforms); err != nil {
			return fail(fmt.Errorf("filtering %s: %w", r.Source, err))
		}
		r.Digest = registry.Digest(body)
		if haveErr == nil && have.Digest == r.Digest && force == nil {
			r.Status = contract.StatusSkipped
			return r
		}
	}
	if e.o.DryRun {
		r.Status = contract.StatusPlanned
		e.copyAttachments(ctx, it, r.Digest, &r)
		return r
	}
	n, err := e.copyTree(ctx, src, dst, body, mt, 0, force)
	r.Bytes += n
	if err != nil {
		return fail(err)
	}
	if err := c.PutManifest(ctx, dst.Registry, dst.Repository, dst.Tag, mt, body); err != nil {
		return fail(fmt.Errorf("writing %s: %w", r.Target, err))
	}
	r.Status = contract.StatusCopied
	e.logf("Copied %s -> %s@%s\n", r.Source, dst.Repo(), r.Digest)
	e.copyReferrers(ctx, src, dst, r.Digest, &r)
	e.copyAttachments(ctx, it, r.Digest, &r)
	return r
}

// fallbackTagsLast splits the items' indices in two passes: every item
// but the referrers fallback tags, then those.
func fallbackTagsLast(items []artifacts.Item) [2][]int {
	var passes [2][]int
	for i, it := range items {
		p := 0
		if m := attachmentTag.FindStringSubmatch(it.Source.Tag); m != nil && m[2] == "" {
			p = 1
		}
		passes[p] = append(passes[p], i)
	}
	return passes
}

// attachmentTag matches cosign's tag schema and the referrers fallback tag.
var attachmentTag = regexp.MustCompile(`^sha256-([a-f0-9]{64})(\.(sig|att|sbom))?$`)

// copyAttachments copies the tag-schema attachments of the image (its
// signature, attestation, SBOM and referrers fallback tags) as images of
// their own, unless the plan lists them already. A failure to list the
// repository's tags fails the image: its signatures would be lost.
func (e *engine) copyAttachments(ctx context.Context, it artifacts.Item, digest string, r *ImageResult) {
	if e.o.NoAttachments || attachmentTag.MatchString(it.Source.Tag) || !strings.HasPrefix(digest, "sha256:") {
		return
	}
	tags, err := e.listTags(ctx, it.Source.Registry, it.Source.Repository)
	if err != nil {
		r.Status = contract.StatusFailed
		r.Error = fmt.Sprintf("listing %s for its signatures: %v", it.Source.Repo(), err)
		r.Retryable = registry.IsRetryable(err)
		return
	}
	hex := strings.TrimPrefix(digest, "sha256:")
	for _, t := range tags {
		m := attachmentTag.FindStringSubmatch(t)
		if m == nil || m[1] != hex {
			continue
		}
		att := artifacts.Item{Source: it.Source, Target: it.Target}
		att.Source.Tag, att.Source.Digest = t, ""
		att.Target.Tag = t
		if e.explicit[att.Target.WithoutDigest().String()] {
			continue
		}
		res := e.copyImage(ctx, att)
		e.o.Progress.AddExtra(res.Status, res.Bytes) // not in the plan's total
		e.extraMu.Lock()
		e.extra = append(e.extra, res)
		e.extraMu.Unlock()
		r.Attachments++
	}
}

// listTags lists a repository's tags once per run, whoever asks first.
func (e *engine) listTags(ctx context.Context, host, repo string) ([]string, error) {
	tags, _, err := e.tags.Do(ctx, host+"/"+repo, func() ([]string, error) { return e.o.Client.ListTags(ctx, host, repo) })
	return tags, err
}

func (e *engine) logf(format string, args ...any) {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	fmt.Fprintf(e.o.Log, format, args...)
}

// copyTree makes the target hold everything the manifest references:
// children of an index (recursively, pushed by digest before the parent)
// or the blobs of an image. It returns the bytes uploaded. A repair (force
// not nil) walks children the target has as well, pushes them again, and
// uploads the blobs force names whatever the target says.
func (e *engine) copyTree(ctx context.Context, src, dst imageref.Ref, body []byte, mt string, depth int, force map[string]bool) (int64, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("indexes nested deeper than %d", maxDepth)
	}
	if mt == registry.MediaDockerV1 || mt == registry.MediaDockerV1Signed {
		return 0, fmt.Errorf("docker schema 1 manifest (%s): registries no longer accept it; convert it at the source (e.g. push it again with a current client)", mt)
	}
	m, err := registry.ParseManifest(body, mt)
	if err != nil {
		return 0, err
	}
	c := e.o.Client
	if registry.IsIndex(mt) || len(m.Manifests) > 0 {
		var total int64
		for _, ch := range m.Manifests {
			if force == nil {
				if _, err := c.HeadManifest(ctx, dst.Registry, dst.Repository, ch.Digest); err == nil {
					continue
				} else if !errors.Is(err, registry.ErrNotFound) {
					return total, fmt.Errorf("checking child %s on target: %w", ch.Digest, err)
				}
			}
			cb, cmt, err := c.GetManifest(ctx, src.Registry, src.Repository, ch.Digest)
			if err != nil {
				return total, fmt.Errorf("reading child %s (%s): %w", ch.Digest, ch.Platform, err)
			}
			if cmt == "" {
				cmt = ch.MediaType
			}
			n, err := e.copyTree(ctx, src, dst, cb, cmt, depth+1, force)
			total += n
			if err != nil {
				return total, err
			}
			if err := c.PutManifest(ctx, dst.Registry, dst.Repository, ch.Digest, cmt, cb); err != nil {
				return total, fmt.Errorf("writing child %s: %w", ch.Digest, err)
			}
		}
		return total, nil
	}
	// Each blob once, a bounded number at a time: a manifest with tens of
	// thousands of layers costs blobsPerImage goroutines, not one per layer
	// (requests are bounded per registry by the client as well).
	var (
		mu    sync.Mutex
		total int64
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(blobsPerImage)
	seen := map[string]bool{}
	for _, d := range m.Blobs() {
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		g.Go(func() error {
			act, n, err := e.blobs.ensure(gctx, c, src.Registry, src.Repository, dst.Registry, dst.Repository, d, force[d.Digest])
			if err != nil {
				return fmt.Errorf("blob %s: %w", d.Digest, err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
			switch act {
			case blobUploaded:
				e.uploaded.Add(1)
			case blobMounted:
				e.mounted.Add(1)
			default:
				e.present.Add(1)
			}
			return nil
		})
	}
	err = g.Wait()
	return total, err
}

// copyReferrers copies the OCI 1.1 referrers of digest (signatures, SBOMs,
// attestations attached with `subject`) when the source has the referrers
// API. Registries without it keep referrers under the tag-schema fallback
// tag, which export puts in scope as a tag. A referrer failure fails the image.
func (e *engine) copyReferrers(ctx context.Context, src, dst imageref.Ref, digest string, r *ImageResult) {
	if e.o.NoReferrers || e.o.DryRun {
		return
	}
	var moved int64
	n, err := e.referrers(ctx, src, dst, digest, 0, &moved)
	r.Referrers += n
	r.Bytes += moved
	if err != nil {
		r.Status = contract.StatusFailed
		r.Error = fmt.Sprintf("copying referrers of %s: %v", digest, err)
		r.Retryable = registry.IsRetryable(err)
	}
}

// referrers copies the referrers of digest, recursively; moved adds up
// the bytes their blobs uploaded.
func (e *engine) referrers(ctx context.Context, src, dst imageref.Ref, digest string, depth int, moved *int64) (int, error) {
	c := e.o.Client
	if depth > maxDepth {
		return 0, nil
	}
	descs, err := c.Referrers(ctx, src.Registry, src.Repository, digest)
	if errors.Is(err, registry.ErrUnsupported) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	count := 0
	var copied []registry.Descriptor
	for _, d := range descs {
		if _, err := c.HeadManifest(ctx, dst.Registry, dst.Repository, d.Digest); err != nil {
			if !errors.Is(err, registry.ErrNotFound) {
				return count, err
			}
			body, mt, err := c.GetManifest(ctx, src.Registry, src.Repository, d.Digest)
			if err != nil {
				return count, err
			}
			n, err := e.copyTree(ctx, src, dst, body, mt, depth+1, nil)
			*moved += n
			if err != nil {
				return count, err
			}
			if err := c.PutManifest(ctx, dst.Registry, dst.Repository, d.Digest, mt, body); err != nil {
				return count, err
			}
			copied = append(copied, d)
		}
		count++
		n, err := e.referrers(ctx, src, dst, d.Digest, depth+1, moved)
		count += n
		if err != nil {
			return count, err
		}
	}
	if len(copied) > 0 {
		if err := e.fallbackTag(ctx, dst, digest, copied); err != nil {
			return count, err
		}
	}
	return count, nil
}

// fallbackTag maintains the referrers tag-schema index (sha256-<hex>) on a
// target without the referrers API, so clients there still find them.
func (e *engine) fallbackTag(ctx context.Context, dst imageref.Ref, subject string, add []registry.Descriptor) error {
	c := e.o.Client
	if _, err := c.Referrers(ctx, dst.Registry, dst.Repository, subject); !errors.Is(err, registry.ErrUnsupported) {
		return nil // the target indexes referrers itself (or answered an error we leave to verify)
	}
	tag := strings.Replace(subject, ":", "-", 1)
	idx := registry.Manifest{SchemaVersion: 2, MediaType: registry.MediaOCIIndex}
	if body, _, err := c.GetManifest(ctx, dst.Registry, dst.Repository, tag); err == nil {
		if m, err := registry.ParseManifest(body, registry.MediaOCIIndex); err == nil {
			idx.Manifests = m.Manifests
		}
	}
	seen := map[string]bool{}
	for _, d := range idx.Manifests {
		seen[d.Digest] = true
	}
	added := false
	for _, d := range add {
		if !seen[d.Digest] {
			idx.Manifests = append(idx.Manifests, d)
			added = true
		}
	}
	if !added {
		// The tag lists them already (copied as a tag of its own from a
		// source that keeps it, such as a layout): written again, it would
		// change its digest away from the source's.
		return nil
	}
	body, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return c.PutManifest(ctx, dst.Registry, dst.Repository, tag, registry.MediaOCIIndex, body)
}

// filterIndex keeps the children whose platform is listed, keeping every
// other field of the index as it was.
func filterIndex(body []byte, platforms []string) ([]byte, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, err
	}
	var children []json.RawMessage
	if err := json.Unmarshal(raw["manifests"], &children); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, p := range platforms {
		want[p] = true
	}
	var kept []json.RawMessage
	for _, ch := range children {
		var d registry.Descriptor
		if err := json.Unmarshal(ch, &d); err != nil {
			return nil, err
		}
		if d.Platform != nil && (want[d.Platform.String()] || want[d.Platform.OS+"/"+d.Platform.Architecture]) {
			kept = append(kept, ch)
		}
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("no child matches platforms %v", platforms)
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	raw["manifests"] = b
	return json.Marshal(raw)
}

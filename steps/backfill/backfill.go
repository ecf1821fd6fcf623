// Package backfill writes the target's Image API metadata for a shard: per
// repository an ImageStream, per tag an ImageStreamMapping recording the
// digest, the target reference and the manifest media type (and, for a
// manifest list, its children). It is idempotent: a tag that already points
// at the expected digest and reference is skipped. Seed 000 does this with
// several `ac` calls per image; this does it with bounded concurrency.
// Its result (backfill.json) is package backfillresult.
package backfill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/yaml"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/backfillresult"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageapi"
	"github.com/regmigrate/regmigrate/steps/progress"
	"github.com/regmigrate/regmigrate/steps/registry"
)

// Strategies (the runbook's scenarios).
const (
	// StrategyCopy: images were copied; metadata is read from the target.
	StrategyCopy = contract.StrategyCopy
	// StrategyReuseStorage: the new registry serves the legacy storage; no
	// copy, metadata is read from the legacy registry.
	StrategyReuseStorage = contract.StrategyReuseStorage
)

// DefaultJobs is the number of images backfilled at once.
const DefaultJobs = 16

// Options for Run.
type Options struct {
	API      *imageapi.Client
	Registry *registry.Client
	Items    []artifacts.Item
	// Strategy picks the registry to inspect: the target (copy) or the
	// source (reuse-storage).
	Strategy string
	// MetadataDir receives <ns>-<stream>-<tag>.mapping.yaml and .apply.txt.
	MetadataDir string
	Jobs        int
	Progress    *progress.Phase
	Logger      *slog.Logger
	// Verbose logs every image.
	Verbose bool
	// ProgressEvery logs a progress line every N images (the runbook's
	// METADATA_PROGRESS_INTERVAL); 0 = none.
	ProgressEvery int
}

type engine struct {
	o       Options
	mu      sync.Mutex
	streams map[string]*streamOnce

	auditMu   sync.Mutex
	auditErrs []string
}

// audit writes one audit file; a failure is kept for the result and logged
// (the metadata is applied whatever happens to its record).
func (e *engine) audit(path string, b []byte) {
	if err := artifacts.WriteFile(path, b); err != nil {
		e.o.Logger.Warn("audit file not written", "path", path, "err", err)
		e.auditMu.Lock()
		e.auditErrs = append(e.auditErrs, fmt.Sprintf("writing %s: %v", path, err))
		e.auditMu.Unlock()
	}
}

type streamOnce struct {
	done chan struct{}
	tags map[string]imageapi.Tag // what the stream's tags point at
	err  error
}

// Run backfills the items. Per-image failures are in the result.
func Run(ctx context.Context, o Options) (backfillresult.Result, error) {
	if o.API == nil || o.Registry == nil {
		return backfillresult.Result{}, errors.New("backfill: needs an Image API client and a registry client")
	}
	switch o.Strategy {
	case "":
		o.Strategy = StrategyCopy
	case StrategyCopy, StrategyReuseStorage:
	default:
		return backfillresult.Result{}, fmt.Errorf("backfill: strategy %q: want %s or %s", o.Strategy, StrategyCopy, StrategyReuseStorage)
	}
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := &engine{o: o, streams: map[string]*streamOnce{}}
	res := backfillresult.Result{API: o.API.GroupVersion().String(), Strategy: o.Strategy, Total: len(o.Items), Images: make([]backfillresult.ImageResult, len(o.Items))}
	idx := make(chan int)
	var wg sync.WaitGroup
	var done atomic.Int64
	for range min(o.Jobs, max(len(o.Items), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				r := e.one(ctx, o.Items[i])
				res.Images[i] = r
				o.Progress.Add(r.Action, 0)
				if o.Verbose || r.Action == backfillresult.ActionFailed {
					o.Logger.Info("backfill", "image", r.Image, "action", r.Action, "digest", r.Digest, "err", r.Error)
				}
				if n := done.Add(1); o.ProgressEvery > 0 && n%int64(o.ProgressEvery) == 0 {
					o.Logger.Info("backfill progress", "done", n, "total", len(o.Items))
				}
			}
		}()
	}
	for i := range o.Items {
		idx <- i
	}
	close(idx)
	wg.Wait()
	for _, r := range res.Images {
		switch r.Action {
		case backfillresult.ActionApplied:
			res.Applied++
			res.Success++
		case backfillresult.ActionSkipped:
			res.Skipped++
			res.Success++
		default:
			res.Failed++
		}
	}
	res.AuditErrors = e.auditErrs
	return res, ctx.Err()
}

func (e *engine) one(ctx context.Context, it artifacts.Item) backfillresult.ImageResult {
	t := it.Target
	r := backfillresult.ImageResult{Image: t.Repository + ":" + t.Tag}
	ns, stream, err := imageapi.StreamName(t.Repository)
	if err != nil {
		r.Action, r.Reason = backfillresult.ActionSkipped, err.Error()
		return r
	}
	fail := func(err error) backfillresult.ImageResult {
		r.Action, r.Error, r.Retryable = backfillresult.ActionFailed, err.Error(), retryable(err)
		return r
	}
	// Where the metadata is read: the target (copy) or the legacy registry.
	insp := t
	if e.o.Strategy == StrategyReuseStorage {
		insp = it.Source
	}
	digest := it.Source.Digest
	if digest == "" {
		d, err := e.o.Registry.HeadManifest(ctx, insp.Registry, insp.Repository, insp.Reference())
		if err != nil {
			return fail(fmt.Errorf("reading the digest of %s: %w", insp.WithoutDigest(), err))
		}
		digest = d.Digest
	}
	r.Digest = digest
	body, mt, err := e.o.Registry.GetManifest(ctx, insp.Registry, insp.Repository, digest)
	if err != nil {
		return fail(fmt.Errorf("inspecting %s@%s: %w", insp.Repo(), digest, err))
	}
	m := imageapi.Mapping{Namespace: ns, Stream: stream, Tag: t.Tag, Digest: digest, MediaType: mt,
		Reference: t.Registry + "/" + ns + "/" + stream + "@" + digest}
	r.Reference = m.Reference
	if registry.IsIndex(mt) {
		man, err := registry.ParseManifest(body, mt)
		if err != nil {
			return fail(err)
		}
		// The Image API records platform images only: children without a
		// platform (a nested index, an attestation manifest) are left out,
		// as the API would refuse them.
		for _, ch := range man.Manifests {
			if ch.Platform == nil || ch.Platform.OS == "" || ch.Platform.Architecture == "" {
				continue
			}
			m.Children = append(m.Children, imageapi.Child{Digest: ch.Digest, MediaType: ch.MediaType, Size: ch.Size,
				Architecture: ch.Platform.Architecture, OS: ch.Platform.OS, Variant: ch.Platform.Variant})
		}
	}
	// The stream's status says what each tag points at (what its
	// ImageStreamTag shows): one read per stream, not one per tag.
	tags, err := e.ensureStream(ctx, ns, stream)
	if err != nil {
		return fail(fmt.Errorf("ImageStream %s/%s: %w", ns, stream, explain(err, "get and create imagestreams", ns)))
	}
	if cur, found := tags[t.Tag]; found && cur.Digest == digest && cur.Reference == m.Reference {
		r.Action = backfillresult.ActionSkipped
		return r
	}
	out, err := e.apply(ctx, m)
	e.record(m, out)
	if err != nil {
		return fail(fmt.Errorf("ImageStreamMapping %s/%s:%s: %w", ns, stream, t.Tag, explain(err, "create imagestreammappings", ns)))
	}
	r.Action = backfillresult.ActionApplied
	return r
}

// apply creates the mapping; a stream deleted under us is created again
// (once), a conflict is retried with backoff.
func (e *engine) apply(ctx context.Context, m imageapi.Mapping) (string, error) {
	var err error
	recreated := false
	for attempt := 0; attempt < 5; attempt++ {
		err = e.o.API.CreateMapping(ctx, m)
		switch {
		case err == nil:
			return fmt.Sprintf("imagestreammapping.%s/%s created\n", e.o.API.GroupVersion().Group, m.Stream), nil
		case apierrors.IsNotFound(err) && !recreated:
			recreated = true
			e.forgetStream(m.Namespace, m.Stream)
			if _, err2 := e.ensureStream(ctx, m.Namespace, m.Stream); err2 != nil {
				return err2.Error() + "\n", err2
			}
			continue
		case apierrors.IsConflict(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err):
			select {
			case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
			case <-ctx.Done():
				return "", ctx.Err()
			}
			continue
		}
		break
	}
	return "Error from server: " + err.Error() + "\n", err
}

func (e *engine) ensureStream(ctx context.Context, ns, name string) (map[string]imageapi.Tag, error) {
	key := ns + "/" + name
	e.mu.Lock()
	s, ok := e.streams[key]
	if !ok {
		s = &streamOnce{done: make(chan struct{})}
		e.streams[key] = s
	}
	e.mu.Unlock()
	if !ok {
		var created bool
		s.tags, created, s.err = e.o.API.EnsureStream(ctx, ns, name)
		if created && e.o.MetadataDir != "" {
			b, _ := yaml.Marshal(e.o.API.StreamManifest(ns, name).Object)
			base := filepath.Join(e.o.MetadataDir, ns+"-"+name)
			e.audit(base+".imagestream.yaml", b)
			e.audit(base+".imagestream.apply.txt", fmt.Appendf(nil, "imagestream.%s/%s created\n", e.o.API.GroupVersion().Group, name))
		}
		close(s.done)
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.err != nil {
		e.forgetStream(ns, name) // let a later image try again
	}
	return s.tags, s.err
}

func (e *engine) forgetStream(ns, name string) {
	e.mu.Lock()
	delete(e.streams, ns+"/"+name)
	e.mu.Unlock()
}

// record keeps the mapping YAML and the apply output, as seed 000 does.
func (e *engine) record(m imageapi.Mapping, out string) {
	if e.o.MetadataDir == "" {
		return
	}
	base := filepath.Join(e.o.MetadataDir, m.Namespace+"-"+m.Stream+"-"+m.Tag)
	b, err := yaml.Marshal(e.o.API.Object(m).Object)
	if err != nil {
		b = fmt.Appendf(nil, "# the mapping could not be rendered: %v\n", err)
	}
	e.audit(base+".mapping.yaml", b)
	e.audit(base+".apply.txt", []byte(out))
}

// explain turns API errors into what to do.
func explain(err error, verb, ns string) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w (the identity in the kubeconfig needs RBAC permission to %s in namespace %s)", err, verb, ns)
	case apierrors.IsNotFound(err) && strings.Contains(err.Error(), "namespaces"):
		return fmt.Errorf("%w (create namespace %s first, or leave it out of the scope)", err, ns)
	}
	return err
}

func retryable(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) ||
		registry.IsRetryable(errors.Unwrap(err))
}

package switchmode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/switchresult"
)

// Files switch-mode writes (into the run directory, or --out).
const (
	ResultFile = contract.SwitchFile
	DiffFile   = contract.SwitchDiff
)

// Cluster is one cluster to switch.
type Cluster struct {
	Name   string // kubeconfig context, or "in-cluster"
	Client dynamic.Interface
	Proof  Proof
}

// Options for Switch.
type Options struct {
	Clusters []Cluster
	// Rollback switches to legacy and restores the original references.
	Rollback bool
	// From and To: the registries as workloads name them (default: the
	// report's source and target).
	From, To   imageref.Location
	Namespaces []string
	// Workloads: rewrite workload images too (not only the mode record).
	Workloads bool
	// IncludeManaged: rewrite the workloads Argo CD, Flux or Helm manage
	// too (default: report them and write the change for their source).
	IncludeManaged bool
	PullSecret     string
	// RecordNamespace/RecordName locate the mode record.
	RecordNamespace, RecordName string
	Migration                   string
	Confirm, Force              bool
	// AllClusters: refuse every cluster unless every cluster's verify
	// passed (seed 000's --all-clusters).
	AllClusters bool
	Logger      *slog.Logger
	Now         func() time.Time
}

// The cutover's record (switch.json), in package switchresult so that the
// report reads it without linking Kubernetes.
type (
	Result        = switchresult.Result
	ClusterResult = switchresult.ClusterResult
	Object        = switchresult.Object
	Change        = switchresult.Change
	Record        = switchresult.Record
)

// Switch switches every cluster (to modern, or back to legacy on
// rollback): workloads first, then the mode record, so the record says
// modern only once the workloads point at the target.
func Switch(ctx context.Context, o Options) (Result, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.Clusters) == 0 {
		return Result{}, errors.New("no cluster to switch")
	}
	mode := ModeModern
	if o.Rollback {
		mode = ModeLegacy
	}
	res := Result{Mode: mode, DryRun: !o.Confirm, Forced: o.Force && !o.Rollback, Time: o.Now().UTC()}
	// --all-clusters: every cluster's verify must have passed, or none is
	// switched.
	if o.AllClusters && !o.Rollback && !o.Force {
		var bad []string
		for _, c := range o.Clusters {
			if !c.Proof.Passed {
				bad = append(bad, fmt.Sprintf("%s (%s)", c.Name, c.Proof.Why))
			}
		}
		if len(bad) > 0 {
			return res, fmt.Errorf("refusing --all-clusters: %w in %s; switch the verified clusters one by one, or fix and verify the others", ErrNotVerified, strings.Join(bad, ", "))
		}
	}
	for _, c := range o.Clusters {
		res.Clusters = append(res.Clusters, o.one(ctx, c))
	}
	nameFiles(&res)
	for _, c := range res.Clusters {
		for _, ob := range c.Objects {
			res.Unproven += len(ob.Unproven)
			switch ob.Action {
			case ActionRewritten:
				res.Rewritten++
			case ActionRestored:
				res.Restored++
			case ActionWouldRewrite, ActionWouldRestore:
				res.Pending++
			case ActionUnchanged:
				res.Unchanged++
			case ActionCannotRewrite:
				res.Reported++
			case ActionManaged:
				res.Managed++
			case ActionFailed:
				res.Failed++
			}
		}
	}
	return res, nil
}

func (o Options) one(ctx context.Context, c Cluster) ClusterResult {
	cr := ClusterResult{Cluster: c.Name}
	mode := ModeModern
	if o.Rollback {
		mode = ModeLegacy
	}
	if mode == ModeModern && !c.Proof.Passed && !o.Force {
		cr.Errors = append(cr.Errors, fmt.Sprintf("refusing to switch to %s: %s: %s (run verify until it passes, or --force)", ModeModern, ErrNotVerified, c.Proof.Why))
		return cr
	}
	source, target := o.From, o.To
	if source.Registry == "" {
		source = c.Proof.Source
	}
	if target.Registry == "" {
		target = c.Proof.Target
	}
	if o.Rollback && (source.Registry == "" || target.Registry == "") {
		// No report needed to go back: the record says where we came from.
		if rec, err := GetMode(ctx, c.Client, o.RecordNamespace, o.RecordName); err == nil {
			if l, err := imageref.ParseLocation(rec.Source); err == nil && source.Registry == "" {
				source = l
			}
			if l, err := imageref.ParseLocation(rec.Target); err == nil && target.Registry == "" {
				target = l
			}
		}
	}
	if o.Workloads {
		objs, errs := RewriteWorkloads(ctx, WorkloadOptions{
			Client: c.Client, Namespaces: o.Namespaces, Mapper: Mapper{From: source, To: target, Proof: c.Proof},
			Rollback: o.Rollback, PullSecret: o.PullSecret, Confirm: o.Confirm, IncludeManaged: o.IncludeManaged, Logger: o.Logger,
		})
		cr.Objects = objs
		if !o.Rollback {
			cr.Sources = sources(ctx, c.Client, objs, Mapper{From: source, To: target, Proof: c.Proof}, source, target)
		}
		for _, err := range errs {
			cr.Errors = append(cr.Errors, err.Error())
		}
		failed := 0
		for _, ob := range objs {
			if ob.Action == ActionFailed {
				failed++
				o.Logger.Error("workload not switched", "cluster", c.Name, "object", ob.Ref(), "err", ob.Error)
			}
		}
		if failed > 0 && !o.Rollback {
			// The record says modern only when the workloads point at the
			// target; a rerun retries what failed and then records it.
			cr.Errors = append(cr.Errors, fmt.Sprintf("%d workload(s) not switched: mode record left as it was; fix and run again", failed))
			return cr
		}
	}
	before, after, changed, err := SetMode(ctx, ModeOptions{
		Client: c.Client, Namespace: o.RecordNamespace, Name: o.RecordName, Mode: mode,
		Source: source.String(), Target: target.String(), Migration: o.Migration,
		Verified: c.Proof.Passed, Force: o.Force, Confirm: o.Confirm, Now: o.Now,
	})
	cr.Before, cr.After, cr.Changed = before, after, changed
	if err != nil {
		cr.Errors = append(cr.Errors, explain(err, "write", "configmap"))
	}
	return cr
}

// Write saves switch.json and switch.diff into dir.
func Write(dir string, r Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := artifacts.WriteJSON(filepath.Join(dir, ResultFile), r); err != nil {
		return err
	}
	if err := writeSources(dir, r); err != nil {
		return err
	}
	return artifacts.WriteFile(filepath.Join(dir, DiffFile), []byte(Diff(r)))
}

// Diff is the readable account of what changed (or would change).
func Diff(r Result) string {
	var b strings.Builder
	verb := "switched"
	if r.DryRun {
		verb = "would switch (dry run; --confirm applies)"
	}
	for _, c := range r.Clusters {
		fmt.Fprintf(&b, "# cluster %s: %s to %s\n", c.Cluster, verb, r.Mode)
		for _, e := range c.Errors {
			fmt.Fprintf(&b, "! %s\n", e)
		}
		if c.Changed {
			fmt.Fprintf(&b, "--- mode record: %s\n+++ mode record: %s (%s → %s)\n", orNone(c.Before.Mode), c.After.Mode, c.After.Source, c.After.Target)
		} else if c.Before.Mode != "" {
			fmt.Fprintf(&b, "= mode record: %s, unchanged\n", c.Before.Mode)
		}
		for _, ob := range c.Objects {
			fmt.Fprintf(&b, "\n%s %s/%s: %s\n", ob.Kind, ob.Namespace, ob.Name, ob.Action)
			for _, ch := range ob.Changes {
				fmt.Fprintf(&b, "-  %s: %s\n+  %s: %s\n", ch.Container, ch.From, ch.Container, ch.To)
			}
			if ob.PullSecret != "" {
				fmt.Fprintf(&b, "+  imagePullSecrets: %s\n", ob.PullSecret)
			}
			for _, u := range ob.Unproven {
				fmt.Fprintf(&b, "=  left alone: %s\n", u)
			}
			if ob.Owner != nil {
				fmt.Fprintf(&b, "   owner: %s\n", ownerLine(ob.Owner))
			}
			if ob.Note != "" {
				fmt.Fprintf(&b, "   note: %s\n", ob.Note)
			}
			if ob.Error != "" {
				fmt.Fprintf(&b, "!  %s\n", ob.Error)
			}
		}
		for _, s := range c.Sources {
			fmt.Fprintf(&b, "\n# source of %s (%s): change it in Git, not live\n", appLabel(&s), strings.Join(s.Objects, ", "))
			for _, im := range s.Images {
				fmt.Fprintf(&b, "+  images: %s → %s\n", im.Name, describeImage(im))
			}
			for _, v := range s.Values {
				fmt.Fprintf(&b, "-  values %s: %s\n+  values %s: %s\n", v.Path, v.From, v.Path, v.To)
			}
			if s.File != "" {
				fmt.Fprintf(&b, "   patch: %s\n", s.File)
			}
			if s.Error != "" {
				fmt.Fprintf(&b, "!  %s\n", s.Error)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// ownerLine: the manager and the other field managers.
func ownerLine(o *switchresult.Owner) string {
	var parts []string
	if o.GitOps() {
		parts = append(parts, fmt.Sprintf("%s (%s)", o.App(), o.Via))
	}
	if len(o.FieldManagers) > 0 {
		parts = append(parts, "field managers: "+strings.Join(o.FieldManagers, ", "))
	}
	return strings.Join(parts, "; ")
}

func describeImage(im switchresult.KustomizeImage) string {
	s := im.NewName
	if im.NewTag != "" {
		s += ":" + im.NewTag
	}
	if im.Digest != "" {
		s += "@" + im.Digest
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

package switchmode

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"

	"github.com/regmigrate/regmigrate/steps/owners"
	"github.com/regmigrate/regmigrate/steps/switchresult"
	"github.com/regmigrate/regmigrate/steps/workloads"
)

// Annotation keeps, on each rewritten object, what regmigrate changed: the
// original image of every container and any pull secret it added, so that
// a rollback restores exactly the original spec.
const Annotation = "regmigrate.io/original-images"

// Object actions in the result.
const (
	ActionRewritten     = "rewritten"
	ActionWouldRewrite  = "would-rewrite"
	ActionRestored      = "restored"
	ActionWouldRestore  = "would-restore"
	ActionUnchanged     = "unchanged"
	ActionFailed        = "failed"
	ActionCannotRewrite = "cannot-rewrite" // unowned ReplicaSets, Jobs and Pods: reported only
	ActionManaged       = "managed"        // a GitOps manager or Helm would put it back: left to its source (--include-managed rewrites it)
)

// WorkloadOptions for RewriteWorkloads.
type WorkloadOptions struct {
	Client     dynamic.Interface
	Namespaces []string // all when empty
	// Mapper maps legacy references to the target (forward).
	Mapper Mapper
	// Rollback restores what the annotation recorded instead.
	Rollback bool
	// PullSecret is added to imagePullSecrets of rewritten pod specs that
	// do not name it yet (the Secret itself must exist in each namespace).
	PullSecret string
	Confirm    bool
	// IncludeManaged rewrites objects that Argo CD, Flux or Helm manage
	// too (by default they are reported, and left to their source).
	IncludeManaged bool
	Logger         *slog.Logger
	// Backoff for conflicts (default: 6 tries from 20 ms).
	Backoff wait.Backoff
}

// listError: a kind that could not be listed in a namespace.
type listError struct {
	kind, namespace string
	err             error
}

func (e listError) Error() string {
	ns := e.namespace
	if ns == "" {
		ns = "all namespaces"
	}
	return fmt.Sprintf("listing %ss in %s: %s", e.kind, ns, explain(e.err, "list", e.kind))
}

// record is the annotation's content.
type record struct {
	Changes    []Change `json:"changes"`
	PullSecret string   `json:"pullSecretAdded,omitempty"`
}

// RewriteWorkloads rewrites (or, on rollback, restores) the image
// references of every workload in scope. One object's failure never stops
// the others: it is in the result. The error is for the scope (a kind that
// cannot be listed); the objects that could be listed are still done.
func RewriteWorkloads(ctx context.Context, o WorkloadOptions) ([]Object, []error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Backoff.Steps == 0 {
		o.Backoff = wait.Backoff{Steps: 6, Duration: 20 * time.Millisecond, Factor: 2, Jitter: 0.2}
	}
	namespaces := o.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	var out []Object
	var errs []error
	for _, ns := range namespaces {
		for _, k := range workloads.Kinds {
			list, err := o.Client.Resource(k.GVR).Namespace(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				errs = append(errs, listError{k.Name, ns, err})
				continue
			}
			for i := range list.Items {
				obj := &list.Items[i]
				if len(obj.GetOwnerReferences()) > 0 {
					continue // its owner's template is what changes
				}
				res, ok := o.one(ctx, k, obj)
				if ok {
					out = append(out, res)
				}
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Ref() < out[j].Ref() })
	return out, errs
}

// one handles one object; ok is false when the object has nothing to do
// with the migration.
func (o WorkloadOptions) one(ctx context.Context, k workloads.Kind, obj *unstructured.Unstructured) (Object, bool) {
	res := Object{Kind: k.Name, Namespace: obj.GetNamespace(), Name: obj.GetName()}
	plan, relevant := o.plan(k, obj, &res)
	if !relevant {
		return res, false
	}
	res.Owner = owners.Of(obj)
	if !k.Rewritable {
		if len(plan) > 0 || len(res.Unproven) > 0 {
			res.Action = ActionCannotRewrite
			res.Changes = plan
			res.Note = "not owned by a controller: its pods cannot be changed in place; recreate it with the target's images"
			if o.Rollback {
				res.Note = "not owned by a controller: recreate it with the legacy images"
			}
			return res, true
		}
		return res, false
	}
	if len(plan) == 0 {
		res.Action = ActionUnchanged
		return res, true
	}
	res.Changes = plan
	if res.Owner.GitOps() && !o.Rollback && !o.IncludeManaged {
		// A rollback restores what an earlier --include-managed changed.
		res.Action = ActionManaged
		res.Note = managedNote(res.Owner)
		return res, true
	}
	if !o.Confirm {
		res.Action = ActionWouldRewrite
		if o.Rollback {
			res.Action = ActionWouldRestore
		}
		if !o.Rollback && o.PullSecret != "" && !hasPullSecret(mustSpec(k, obj), o.PullSecret) {
			res.PullSecret = o.PullSecret
		}
		return res, true
	}
	// Apply, re-reading the object on a conflict.
	first := true
	err := retry.RetryOnConflict(o.Backoff, func() error {
		cur := obj
		if !first {
			fresh, err := o.Client.Resource(k.GVR).Namespace(obj.GetNamespace()).Get(ctx, obj.GetName(), metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur = fresh
			var tmp Object
			plan, _ = o.plan(k, cur, &tmp)
			res.Changes, res.Unproven, res.Note = plan, tmp.Unproven, tmp.Note
			if len(plan) == 0 {
				return nil // someone else did it
			}
		}
		first = false
		upd := cur.DeepCopy()
		added, err := o.apply(k, upd, plan)
		if err != nil {
			return err
		}
		if _, err := o.Client.Resource(k.GVR).Namespace(obj.GetNamespace()).Update(ctx, upd, metav1.UpdateOptions{FieldManager: "regmigrate"}); err != nil {
			if apierrors.IsConflict(err) {
				o.Logger.Info("conflict, retrying", "object", res.Ref())
			}
			return err
		}
		res.PullSecret = added
		return nil
	})
	switch {
	case err != nil:
		res.Action, res.Error = ActionFailed, explain(err, "update", k.Name)
	case len(res.Changes) == 0:
		res.Action = ActionUnchanged
	case o.Rollback:
		res.Action = ActionRestored
	default:
		res.Action = ActionRewritten
	}
	return res, true
}

// managedNote says why a managed object is left alone, and what to do.
func managedNote(ow *owners.Owner) string {
	var what string
	switch ow.Manager {
	case switchresult.ManagerArgoCD:
		what = "Argo CD application " + ow.Name + " (" + ow.Via + "): self-heal or the next sync would put the legacy images back; commit the kustomize images patch (gitops/) to its source"
	case switchresult.ManagerFluxKustomize:
		what = "Flux Kustomization " + ow.Namespace + "/" + ow.Name + " (" + ow.Via + "): the next reconciliation would put the legacy images back; commit the kustomize images patch (gitops/) to its source"
	case switchresult.ManagerFluxHelm:
		what = "Flux HelmRelease " + ow.Namespace + "/" + ow.Name + " (" + ow.Via + "): the next reconciliation would put the legacy images back; change the image values of the release"
	default:
		what = "Helm release " + ow.Namespace + "/" + ow.Name + " (" + ow.Via + "): the next helm upgrade would put the legacy images back; change the image values of the release"
	}
	return "managed by " + what + " (--include-managed rewrites it live anyway)"
}

// plan lists the changes one object needs.
func (o WorkloadOptions) plan(k workloads.Kind, obj *unstructured.Unstructured, res *Object) (changes []Change, relevant bool) {
	spec := mustSpec(k, obj)
	if spec == nil {
		return nil, false
	}
	if o.Rollback {
		rec, ok := readRecord(obj)
		if !ok {
			return nil, false
		}
		cur := images(spec)
		var notes []string
		for _, c := range rec.Changes {
			now, present := cur[c.Container]
			switch {
			case !present:
				notes = append(notes, c.Container+" is gone")
			case now == c.From:
				// already restored
			case now != c.To:
				notes = append(notes, fmt.Sprintf("%s changed since the switch (%s): left as is", c.Container, now))
			default:
				changes = append(changes, Change{Container: c.Container, From: c.To, To: c.From})
			}
		}
		res.Note = strings.Join(notes, "; ")
		return changes, true
	}
	for _, c := range workloads.Containers(spec) {
		to, ours, ok, why := o.Mapper.Map(c.Image)
		if !ours {
			continue
		}
		relevant = true
		if !ok {
			res.Unproven = append(res.Unproven, c.Image+": "+why)
			continue
		}
		changes = append(changes, Change{Container: c.ID, From: c.Image, To: to})
	}
	if _, ok := readRecord(obj); ok {
		relevant = true // switched before: reported as unchanged
	}
	return changes, relevant
}

// apply changes the object in memory: images, the pull secret, the
// annotation. It returns the pull secret it added.
func (o WorkloadOptions) apply(k workloads.Kind, obj *unstructured.Unstructured, changes []Change) (string, error) {
	spec := mustSpec(k, obj)
	want := map[string]Change{}
	for _, c := range changes {
		want[c.Container] = c
	}
	for _, field := range workloads.ContainerFields {
		cs, _, _ := unstructured.NestedSlice(spec, field)
		for _, c := range cs {
			m, _ := c.(map[string]any)
			name, _ := m["name"].(string)
			if ch, ok := want[field+"/"+name]; ok {
				m["image"] = ch.To
			}
		}
		if len(cs) > 0 {
			spec[field] = cs
		}
	}
	rec, _ := readRecord(obj) // the zero record when none
	added := ""
	if o.Rollback {
		if rec.PullSecret != "" {
			removePullSecret(spec, rec.PullSecret)
		}
		// What is left to restore (images changed since, left as is) keeps
		// no record: the rollback is as complete as it can be.
		annotations := obj.GetAnnotations()
		delete(annotations, Annotation)
		if len(annotations) == 0 {
			unstructured.RemoveNestedField(obj.Object, "metadata", "annotations")
		} else {
			obj.SetAnnotations(annotations)
		}
	} else {
		if o.PullSecret != "" && !hasPullSecret(spec, o.PullSecret) {
			ps, _, _ := unstructured.NestedSlice(spec, "imagePullSecrets")
			spec["imagePullSecrets"] = append(ps, map[string]any{"name": o.PullSecret})
			added = o.PullSecret
		}
		// Keep the first original of each container (a second switch after
		// new images were proven adds to it).
		at := map[string]int{}
		for i, c := range rec.Changes {
			at[c.Container] = i
		}
		for _, c := range changes {
			if i, ok := at[c.Container]; ok {
				rec.Changes[i].To = c.To
			} else {
				rec.Changes = append(rec.Changes, c)
			}
		}
		if added != "" {
			rec.PullSecret = added
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return "", err
		}
		annotations := obj.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[Annotation] = string(b)
		obj.SetAnnotations(annotations)
	}
	if err := unstructured.SetNestedMap(obj.Object, spec, k.Spec...); err != nil {
		return "", err
	}
	return added, nil
}

func images(spec map[string]any) map[string]string {
	m := map[string]string{}
	for _, c := range workloads.Containers(spec) {
		m[c.ID] = c.Image
	}
	return m
}

func mustSpec(k workloads.Kind, obj *unstructured.Unstructured) map[string]any {
	spec, ok, _ := unstructured.NestedMap(obj.Object, k.Spec...)
	if !ok {
		return nil
	}
	return spec
}

func readRecord(obj *unstructured.Unstructured) (record, bool) {
	v, ok := obj.GetAnnotations()[Annotation]
	if !ok {
		return record{}, false
	}
	var r record
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return record{}, false
	}
	return r, true
}

func hasPullSecret(spec map[string]any, name string) bool {
	ps, _, _ := unstructured.NestedSlice(spec, "imagePullSecrets")
	for _, p := range ps {
		if m, _ := p.(map[string]any); m["name"] == name {
			return true
		}
	}
	return false
}

func removePullSecret(spec map[string]any, name string) {
	ps, _, _ := unstructured.NestedSlice(spec, "imagePullSecrets")
	var keep []any
	for _, p := range ps {
		if m, _ := p.(map[string]any); m["name"] != name {
			keep = append(keep, p)
		}
	}
	if len(keep) == 0 {
		delete(spec, "imagePullSecrets")
	} else {
		spec["imagePullSecrets"] = keep
	}
}

// explain turns an API error into what to do about it.
func explain(err error, verb, kind string) string {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Sprintf("%v: the identity switch-mode runs as needs get, list and update on deployments, statefulsets, daemonsets (apps) and cronjobs (batch), and list on replicasets, jobs and pods (manifests/ has the ClusterRole regmigrate-switch-mode); it could not %s %ss", err, verb, kind)
	case apierrors.IsConflict(err):
		return fmt.Sprintf("%v: still conflicting after retries (something keeps changing it); run again", err)
	case apierrors.IsInvalid(err):
		return fmt.Sprintf("%v: the apiserver refused the change", err)
	}
	return err.Error()
}

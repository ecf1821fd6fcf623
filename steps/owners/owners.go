// Package owners says who manages a Kubernetes object: Argo CD (its
// tracking annotation, or its instance label), Flux (the labels of its
// kustomize and helm controllers), Helm (its release annotations), and the
// other managers of the object's spec (managedFields). A GitOps manager or
// Helm puts its own spec back: a live change to such an object lasts until
// the next sync.
package owners

import (
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/regmigrate/regmigrate/steps/switchresult"
)

// Owner is who manages an object (in switchresult so that switch.json
// readers link no Kubernetes).
type Owner = switchresult.Owner

// The labels and annotations the managers set.
const (
	ArgoCDTrackingID     = "argocd.argoproj.io/tracking-id"
	InstanceLabel        = "app.kubernetes.io/instance"
	ManagedByLabel       = "app.kubernetes.io/managed-by"
	FluxKustomizeName    = "kustomize.toolkit.fluxcd.io/name"
	FluxKustomizeNS      = "kustomize.toolkit.fluxcd.io/namespace"
	FluxHelmName         = "helm.toolkit.fluxcd.io/name"
	FluxHelmNS           = "helm.toolkit.fluxcd.io/namespace"
	HelmReleaseName      = "meta.helm.sh/release-name"
	HelmReleaseNamespace = "meta.helm.sh/release-namespace"
)

// fieldManagers: the managedFields managers of the GitOps tools and Helm,
// for objects they applied server-side without their labels.
var fieldManagers = map[string]string{
	"argocd-controller":    switchresult.ManagerArgoCD,
	"kustomize-controller": switchresult.ManagerFluxKustomize,
	"helm-controller":      switchresult.ManagerFluxHelm,
	"helm":                 switchresult.ManagerHelm,
}

// Self is regmigrate's own field manager: not an owner.
const Self = "regmigrate"

// Of says who manages obj. The zero Owner (nil) when nobody but
// regmigrate has written its spec.
func Of(obj *unstructured.Unstructured) *Owner {
	o := &Owner{FieldManagers: specManagers(obj)}
	a, l := obj.GetAnnotations(), obj.GetLabels()
	switch {
	case a[ArgoCDTrackingID] != "":
		// <app>:<group>/<kind>:<namespace>/<name>; the app is
		// <namespace>_<name> for Applications outside Argo CD's namespace.
		app, _, _ := strings.Cut(a[ArgoCDTrackingID], ":")
		o.Manager, o.Via = switchresult.ManagerArgoCD, "annotation "+ArgoCDTrackingID
		if ns, name, ok := strings.Cut(app, "_"); ok {
			o.Namespace, o.Name = ns, name
		} else {
			o.Name = app
		}
	case l[FluxKustomizeName] != "":
		o.Manager, o.Name, o.Namespace, o.Via = switchresult.ManagerFluxKustomize, l[FluxKustomizeName], l[FluxKustomizeNS], "label "+FluxKustomizeName
	case l[FluxHelmName] != "":
		o.Manager, o.Name, o.Namespace, o.Via = switchresult.ManagerFluxHelm, l[FluxHelmName], l[FluxHelmNS], "label "+FluxHelmName
	case a[HelmReleaseName] != "" || l[ManagedByLabel] == "Helm":
		o.Manager, o.Name, o.Namespace = switchresult.ManagerHelm, a[HelmReleaseName], a[HelmReleaseNamespace]
		o.Via = "annotation " + HelmReleaseName
		if o.Name == "" {
			o.Name, o.Via = l[InstanceLabel], "label "+ManagedByLabel+"=Helm"
		}
		if o.Namespace == "" {
			o.Namespace = obj.GetNamespace()
		}
	case l[InstanceLabel] != "" && l[ManagedByLabel] == "":
		// Argo CD's default (label) tracking; a chart's own instance label
		// comes with managed-by.
		o.Manager, o.Name, o.Via = switchresult.ManagerArgoCD, l[InstanceLabel], "label "+InstanceLabel
	default:
		for _, m := range o.FieldManagers {
			if mgr, ok := fieldManagers[m]; ok {
				o.Manager, o.Via = mgr, "field manager "+m
				if mgr == switchresult.ManagerHelm || mgr == switchresult.ManagerFluxHelm {
					o.Name, o.Namespace = l[InstanceLabel], obj.GetNamespace()
				}
				break
			}
		}
	}
	if o.Manager == "" && len(o.FieldManagers) == 0 {
		return nil
	}
	return o
}

// specManagers lists the managers of obj's spec (status-only managers,
// such as controllers writing status, are not owners), sorted.
func specManagers(obj *unstructured.Unstructured) []string {
	seen := map[string]bool{}
	for _, mf := range obj.GetManagedFields() {
		if mf.Subresource != "" || mf.Manager == "" || mf.Manager == Self || seen[mf.Manager] {
			continue
		}
		if mf.FieldsV1 != nil && !strings.Contains(string(mf.FieldsV1.Raw), `"f:spec"`) {
			continue // metadata only (labels, annotations, finalizers)
		}
		seen[mf.Manager] = true
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

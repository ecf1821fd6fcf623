// Package switchresult is switch.json, the cutover's record, without a
// Kubernetes client: switch-mode (steps/switchmode) writes it, the report
// (steps/report) reads it.
package switchresult

import (
	"fmt"
	"time"

	"github.com/regmigrate/regmigrate/steps/contract"
)

// Modes, as seed 000's `ac config set-registry-mode`.
const (
	ModeLegacy = "legacy"
	ModeModern = "modern"
)

// Change is one container's image, before and after.
type Change struct {
	Container string `json:"container"` // containers/NAME or initContainers/NAME
	From      string `json:"from"`
	To        string `json:"to"`
}

// Object is what happened to one workload.
type Object struct {
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Name       string   `json:"name"`
	Action     string   `json:"action"`
	Changes    []Change `json:"changes,omitempty"`
	PullSecret string   `json:"pullSecretAdded,omitempty"`
	// Unproven: images on the legacy registry left alone because verify did
	// not prove them on the target.
	Unproven []string `json:"unproven,omitempty"`
	// Note: why an image was left alone on rollback, or what to do.
	Note  string `json:"note,omitempty"`
	Error string `json:"error,omitempty"`
	// Owner: who manages the object (Argo CD, Flux, Helm, other field
	// managers), when anyone does.
	Owner *Owner `json:"owner,omitempty"`
}

// Managers an Owner names.
const (
	ManagerArgoCD        = "argocd"
	ManagerFluxKustomize = "flux-kustomize"
	ManagerFluxHelm      = "flux-helm"
	ManagerHelm          = "helm"
)

// Owner is who manages an object: a GitOps manager or Helm that puts its
// own spec back (Manager, with the application or release), and the other
// field managers of its spec (managedFields).
type Owner struct {
	// Manager: argocd, flux-kustomize, flux-helm or helm; empty when no
	// GitOps tool or Helm manages the object.
	Manager string `json:"manager,omitempty"`
	// Name and Namespace of the Argo CD Application, Flux Kustomization or
	// HelmRelease, or Helm release.
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Via: the label, annotation or field manager that says so.
	Via string `json:"via,omitempty"`
	// FieldManagers: every manager of the object's spec in managedFields
	// (kubectl, controllers, operators), regmigrate excepted.
	FieldManagers []string `json:"fieldManagers,omitempty"`
}

// GitOps reports whether a live change would be undone by the manager
// (a sync, a reconciliation or the next helm upgrade).
func (o *Owner) GitOps() bool { return o != nil && o.Manager != "" }

// App is the application or release as "manager namespace/name".
func (o *Owner) App() string {
	if o == nil || o.Manager == "" {
		return ""
	}
	if o.Namespace == "" {
		return o.Manager + " " + o.Name
	}
	return o.Manager + " " + o.Namespace + "/" + o.Name
}

// Record is what the ConfigMap says.
type Record struct {
	Mode, PreviousMode string
	Source, Target     string
	Migration          string
	Time               string
}

// ClusterResult is what happened in one cluster.
type ClusterResult struct {
	Cluster string   `json:"cluster"`
	Before  Record   `json:"before"`
	After   Record   `json:"after"`
	Changed bool     `json:"modeChanged"`
	Objects []Object `json:"objects"`
	// Sources: for the objects Argo CD, Flux or Helm manage, the change
	// their source needs, per application or release.
	Sources []Source `json:"sources,omitempty"`
	// Errors: the cluster could not be fully handled (a refused switch, a
	// kind that could not be listed, the record that could not be written).
	Errors []string `json:"errors,omitempty"`
}

// Source is the change one application's (or release's) source needs so
// that its manager itself deploys the target's images.
type Source struct {
	Manager   string   `json:"manager"`
	Name      string   `json:"name"`
	Namespace string   `json:"namespace,omitempty"`
	Objects   []string `json:"objects"` // KIND/NAMESPACE/NAME
	// Images: the kustomize images overrides (Argo CD and Flux
	// Kustomizations), written as a kustomize Component in File.
	Images []KustomizeImage `json:"images,omitempty"`
	// Values: the Helm values that carry legacy images (Helm releases and
	// Flux HelmReleases).
	Values []HelmValue `json:"values,omitempty"`
	// File: the committable patch, relative to switch.json's folder.
	File string `json:"file,omitempty"`
	// Error: what could not be worked out (the images are still listed in
	// the objects' changes).
	Error string `json:"error,omitempty"`
}

// KustomizeImage is one entry of a kustomization's images: field.
type KustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

// HelmValue is one value of a release that names a legacy image (or the
// legacy registry), and what it should say.
type HelmValue struct {
	Path string `json:"path"` // image.repository, sidecar.image, ...
	From string `json:"from"`
	To   string `json:"to"`
}

// Result is switch.json.
type Result struct {
	Mode     string          `json:"mode"`
	DryRun   bool            `json:"dryRun"`
	Forced   bool            `json:"forced,omitempty"`
	Time     time.Time       `json:"time"`
	Clusters []ClusterResult `json:"clusters"`
	// Counts over every cluster.
	Rewritten int `json:"rewritten"`
	Restored  int `json:"restored"`
	Pending   int `json:"pending"` // would change (dry run)
	Unchanged int `json:"unchanged"`
	Reported  int `json:"reported"` // cannot be rewritten in place
	Managed   int `json:"managed"`  // left to their GitOps manager (--include-managed rewrites them)
	Failed    int `json:"failed"`
	Unproven  int `json:"unproven"` // legacy images left alone: not proven on the target
}

// ExitCode: 0 when every cluster was switched (or would be), 1 otherwise.
func (r Result) ExitCode() int {
	if r.Failed > 0 {
		return contract.ExitFailed
	}
	for _, c := range r.Clusters {
		if len(c.Errors) > 0 {
			return contract.ExitFailed
		}
	}
	return contract.ExitOK
}

// Summary is the one line switch-mode prints last.
func (r Result) Summary() string {
	what := fmt.Sprintf("%d rewritten", r.Rewritten)
	if r.Mode == ModeLegacy {
		what = fmt.Sprintf("%d restored", r.Restored)
	}
	if r.DryRun {
		what = fmt.Sprintf("%d would change (dry run: nothing written; --confirm applies)", r.Pending)
	}
	managed := ""
	if r.Managed > 0 {
		managed = fmt.Sprintf(", %d left to Argo CD, Flux or Helm (their source changes: gitops/; --include-managed rewrites them live)", r.Managed)
	}
	return fmt.Sprintf("switch-mode %s: %d cluster(s), workloads: %s, %d unchanged, %d to recreate by hand%s, %d failed, %d legacy images not proven on the target",
		r.Mode, len(r.Clusters), what, r.Unchanged, r.Reported, managed, r.Failed, r.Unproven)
}

// Ref is kind/namespace/name.
func (o Object) Ref() string { return o.Kind + "/" + o.Namespace + "/" + o.Name }

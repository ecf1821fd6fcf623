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
	// Errors: the cluster could not be fully handled (a refused switch, a
	// kind that could not be listed, the record that could not be written).
	Errors []string `json:"errors,omitempty"`
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
	return fmt.Sprintf("switch-mode %s: %d cluster(s), workloads: %s, %d unchanged, %d to recreate by hand, %d failed, %d legacy images not proven on the target",
		r.Mode, len(r.Clusters), what, r.Unchanged, r.Reported, r.Failed, r.Unproven)
}

// Ref is kind/namespace/name.
func (o Object) Ref() string { return o.Kind + "/" + o.Namespace + "/" + o.Name }

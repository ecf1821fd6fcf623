// Package workflows composes the Argo objects that run a migration on a
// cluster (Workflow, CronWorkflow, the cutover Workflow) from a Plan, as
// typed v1alpha1 objects, and validates them with Argo's own validator.
//
// The pipeline is export → one shard DAG per shard (mirror → backfill →
// verify), fanned out with withParam over export's shard-ids.json → report.
// Shard contents travel as key-only artifacts in the workflow's artifact
// repository, under one run directory per workflow with the same layout as
// a local run directory; only shard ids travel as parameters. The Workflow
// therefore does not grow with the number of images, namespaces or shards.
package workflows

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/regmigrate/regmigrate/steps/contract"
)

// Defaults.
const (
	DefaultImagePrefix      = "ghcr.io/regmigrate"
	DefaultServiceAccount   = "regmigrate"
	DefaultRetryLimit       = 3
	DefaultRetryBackoff     = "30s"
	DefaultRetryFactor      = 2
	DefaultRetryMaxDuration = "1h"
	DefaultStartingDeadline = 300 // seconds a missed cron run may start late
)

// Paths inside the step pods. The root filesystem is read-only: everything
// a step writes goes to emptyDirs mounted at WorkDir and TmpDir.
const (
	WorkDir    = "/work"
	RunDir     = WorkDir + "/run"    // a run directory: export writes it, report reads it
	ShardDir   = WorkDir + "/shard"  // one shard's folder (shards/<id>/ of the run directory)
	InputsDir  = WorkDir + "/inputs" // image lists and rules
	TmpDir     = "/tmp"
	OutputsDir = TmpDir + "/outputs" // REGMIGRATE_OUTPUTS_DIR: counts read as output parameters
	AuthDir    = "/var/run/regmigrate/auth"
	BinDir     = "/usr/local/bin"
	UID        = 65532
)

// Plan is everything the generator needs to know to compose the objects.
// It is built from the migration spec and the generate command's flags.
type Plan struct {
	// Name of the migration: the Workflow's generateName prefix and the
	// CronWorkflow's name. A DNS label.
	Name string
	// Namespace the objects are created in (empty: the submitter's).
	Namespace string

	Source, Target string   // HOST[:PORT][/NAMESPACE]; Source may be empty with image lists
	Insecure       []string // registries (host[:port]) reachable over plain HTTP / unverified TLS

	// Step images are ImagePrefix/<step>:ImageTag (default tag: contract.Version).
	ImagePrefix, ImageTag string

	// ArtifactRepositoryRef names the artifact repository (ConfigMap and
	// key); nil: the namespace's or controller's default.
	ArtifactRepositoryRef *ArtifactRepositoryRef
	// CredentialsSecret is a kubernetes.io/dockerconfigjson Secret mounted at
	// AuthDir (as config.json) with DOCKER_CONFIG pointing there. Empty: anonymous.
	CredentialsSecret string
	ServiceAccount    string

	Parallelism      int64 // pods at once in the whole workflow (0: no bound)
	ShardParallelism int64 // shards at once (0: no bound)
	Retry            Retry

	Scope  Scope
	Shards Shards
	Copy   Copy

	Strategy   string    // copy or reuse-storage (empty: the step's default)
	Backfill   *Backfill // nil: no cluster named, no backfill
	VerifyMode string    // auto (default), full or digest

	// CronWorkflow only.
	Timezone                string // IANA name; empty: the controller's
	StartingDeadlineSeconds int64  // 0: DefaultStartingDeadline
}

// ArtifactRepositoryRef names an artifact repository ConfigMap and key.
type ArtifactRepositoryRef struct{ ConfigMap, Key string }

// Retry is the steps' retryStrategy: only ExitRetryable is retried.
type Retry struct {
	Limit       int    // retries after the first attempt
	Backoff     string // first wait, e.g. "30s"
	Factor      int
	MaxDuration string
}

// Scope is where export reads the images from. Lists and Rules are keys in
// the artifact repository (the files uploaded next to the runs), not local
// paths: a pod cannot read the generating machine's files.
type Scope struct {
	Lists                                []string
	Rules                                string
	IncludeNamespaces, ExcludeNamespaces []string
	RepoRegex, ExcludeRepoRegex          string
	TagRegex, ExcludeTagRegex            string
}

// Shards are export's sharding knobs (0: the step's default).
type Shards struct{ Size, MinSize, Max int }

// Copy tunes the copy (0/empty: the step's default).
type Copy struct {
	Jobs, MaxPerRegistry, Retries int
	IdleTimeout                   string // a Go duration; "" is the step's default
	Platforms                     []string
	NoReferrers, NoAttachments    bool
}

// Backfill is the cluster's Image API, reached in-cluster with the
// workflow's ServiceAccount.
type Backfill struct {
	ImageAPI string // GROUP/VERSION; empty: discovered
	QPS      float32
	Burst    int
}

// withDefaults fills what is unset and checks what cannot be guessed.
func (p Plan) withDefaults() (Plan, error) {
	var errs []error
	if p.Name == "" {
		p.Name = "regmigrate"
	}
	if p.Target == "" {
		errs = append(errs, errors.New("plan: the target registry is empty"))
	}
	if p.Source == "" && len(p.Scope.Lists) == 0 && p.Scope.Rules == "" {
		errs = append(errs, errors.New("plan: neither a source registry nor image lists"))
	}
	if p.ImagePrefix == "" {
		p.ImagePrefix = DefaultImagePrefix
	}
	p.ImagePrefix = strings.TrimSuffix(p.ImagePrefix, "/")
	if p.ImageTag == "" {
		p.ImageTag = contract.Version
	}
	if p.ServiceAccount == "" {
		p.ServiceAccount = DefaultServiceAccount
	}
	if p.Retry == (Retry{}) {
		p.Retry = Retry{Limit: DefaultRetryLimit, Backoff: DefaultRetryBackoff, Factor: DefaultRetryFactor, MaxDuration: DefaultRetryMaxDuration}
	}
	if p.Retry.Limit < 0 || p.Parallelism < 0 || p.ShardParallelism < 0 {
		errs = append(errs, errors.New("plan: retry limit and parallelism must not be negative"))
	}
	if p.StartingDeadlineSeconds == 0 {
		p.StartingDeadlineSeconds = DefaultStartingDeadline
	}
	if p.ArtifactRepositoryRef != nil && p.ArtifactRepositoryRef.Key == "" && p.ArtifactRepositoryRef.ConfigMap == "" {
		p.ArtifactRepositoryRef = nil
	}
	return p, errors.Join(errs...)
}

// image is a step's image reference.
func (p Plan) image(step string) string {
	return fmt.Sprintf("%s/%s:%s", p.ImagePrefix, step, p.ImageTag)
}

// inputPath is where an input list is placed in the export pod; the index
// keeps two lists with the same base name apart.
func inputPath(i int, key string) string {
	return fmt.Sprintf("%s/%d-%s", InputsDir, i, path.Base(key))
}

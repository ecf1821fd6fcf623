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
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/throttle"
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

	// DefaultStepDeadline bounds each attempt of a step pod (its
	// activeDeadlineSeconds): a shard of 500 images of 2 GiB each at
	// 50 MiB/s takes under 6 hours. Stalled requests end sooner (the
	// steps' idle timeout); this ends what nothing else would.
	DefaultStepDeadline = 6 * time.Hour
	// DefaultWorkflowDeadline bounds a whole Workflow, the cutover's wait
	// for its approval included: a weekend.
	DefaultWorkflowDeadline = 72 * time.Hour
	// A finished Workflow object is deleted this long after it succeeded
	// or failed (ttlStrategy); the workflow archive and the audit bundle
	// in the artifact repository keep it. A failed one stays longer: it is
	// what `argo retry` and the UI's Retry act on.
	DefaultTTLAfterSuccess = 7 * 24 * time.Hour
	DefaultTTLAfterFailure = 14 * 24 * time.Hour
)

// DefaultResources are every step container's requests and limits unless
// the plan says otherwise, from the peak RSS of the step binaries measured
// on a realistic shard (README, "Pod resources"): the memory request is
// above what a step of a 500-image shard uses, the limit leaves room for a
// shard several times that size; no CPU limit (a copy throttled by a CPU
// quota only takes longer).
var DefaultResources = corev1.ResourceRequirements{
	Requests: corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("100m"),
		corev1.ResourceMemory: resource.MustParse("128Mi"),
	},
	Limits: corev1.ResourceList{
		corev1.ResourceMemory: resource.MustParse("512Mi"),
	},
}

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

	// Step images are ImagePrefix/<step>:ImageTag. The default tag is
	// contract.Version when it is a release; a development build has no
	// default (ErrNoImageTag): its images were never published.
	ImagePrefix, ImageTag string

	// ArtifactRepositoryRef names the artifact repository (ConfigMap and
	// key); nil: the namespace's or controller's default.
	ArtifactRepositoryRef *ArtifactRepositoryRef
	// CredentialsSecret is a kubernetes.io/dockerconfigjson Secret mounted at
	// AuthDir (as config.json) with DOCKER_CONFIG pointing there. Empty: anonymous.
	CredentialsSecret string
	// CertFiles are the files of the spec's auth.certsDir (containerd's
	// certs.d layout: HOST[:PORT]/ca.crt, client.cert, client.key), paths
	// relative to it. CredentialsSecret holds each under CertKey(path); the
	// steps read them from AuthDir/certs.d (--certs-dir).
	CertFiles      []string
	ServiceAccount string
	// Keychains are the steps' --keychain HOST=KIND[:REGION[:ACCOUNT]]:
	// the registries whose keychain the spec names (steps/cloudauth); the
	// others get theirs by host. A cloud keychain uses the pod's
	// ServiceAccount identity (IRSA, GKE or Azure workload identity): no
	// CredentialsSecret is needed for it.
	Keychains []string
	// ECR: an ECR target's repositories, created by mirror-shard before
	// it copies.
	ECR ECRRepositories

	Parallelism      int64 // pods at once in the whole workflow (0: no bound)
	ShardParallelism int64 // shards at once (0: no bound)
	Retry            Retry

	Scope  Scope
	Shards Shards
	Copy   Copy
	// Throttles are each registry's limits in total (requests/s,
	// bytes/s); every pod gets its share (throttle.go). Hub: a Docker Hub
	// source.
	Throttles map[string]throttle.Limits
	Hub       *Hub

	// Layout is the volume of an OCI image layout as the target (or the
	// source): required when Target (or Source) is an oci:DIR.
	Layout *LayoutVolume

	Strategy   string    // copy (default) or reuse-storage: the strategy parameter's default
	Backfill   *Backfill // nil: no cluster named, no backfill
	VerifyMode string    // auto (default), full or digest: the verify-mode parameter's default

	// Pods: every step container's requests and limits (zero:
	// DefaultResources), or a step's own (by step template name, one of
	// StepTemplates); the pods' PriorityClass (empty: the cluster's
	// default).
	Resources         corev1.ResourceRequirements
	StepResources     map[string]corev1.ResourceRequirements
	PriorityClassName string

	// Limits in time (0: the defaults): each step pod's attempt, the whole
	// Workflow, and how long a finished Workflow object stays.
	StepDeadline, WorkflowDeadline   time.Duration
	TTLAfterSuccess, TTLAfterFailure time.Duration

	// ClusterScope: the migration's template is a ClusterWorkflowTemplate
	// (ClusterTemplate), which FromTemplate and CronFromTemplate reference
	// with clusterScope.
	ClusterScope bool

	// Notify: the exit handler posting each Workflow's summary to a
	// webhook (nil: none).
	Notify *Notify
	// ApprovalTimeout: how long the cutover's approval waits for a
	// decision (0: DefaultApprovalTimeout); past it, it ends rejected.
	ApprovalTimeout time.Duration

	// CronWorkflow only.
	Timezone                string // IANA name; empty: the controller's
	StartingDeadlineSeconds int64  // 0: DefaultStartingDeadline
}

// StepTemplates are the templates whose pods run a step binary, by the
// names the UI shows; Plan.StepResources is keyed by them.
var StepTemplates = []string{tmplExport, tmplMirror, tmplBackfill, tmplVerify, tmplReport, tmplRecord, tmplSwitch, tmplSwitchBack, tmplCheck, tmplNotify, tmplPack}

// ArtifactRepositoryRef names an artifact repository ConfigMap and key.
type ArtifactRepositoryRef struct{ ConfigMap, Key string }

// Retry is the steps' retryStrategy: only ExitRetryable is retried.
type Retry struct {
	Limit       int    // retries after the first attempt
	Backoff     string // first wait, e.g. "30s"
	Factor      int
	MaxDuration string
}

// Scope is where export reads the images from. Lists and Rules are the
// files' contents: they travel inside the Workflow (raw input artifacts of
// the export step), since a pod cannot read the generating machine's files.
type Scope struct {
	Lists                                []Input
	Rules                                *Input
	IncludeNamespaces, ExcludeNamespaces []string
	RepoRegex, ExcludeRepoRegex          string
	TagRegex, ExcludeTagRegex            string
}

// Input is a file of the generating machine carried inside the Workflow.
type Input struct {
	Name string // the file's base name (kept readable in the pod's path)
	Data string
}

// MaxInlineInputs bounds the image lists and rules carried inside the
// Workflow, counted as they are stored (JSON-encoded). Argo hands a pod its
// template in the ARGO_TEMPLATE environment variable; above 128 KiB the
// controller moves it into a ConfigMap it creates, which its stock RBAC
// (configmaps: get, list, watch) refuses. 100 KiB keeps the export step's
// template under that with room for the artifact repository's location,
// and the Workflow (the spec, plus the export node's inputs per attempt in
// its status) far under etcd's 1.5 MiB request limit.
const MaxInlineInputs = 100 << 10

// InputsAdvice says what to do when the lists and rules do not fit.
const InputsAdvice = "list repositories rather than tags (a line ns/repo copies every tag), " +
	"split the migration into several specs with a part of the lists each, " +
	"or use the source catalog with filters (namespaces, repository and tag expressions)"

// ErrInputsTooLarge: the image lists and rules do not fit in the Workflow.
var ErrInputsTooLarge = errors.New("the image lists and rules are too large to travel inside the Workflow")

// ErrNoImageTag: no step image tag was given and this build's version is
// no release, so there is no published tag to default to.
var ErrNoImageTag = errors.New("no tag for the step images, and this is a development build whose images were never published")

// Shards are export's sharding knobs (0: the step's default; Max 0:
// DefaultMaxShards).
type Shards struct{ Size, MinSize, Max int }

// The Workflow's size at scale. Each shard adds a fixed number of nodes to
// the Workflow's status (NodesPerShard): a 100,000-image scope cut by
// namespace alone (5,000 namespaces packed 50 images at a time) would make
// 2,000 shards, over 10,000 nodes and some 15 MB of status, past what
// Argo stores in one object (1 MiB, its nodes compressed) and past the few
// thousand nodes a controller handles comfortably. So export is told to
// cut at most DefaultMaxShards shards: a bigger scope makes bigger shards
// (namespaces kept whole and in order, an even spread by image count),
// not more of them. MaxShardsCeiling bounds what a spec may ask for.
const (
	DefaultMaxShards = 200
	MaxShardsCeiling = 1000
	// StatusBytesPerNode is what one node takes in the Workflow's status
	// (JSON), at most, as `make e2e` measures it on the real controller
	// (scenario 1 fails if a node grows past it).
	StatusBytesPerNode = 2048
)

// NodesPerShard is how many nodes one shard adds to the Workflow's
// status: its DAG node, and per step (mirror, backfill when a cluster is
// named, verify) the retry node and its pod's node; a retried attempt adds
// one more.
func (p Plan) NodesPerShard() int {
	steps := 2 // mirror, verify
	if p.Backfill != nil {
		steps++ // backfill
	}
	return 1 + 2*steps
}

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
	if p.Source == "" && len(p.Scope.Lists) == 0 && p.Scope.Rules == nil {
		errs = append(errs, errors.New("plan: neither a source registry nor image lists"))
	}
	if p.ImagePrefix == "" {
		p.ImagePrefix = DefaultImagePrefix
	}
	p.ImagePrefix = strings.TrimSuffix(p.ImagePrefix, "/")
	if p.ImageTag == "" && contract.IsRelease(contract.Version) {
		p.ImageTag = contract.Version
	}
	if p.ImageTag == "" {
		errs = append(errs, fmt.Errorf("plan: %w (version %q)", ErrNoImageTag, contract.Version))
	} else if !imageTag.MatchString(p.ImageTag) {
		errs = append(errs, fmt.Errorf("plan: step image tag %q: want letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-'", p.ImageTag))
	}
	if err := p.Scope.checkInputs(); err != nil {
		errs = append(errs, err)
	}
	if err := p.checkLayout(); err != nil {
		errs = append(errs, err)
	}
	if p.Layout != nil {
		l := *p.Layout
		p.Layout = &l
	}
	if p.writesLayout() && p.VerifyMode == "" {
		p.VerifyMode = verifyFull // every blob written to the volume read and hashed again, as a local run does
	}
	if p.Strategy != "" && !slices.Contains(Strategies, p.Strategy) {
		errs = append(errs, fmt.Errorf("plan: strategy %q: want one of %s", p.Strategy, strings.Join(Strategies, ", ")))
	}
	if p.VerifyMode != "" && !slices.Contains(VerifyModes, p.VerifyMode) {
		errs = append(errs, fmt.Errorf("plan: verify mode %q: want one of %s", p.VerifyMode, strings.Join(VerifyModes, ", ")))
	}
	if p.ServiceAccount == "" {
		p.ServiceAccount = DefaultServiceAccount
	}
	switch {
	case p.Shards.Max == 0:
		p.Shards.Max = DefaultMaxShards
	case p.Shards.Max > MaxShardsCeiling:
		errs = append(errs, fmt.Errorf("plan: shards.max %d: a Workflow of that many shards holds about %d nodes in its status, "+
			"past what one Argo Workflow comfortably carries; at most %d (a bigger scope makes bigger shards), "+
			"or split the migration into several specs with a part of the namespaces each", p.Shards.Max, p.Shards.Max*p.NodesPerShard(), MaxShardsCeiling))
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
	if p.Resources.Requests == nil && p.Resources.Limits == nil {
		p.Resources = DefaultResources
	}
	for step := range p.StepResources {
		if !slices.Contains(StepTemplates, step) {
			errs = append(errs, fmt.Errorf("plan: resources of step %q: no such step (steps: %s)", step, strings.Join(StepTemplates, ", ")))
		}
	}
	for _, d := range []struct {
		what string
		v    *time.Duration
		def  time.Duration
	}{
		{"step deadline", &p.StepDeadline, DefaultStepDeadline},
		{"workflow deadline", &p.WorkflowDeadline, DefaultWorkflowDeadline},
		{"ttl after success", &p.TTLAfterSuccess, DefaultTTLAfterSuccess},
		{"ttl after failure", &p.TTLAfterFailure, DefaultTTLAfterFailure},
	} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < time.Second || *d.v > maxSeconds*time.Second:
			errs = append(errs, fmt.Errorf("plan: %s %s: want between 1s and %s", d.what, *d.v, maxSeconds*time.Second))
		}
	}
	if p.Notify != nil {
		n := *p.Notify
		p.Notify = &n
	}
	errs = append(errs, p.checkObserve()...)
	if err := p.checkThrottles(); err != nil {
		errs = append(errs, err)
	}
	return p, errors.Join(errs...)
}

// maxSeconds: Argo keeps the TTLs as int32 seconds (68 years).
const maxSeconds = 1<<31 - 1

// seconds is d in whole seconds, at least 1.
func seconds(d time.Duration) int64 { return max(1, int64(d/time.Second)) }

// imageTag is the OCI distribution spec's tag grammar.
var imageTag = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// image is a step's image reference.
func (p Plan) image(step string) string {
	return fmt.Sprintf("%s/%s:%s", p.ImagePrefix, step, p.ImageTag)
}

// inputs are the lists, then the rules.
func (s Scope) inputs() []Input {
	in := append([]Input(nil), s.Lists...)
	if s.Rules != nil {
		in = append(in, *s.Rules)
	}
	return in
}

// checkInputs refuses inputs that do not fit (MaxInlineInputs) and
// content Argo would take for its own expressions.
func (s Scope) checkInputs() error {
	var errs []error
	total := 0
	var sizes []string
	for _, in := range s.inputs() {
		b, _ := json.Marshal(in.Data)
		n := len(b) - 2 // the quotes
		total += n
		sizes = append(sizes, fmt.Sprintf("%s %s", in.Name, kib(n)))
		if i := strings.Index(in.Data, "{{"); i >= 0 {
			line := 1 + strings.Count(in.Data[:i], "\n")
			errs = append(errs, fmt.Errorf("%s, line %d: \"{{\" would be read by Argo as an expression: remove it (no image reference holds braces)", in.Name, line))
		}
	}
	if total > MaxInlineInputs {
		errs = append(errs, fmt.Errorf("%w: %s inside the Workflow (%s), at most %s fit: %s",
			ErrInputsTooLarge, kib(total), strings.Join(sizes, ", "), kib(MaxInlineInputs), InputsAdvice))
	}
	return errors.Join(errs...)
}

func kib(n int) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }

// inputPath is where an input is placed in the export pod; the index keeps
// two files with the same base name apart, and the name keeps only
// characters that need no quoting.
func inputPath(i int, name string) string {
	clean := strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return '_'
	}, name)
	return fmt.Sprintf("%s/%d-%s", InputsDir, i, strings.TrimLeft(clean, "."))
}

// ECRRepositories are mirror-shard's --no-create-repositories and --ecr-*
// flags: whether an ECR target's missing repositories are created, and
// with which settings.
type ECRRepositories struct {
	NoCreate     bool
	TagImmutable bool
	ScanOnPush   bool
	Encryption   string
	KMSKey       string
	// LifecyclePolicy is the policy's JSON, compact (one argument).
	LifecyclePolicy string
}

// Package spec is the migration spec (migration.yaml): one file that says
// what moves where, with which credentials, filters and limits. Defaults are
// set in Defaults and nowhere else; Validate says what to write instead.
package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/regmigrate/regmigrate/steps/imageref"
)

// APIVersion and Kind of a spec file.
const (
	APIVersion = "regmigrate.io/v1alpha1"
	Kind       = "Migration"
)

// Migration is migration.yaml.
type Migration struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Source     Registry `json:"source"`
	Target     Registry `json:"target"`
	Images     Images   `json:"images,omitempty"`
	Filters    Filters  `json:"filters,omitempty"`
	Auth       Auth     `json:"auth,omitempty"`
	Copy       Copy     `json:"copy,omitempty"`
	Shards     Shards   `json:"shards,omitempty"`
	Verify     Verify   `json:"verify,omitempty"`
	// Strategy: copy (default; registries do not share storage) or
	// reuse-storage (the new registry serves the legacy storage).
	Strategy string `json:"strategy,omitempty"`
	// Cluster whose Image API is backfilled; none = no backfill.
	Cluster *Cluster `json:"cluster,omitempty"`
	// Argo: how `generate` and `submit` build the Workflow. `run` ignores it.
	Argo Argo `json:"argo,omitempty"`

	// where the spec was read, for errors that name a file and line
	file  string
	lines map[string]int // field path (target.registry) -> line
}

// Argo says which step images the generated Workflow runs, and how its
// pods are bounded and cleaned up (argo.go).
type Argo struct {
	// ImagePrefix: the step images are PREFIX/<step>:TAG (default
	// ghcr.io/regmigrate, where releases are published).
	ImagePrefix string `json:"imagePrefix,omitempty"`
	// ImageTag: the step images' tag (default: this regmigrate's version
	// when it is a release; a development build needs one, from `make
	// images REGISTRY=...`).
	ImageTag string `json:"imageTag,omitempty"`

	// Resources of every step container (default: measured, README "Pod
	// resources"); StepResources replaces them for one step, by the name
	// the Argo UI shows (export, mirror-shard, backfill-shard,
	// verify-shard, report, record-approval, switch-mode, switch-back,
	// notify).
	Resources     *Resources           `json:"resources,omitempty"`
	StepResources map[string]Resources `json:"stepResources,omitempty"`
	// PriorityClassName of the pods (default: the cluster's).
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// Deadlines of each step pod and of a whole Workflow.
	Deadlines Deadlines `json:"deadlines,omitempty"`
	// TTL: how long a finished Workflow object stays.
	TTL TTL `json:"ttl,omitempty"`
	// Notify: post each Workflow's summary to a webhook when it ends
	// (none when absent).
	Notify *Notify `json:"notify,omitempty"`
	// Approval: the cutover's wait for a decision.
	Approval Approval `json:"approval,omitempty"`
	// ServiceAccount the step pods run as (default regmigrate;
	// --service-account wins): the one IRSA (eks.amazonaws.com/role-arn)
	// or workload identity binds to a cloud identity, for the cloud
	// keychains (source/target keychain), with no Secret.
	ServiceAccount string `json:"serviceAccount,omitempty"`
	// LayoutVolume: the PersistentVolumeClaim an OCI image layout lives
	// on when the target (or the source) is oci:DIR: mounted at DIR in
	// the pods that write or read it; without it, generate refuses an
	// oci:DIR.
	LayoutVolume *LayoutVolume `json:"layoutVolume,omitempty"`
}

// LayoutVolume names a PersistentVolumeClaim in the Workflows' namespace.
type LayoutVolume struct {
	ClaimName string `json:"claimName"`
	// SubPath inside the claim (default: its root).
	SubPath string `json:"subPath,omitempty"`
}

// Cluster names a cluster with the Image API.
type Cluster struct {
	Kubeconfig string  `json:"kubeconfig"`
	Context    string  `json:"context,omitempty"`
	ImageAPI   string  `json:"imageAPI,omitempty"` // GROUP/VERSION; empty = discover
	QPS        float32 `json:"qps,omitempty"`
	Burst      int     `json:"burst,omitempty"`
}

// Metadata names the migration.
type Metadata struct {
	Name string `json:"name"`
}

// Registry is a source or target: HOST[:PORT][/NAMESPACE].
type Registry struct {
	Registry string `json:"registry"`
	Insecure bool   `json:"insecure,omitempty"`
	// Keychain and ECR: where the registry's credentials come from, and
	// an ECR target's repositories (cloud.go).
	Keychain string `json:"keychain,omitempty"`
	ECR      *ECR   `json:"ecr,omitempty"`
	// RateLimit ("20/s") and Bandwidth ("50MiB/s") throttle the requests
	// to this registry (throttle.go).
	RateLimit string `json:"rateLimit,omitempty"`
	Bandwidth string `json:"bandwidth,omitempty"`
	// Hub: the source is Docker Hub, listed with Hub's API (throttle.go).
	Hub *Hub `json:"hub,omitempty"`
}

// Images says where the scope comes from. Empty means the source catalog.
type Images struct {
	Lists []string `json:"lists,omitempty"` // image lists, `ac get images` tables, SRC=DST mapping files
	Rules string   `json:"rules,omitempty"` // image-migrator images.json
}

// Filters narrow the scope.
type Filters struct {
	IncludeNamespaces   []string `json:"includeNamespaces,omitempty"`
	ExcludeNamespaces   []string `json:"excludeNamespaces,omitempty"`
	Repositories        string   `json:"repositories,omitempty"` // regex on ns/name (V1_REPO_FILTER)
	ExcludeRepositories string   `json:"excludeRepositories,omitempty"`
	Tags                string   `json:"tags,omitempty"` // regex (V1_TAG_FILTER)
	ExcludeTags         string   `json:"excludeTags,omitempty"`
}

// Auth: credentials files. Secrets stay in those files.
type Auth struct {
	DockerConfig string `json:"dockerConfig,omitempty"` // folder with config.json
	AuthFile     string `json:"authFile,omitempty"`     // a config.json
	AuthJSON     string `json:"imageMigratorAuth,omitempty"`
	CertsDir     string `json:"certsDir,omitempty"`
}

// Copy tunes the copy.
type Copy struct {
	Jobs           int `json:"jobs,omitempty"`
	MaxPerRegistry int `json:"maxPerRegistry,omitempty"`
	Retries        int `json:"retries,omitempty"`
	// IdleTimeout ends a request that stalls this long ("90s", "2m");
	// default 60s.
	IdleTimeout   string   `json:"idleTimeout,omitempty"`
	Platforms     []string `json:"platforms,omitempty"`
	NoReferrers   bool     `json:"noReferrers,omitempty"`
	NoAttachments bool     `json:"noAttachments,omitempty"`
}

// Shards tunes sharding.
type Shards struct {
	Size    int `json:"size,omitempty"`
	MinSize int `json:"minSize,omitempty"`
	Max     int `json:"max,omitempty"`
}

// Verify tunes verification.
type Verify struct {
	// Mode: auto (default: every tag digest, deep checks of what the run
	// copied), full (deep checks of everything) or digest.
	Mode string `json:"mode,omitempty"`
}

// imageTag is the OCI distribution spec's tag grammar.
var imageTag = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// ImagePrefixOK reports whether p is a registry and path without a tag or
// digest (registry.example:5000/regmigrate, or a bare host[:port]).
func ImagePrefixOK(p string) bool {
	if p == "" || strings.ContainsAny(p, "@ \t") {
		return false
	}
	i := strings.LastIndex(p, "/")
	return i < 0 || !strings.Contains(p[i+1:], ":")
}

// Load reads a spec file; relative paths in it are relative to the file.
func Load(path string) (*Migration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	var m Migration
	if err := yaml.UnmarshalStrict(b, &m); err != nil {
		return nil, fmt.Errorf("%s%s (see the example in README.md)", where(path, b, err), cleanYAMLError(err))
	}
	m.file, m.lines = path, fieldLines(b)
	base := filepath.Dir(path)
	rel := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	for i := range m.Images.Lists {
		rel(&m.Images.Lists[i])
	}
	rel(&m.Images.Rules)
	rel(&m.Auth.DockerConfig)
	rel(&m.Auth.AuthFile)
	rel(&m.Auth.AuthJSON)
	rel(&m.Auth.CertsDir)
	if m.Cluster != nil {
		rel(&m.Cluster.Kubeconfig)
	}
	if m.Target.ECR != nil {
		rel(&m.Target.ECR.LifecyclePolicyFile)
	}
	return &m, nil
}

// Validate checks the spec and says what to write instead.
func (m *Migration) Validate() error {
	var errs []error
	if m.APIVersion != "" && m.APIVersion != APIVersion {
		errs = append(errs, fmt.Errorf("apiVersion %q: want %s", m.APIVersion, APIVersion))
	}
	if m.Kind != "" && m.Kind != Kind {
		errs = append(errs, fmt.Errorf("kind %q: want %s", m.Kind, Kind))
	}
	if m.Target.Registry == "" {
		errs = append(errs, errors.New("target.registry is empty: write the new registry as HOST[:PORT][/NAMESPACE] (or --to)"))
	} else if _, err := imageref.ParseLocation(m.Target.Registry); err != nil {
		errs = append(errs, fmt.Errorf("target.registry: %w", err))
	}
	if m.Source.Registry == "" && len(m.Images.Lists) == 0 && m.Images.Rules == "" {
		errs = append(errs, errors.New("source.registry is empty and no image list is given: write the legacy registry as HOST[:PORT][/NAMESPACE] (or --from), or images.lists"))
	} else if m.Source.Registry != "" {
		if _, err := imageref.ParseLocation(m.Source.Registry); err != nil {
			errs = append(errs, fmt.Errorf("source.registry: %w", err))
		}
	}
	switch m.Strategy {
	case "", "copy", "reuse-storage":
	default:
		errs = append(errs, fmt.Errorf("strategy %q: want copy or reuse-storage", m.Strategy))
	}
	if m.Cluster != nil && m.Cluster.Kubeconfig == "" {
		errs = append(errs, errors.New("cluster.kubeconfig is empty: name the kubeconfig of the cluster to backfill (or --kubeconfig)"))
	}
	if m.Copy.Jobs < 0 || m.Copy.MaxPerRegistry < 0 || m.Copy.Retries < 0 {
		errs = append(errs, errors.New("copy.jobs, copy.maxPerRegistry and copy.retries must not be negative"))
	}
	if m.Copy.IdleTimeout != "" {
		if d, err := time.ParseDuration(m.Copy.IdleTimeout); err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("copy.idleTimeout %q: want a positive duration such as 60s or 2m", m.Copy.IdleTimeout))
		}
	}
	if m.Shards.Size < 0 || m.Shards.MinSize < 0 || m.Shards.Max < 0 {
		errs = append(errs, errors.New("shards.size, shards.minSize and shards.max must not be negative"))
	}
	if t := m.Argo.ImageTag; t != "" && !imageTag.MatchString(t) {
		errs = append(errs, fmt.Errorf("argo.imageTag %q: want a tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')", t))
	}
	if p := m.Argo.ImagePrefix; p != "" && !ImagePrefixOK(p) {
		errs = append(errs, fmt.Errorf("argo.imagePrefix %q: want a registry and path without tag or digest, e.g. registry.example/regmigrate", p))
	}
	errs = append(errs, m.Argo.validate()...)
	errs = append(errs, m.validateCloud()...)
	errs = append(errs, m.validateThrottles()...)
	return errors.Join(m.located(errs)...)
}

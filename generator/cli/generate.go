package cli

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regmigrate/regmigrate/generator/spec"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/workflows"
)

type generateFlags struct {
	migrationFlags
	cron, timezone            string
	cutover, template         bool
	rollback                  bool
	imagePrefix, imageTag     string
	namespace                 string
	secret, serviceAccount    string
	artifactRepositoryRef     string
	parallelism, shardsAtOnce int64
	retryLimit                int
}

func newGenerateCmd(env Env) *cobra.Command {
	var f generateFlags
	c := &cobra.Command{
		Use:   "generate",
		Short: "Print the Argo Workflow (or the CronWorkflow for delta syncs, or the cutover Workflow), validated",
		Example: `  regmigrate generate -f migration.yaml --secret registry-auth > workflow.yaml
  regmigrate generate -f migration.yaml --cron '0 2 * * *' --timezone Asia/Shanghai
  regmigrate generate -f migration.yaml --cutover`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runGenerate(c, env, &f) },
	}
	f.bindGenerate(c)
	return c
}

// bindGenerate binds the migration flags and generate's own; submit takes the same.
func (f *generateFlags) bindGenerate(c *cobra.Command) {
	f.bind(c)
	fs := c.Flags()
	fs.StringVar(&f.cron, "cron", "", "print a CronWorkflow running delta syncs on this schedule (cron syntax)")
	fs.StringVar(&f.timezone, "timezone", "", "IANA timezone of --cron (default: the controller's)")
	fs.BoolVar(&f.cutover, "cutover", false, "print the cutover Workflow: last delta, full verify, approval, switch-mode")
	fs.BoolVar(&f.rollback, "rollback", false, "print the rollback Workflow: switch-mode --rollback (original images and the legacy mode back)")
	fs.BoolVar(&f.template, "template", false, "print the migration as a WorkflowTemplate (runs are submitted from it)")
	fs.StringVar(&f.imagePrefix, "image-prefix", workflows.DefaultImagePrefix, "step images are PREFIX/<step>:TAG")
	fs.StringVar(&f.imageTag, "image-tag", "", "tag of the step images (default: this regmigrate's version)")
	fs.StringVar(&f.namespace, "namespace-for-workflow", "", "namespace of the generated object (default: the submitter's)")
	fs.StringVar(&f.secret, "secret", "", "name of a kubernetes.io/dockerconfigjson Secret with the registries' credentials (mounted, never printed)")
	fs.StringVar(&f.serviceAccount, "service-account", workflows.DefaultServiceAccount, "ServiceAccount the steps run as")
	fs.StringVar(&f.artifactRepositoryRef, "artifact-repository-ref", "", "artifact repository as CONFIGMAP[:KEY] (default: the namespace's default)")
	fs.Int64Var(&f.parallelism, "parallelism", 0, "pods at once in the workflow (0: no bound)")
	fs.Int64Var(&f.shardsAtOnce, "shard-parallelism", 0, "shards at once (0: no bound)")
	fs.IntVar(&f.retryLimit, "retry-limit", workflows.DefaultRetryLimit, "retries of a step that exits 75 (transient failures)")
}

func runGenerate(c *cobra.Command, env Env, f *generateFlags) error {
	obj, err := buildObject(c, f)
	if err != nil {
		return err
	}
	b, err := workflows.YAML(obj)
	if err != nil {
		return err
	}
	_, err = env.Stdout.Write(b)
	return err
}

// buildObject builds and validates the object generate prints and submit
// creates.
func buildObject(c *cobra.Command, f *generateFlags) (any, error) {
	if n := btoi(f.cron != "") + btoi(f.cutover) + btoi(f.template) + btoi(f.rollback); n > 1 {
		return nil, usageError(fmt.Errorf("--cron, --cutover, --rollback and --template: give one"))
	}
	m, err := f.spec(c)
	if err != nil {
		return nil, err
	}
	p, err := planFor(m)
	if err != nil {
		return nil, usageError(err)
	}
	p.ImagePrefix, p.ImageTag = f.imagePrefix, f.imageTag
	p.Namespace, p.CredentialsSecret, p.ServiceAccount = f.namespace, f.secret, f.serviceAccount
	p.Parallelism, p.ShardParallelism, p.Timezone = f.parallelism, f.shardsAtOnce, f.timezone
	p.Retry = workflows.Retry{Limit: f.retryLimit, Backoff: workflows.DefaultRetryBackoff, Factor: workflows.DefaultRetryFactor, MaxDuration: workflows.DefaultRetryMaxDuration}
	if f.artifactRepositoryRef != "" {
		cm, key, _ := strings.Cut(f.artifactRepositoryRef, ":")
		p.ArtifactRepositoryRef = &workflows.ArtifactRepositoryRef{ConfigMap: cm, Key: key}
	}
	var obj any
	switch {
	case f.cron != "":
		obj, err = workflows.CronWorkflow(p, f.cron)
	case f.cutover:
		obj, err = workflows.Cutover(p)
	case f.rollback:
		obj, err = workflows.Rollback(p)
	case f.template:
		obj, err = workflows.Template(p)
	default:
		obj, err = workflows.Workflow(p)
	}
	if err != nil {
		return nil, usageError(err)
	}
	if err := workflows.Validate(obj); err != nil {
		return nil, usageError(fmt.Errorf("the generated object does not pass Argo's validation: %w", err))
	}
	return obj, nil
}

// planFor turns a spec into a plan. Local paths become keys in the
// artifact repository (inputs/<file name>): a pod reads the uploaded
// copies, never the generating machine's files. Credentials files are not
// carried over: the steps read the --secret.
func planFor(m *spec.Migration) (workflows.Plan, error) {
	p := workflows.Plan{
		Name: m.Metadata.Name, Source: m.Source.Registry, Target: m.Target.Registry,
		Scope: workflows.Scope{
			IncludeNamespaces: m.Filters.IncludeNamespaces, ExcludeNamespaces: m.Filters.ExcludeNamespaces,
			RepoRegex: m.Filters.Repositories, ExcludeRepoRegex: m.Filters.ExcludeRepositories,
			TagRegex: m.Filters.Tags, ExcludeTagRegex: m.Filters.ExcludeTags,
		},
		Shards: workflows.Shards{Size: m.Shards.Size, MinSize: m.Shards.MinSize, Max: m.Shards.Max},
		Copy: workflows.Copy{
			Jobs: m.Copy.Jobs, MaxPerRegistry: m.Copy.MaxPerRegistry, Retries: m.Copy.Retries, IdleTimeout: m.Copy.IdleTimeout,
			Platforms: m.Copy.Platforms, NoReferrers: m.Copy.NoReferrers, NoAttachments: m.Copy.NoAttachments,
		},
		Strategy: m.Strategy, VerifyMode: m.Verify.Mode,
	}
	for _, l := range m.Images.Lists {
		p.Scope.Lists = append(p.Scope.Lists, "inputs/"+filepath.Base(l))
	}
	if m.Images.Rules != "" {
		p.Scope.Rules = "inputs/" + filepath.Base(m.Images.Rules)
	}
	for _, r := range []spec.Registry{m.Source, m.Target} {
		if !r.Insecure || r.Registry == "" {
			continue
		}
		loc, err := imageref.ParseLocation(r.Registry)
		if err != nil {
			return p, err
		}
		p.Insecure = append(p.Insecure, loc.Registry)
	}
	if c := m.Cluster; c != nil {
		p.Backfill = &workflows.Backfill{ImageAPI: c.ImageAPI, QPS: c.QPS, Burst: c.Burst}
	}
	return p, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

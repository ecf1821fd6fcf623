package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/regmigrate/regmigrate/generator/spec"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/workflows"
)

type generateFlags struct {
	migrationFlags
	cron, timezone            string
	cutover, template         bool
	rollback, fromTemplate    bool
	clusterScope              bool
	params                    []string
	imagePrefix, imageTag     string
	namespace                 string
	secret, serviceAccount    string
	artifactRepositoryRef     string
	parallelism, shardsAtOnce int64
	retryLimit                int
	output                    output
}

func newGenerateCmd(env Env) *cobra.Command {
	var f generateFlags
	c := &cobra.Command{
		Use:   "generate",
		Short: "Print the Argo Workflow (or the CronWorkflow for delta syncs, or the cutover Workflow), validated",
		Long: `generate prints the Argo object that runs the migration, built from the spec
and the flags (the flags of run work here too) and validated with Argo's own
validator: the migration Workflow, a CronWorkflow for delta syncs (--cron), the
cutover Workflow (--cutover), the rollback Workflow (--rollback) or a
WorkflowTemplate holding them all, parameterised (--template). With
--from-template it prints instead what runs the installed WorkflowTemplate
(a Workflow, or with --cron, --cutover or --rollback that run; --param sets
its parameters). --cluster-scope makes the template a ClusterWorkflowTemplate
(--template), which Workflows of any namespace run (--from-template): the
ServiceAccount, the Secret, the artifact repository and the delta
CronWorkflow it names are those of the Workflow's namespace. It creates nothing: submit it with regmigrate submit, argo
submit or kubectl create (not apply: the Workflow's name is generated; the
WorkflowTemplate and the CronWorkflow can be applied, with kustomize too).`,
		Example: `  regmigrate generate -f migration.yaml --secret registry-auth > workflow.yaml
  argo submit -n regmigrate workflow.yaml        # or: kubectl create -f workflow.yaml (not apply: the name is generated)
  regmigrate generate -f migration.yaml --cron '0 2 * * *' --timezone Asia/Shanghai
  regmigrate generate -f migration.yaml --cutover --image-prefix registry.example/regmigrate --image-tag v1.2.3
  regmigrate generate -f migration.yaml --template --secret registry-auth > workflowtemplate.yaml    # the pipeline, for kubectl apply -k
  regmigrate generate -f migration.yaml --from-template --cron '0 */6 * * *' > cronworkflow.yaml     # deltas from the template
  regmigrate generate -f migration.yaml --template --cluster-scope --secret registry-auth           # a ClusterWorkflowTemplate
  regmigrate generate -f migration.yaml --from-template --cluster-scope                             # a Workflow running it`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runGenerate(c, env, &f) },
	}
	f.bindGenerate(c)
	bindOutput(c, &f.output, "yaml, the default, and json: the object; name: KIND.argoproj.io/NAME, a Workflow's generateName", outputYAML, outputJSON, outputName)
	return c
}

// bindGenerate binds the migration flags and generate's own; submit takes the same.
func (f *generateFlags) bindGenerate(c *cobra.Command) {
	f.bind(c)
	fs := c.Flags()
	fs.StringVar(&f.cron, "cron", "", "a CronWorkflow running delta syncs on this `SCHEDULE` (cron syntax)")
	fs.StringVar(&f.timezone, "timezone", "", "IANA `TIMEZONE` of --cron (default: the controller's)")
	fs.BoolVar(&f.cutover, "cutover", false, "the cutover Workflow: last delta, full verify, approval, switch-mode")
	fs.BoolVar(&f.rollback, "rollback", false, "the rollback Workflow: switch-mode --rollback (original images and the legacy mode back)")
	fs.BoolVar(&f.template, "template", false, "the migration as a WorkflowTemplate holding every run (migration, delta, cutover, rollback), the scope, filters, strategy and verify mode as parameters")
	fs.BoolVar(&f.fromTemplate, "from-template", false, "an object that runs the migration's WorkflowTemplate (workflowTemplateRef) instead of carrying the pipeline: a Workflow, or with --cron, --cutover or --rollback that run")
	fs.BoolVar(&f.clusterScope, "cluster-scope", false, "with --template: a ClusterWorkflowTemplate (run from any namespace, whose Secret, ServiceAccount and artifact repository it uses); with --from-template: run the migration's ClusterWorkflowTemplate (clusterScope)")
	fs.StringArrayVar(&f.params, "param", nil, "with --from-template: a parameter `NAME=VALUE` in place of the template's default (repeatable; "+strings.Join(workflows.Parameters, ", ")+")")
	fs.StringVar(&f.imagePrefix, "image-prefix", "", "step images are `PREFIX`/<step>:TAG (default "+workflows.DefaultImagePrefix+"; argo.imagePrefix in the spec)")
	fs.StringVar(&f.imageTag, "image-tag", "", "`TAG` of the step images (default: this regmigrate's version if it is a release; argo.imageTag in the spec)")
	fs.StringVarP(&f.namespace, "namespace-for-workflow", "n", "", "Kubernetes namespace `NS` of the Workflow (default: the submitter's)")
	fs.StringVar(&f.secret, "secret", "", "`NAME` of an existing kubernetes.io/dockerconfigjson Secret with the registries' credentials (mounted, never printed)")
	fs.StringVar(&f.serviceAccount, "service-account", workflows.DefaultServiceAccount, "`SERVICEACCOUNT` the steps run as")
	fs.StringVar(&f.artifactRepositoryRef, "artifact-repository-ref", "", "artifact repository as `CONFIGMAP[:KEY]` (default: the namespace's default)")
	fs.Int64Var(&f.parallelism, "parallelism", 0, "`N` pods at once in the workflow (0: no bound)")
	fs.Int64Var(&f.shardsAtOnce, "shard-parallelism", 0, "`N` shards at once (0: no bound)")
	fs.IntVar(&f.retryLimit, "retry-limit", workflows.DefaultRetryLimit, "`N` retries of a step that exits 75 (transient failures)")
	setGroup(fs, groupCopy, "parallelism", "shard-parallelism", "retry-limit")
	setGroup(fs, groupWorkflow, "cron", "timezone", "cutover", "rollback", "template", "from-template", "cluster-scope", "param", "image-prefix", "image-tag", "namespace-for-workflow", "secret", "service-account", "artifact-repository-ref")
}

func runGenerate(c *cobra.Command, env Env, f *generateFlags) error {
	if err := f.output.check(); err != nil {
		return err
	}
	g, err := prepare(c, f, false, false)
	if err != nil {
		return err
	}
	obj, err := g.object()
	if err != nil {
		return err
	}
	switch f.output.format {
	case outputName:
		u, err := toUnstructured(obj)
		if err != nil {
			return err
		}
		name := u.GetName()
		if name == "" {
			name = u.GetGenerateName()
		}
		_, err = fmt.Fprintf(env.Stdout, "%s.argoproj.io/%s\n", strings.ToLower(u.GetKind()), name)
		return err
	case outputJSON:
		return f.output.print(env.Stdout, obj)
	}
	b, err := workflows.YAML(obj)
	if err != nil {
		return err
	}
	_, err = env.Stdout.Write(b)
	return err
}

// generation is what generate prints and submit creates: the merged spec,
// the plan and the kind of object.
type generation struct {
	migration *spec.Migration
	plan      workflows.Plan
	build     func(workflows.Plan) (any, error)
	// against builds the WorkflowTemplate an object that references one
	// is validated against (--from-template): the spec's.
	against func(workflows.Plan) (*wfv1.WorkflowTemplate, error)
}

// object builds the object from the plan and validates it with Argo's
// validator.
func (g *generation) object() (any, error) {
	obj, err := g.build(g.plan)
	if err != nil {
		return nil, usageError(err)
	}
	var templates []*wfv1.WorkflowTemplate
	if g.against != nil {
		t, err := g.against(g.plan)
		if err != nil {
			return nil, usageError(err)
		}
		templates = append(templates, t)
	}
	if err := workflows.Validate(obj, templates...); err != nil {
		if errors.Is(err, workflows.ErrValidatorUnavailable) {
			return nil, fmt.Errorf("validating the generated object: %w", err)
		}
		return nil, usageError(fmt.Errorf("the generated object does not pass Argo's validation: %w", err))
	}
	return obj, nil
}

// templateArgs are --param's NAME=VALUE pairs, which only a Workflow of
// the template (--from-template) takes: the other objects carry the
// spec's values as their parameters' defaults.
func (f *generateFlags) templateArgs(createSecret bool) (map[string]string, error) {
	if !f.fromTemplate {
		if len(f.params) > 0 {
			return nil, errors.New("--param sets a parameter of a Workflow run from the template (--from-template); for the objects that carry the pipeline, set the value in the spec (filters, strategy, verify.mode) or the flags")
		}
		return nil, nil
	}
	switch {
	case f.template:
		return nil, errors.New("--template and --from-template: give one (the template, or what runs from it)")
	case f.secret != "" || createSecret:
		return nil, errors.New("--from-template: the WorkflowTemplate names the credentials Secret (--secret or --create-secret when it was generated or submitted); give neither here")
	}
	args := map[string]string{}
	for _, kv := range f.params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !slices.Contains(workflows.Parameters, k) {
			return nil, fmt.Errorf("--param %q: want NAME=VALUE with NAME one of %s", kv, strings.Join(workflows.Parameters, ", "))
		}
		args[k] = v
	}
	return args, nil
}

// prepare merges the spec and the flags into a plan. submitting says the
// command is submit; createSecret that submit will create the credentials
// Secret (--create-secret) and name it in the plan.
func prepare(c *cobra.Command, f *generateFlags, submitting, createSecret bool) (*generation, error) {
	if n := btoi(f.cron != "") + btoi(f.cutover) + btoi(f.template) + btoi(f.rollback); n > 1 {
		return nil, usageError(fmt.Errorf("--cron, --cutover, --rollback and --template: give one"))
	}
	args, err := f.templateArgs(createSecret)
	if err != nil {
		return nil, usageError(err)
	}
	if f.clusterScope && !f.template && !f.fromTemplate {
		return nil, usageError(errors.New("--cluster-scope goes with --template (print the ClusterWorkflowTemplate) or --from-template (run it)"))
	}
	m, err := f.spec(c)
	if err != nil {
		return nil, err
	}
	if err := checkCredentials(m.Auth, f.secret, submitting, createSecret, !f.rollback && !f.fromTemplate); err != nil {
		return nil, usageError(err)
	}
	p, err := planFor(m)
	if err != nil {
		return nil, usageError(err)
	}
	if p.ImagePrefix, p.ImageTag, err = stepImages(c.Flags().Changed, f, m.Argo, contract.Version); err != nil {
		if !f.fromTemplate {
			return nil, usageError(err)
		}
		// The Workflow names no image: the template's run. The template
		// it is checked against needs one.
		p.ImagePrefix, p.ImageTag = workflows.DefaultImagePrefix, "unused"
	}
	p.Namespace, p.CredentialsSecret, p.ServiceAccount = f.namespace, f.secret, f.serviceAccount
	if err := cloudPlan(m, &p, c.Flags().Changed("service-account")); err != nil {
		return nil, usageError(err)
	}
	if m.Auth.CertsDir != "" && !f.rollback {
		if p.CertFiles, err = certFiles(m.Auth.CertsDir); err != nil {
			return nil, usageError(err)
		}
	}
	p.Parallelism, p.ShardParallelism, p.Timezone = f.parallelism, f.shardsAtOnce, f.timezone
	p.Retry = workflows.Retry{Limit: f.retryLimit, Backoff: workflows.DefaultRetryBackoff, Factor: workflows.DefaultRetryFactor, MaxDuration: workflows.DefaultRetryMaxDuration}
	if err := podSettings(&p, m.Argo); err != nil {
		return nil, usageError(err)
	}
	if f.artifactRepositoryRef != "" {
		cm, key, _ := strings.Cut(f.artifactRepositoryRef, ":")
		p.ArtifactRepositoryRef = &workflows.ArtifactRepositoryRef{ConfigMap: cm, Key: key}
	}
	p.ClusterScope = f.clusterScope
	g := &generation{migration: m, plan: p}
	if f.fromTemplate {
		run := workflows.RunMigrate
		switch {
		case f.cutover:
			run = workflows.RunCutover
		case f.rollback:
			run = workflows.RunRollback
		}
		g.build = func(p workflows.Plan) (any, error) {
			if f.cron != "" {
				return workflows.CronFromTemplate(p, f.cron, args)
			}
			return workflows.FromTemplate(p, run, args)
		}
		g.against = func(p workflows.Plan) (*wfv1.WorkflowTemplate, error) {
			if p.ClusterScope {
				t, err := workflows.ClusterTemplate(p)
				if err != nil {
					return nil, err
				}
				return workflows.AsTemplate(t), nil
			}
			return workflows.Template(p)
		}
		return g, nil
	}
	switch {
	case f.cron != "":
		g.build = func(p workflows.Plan) (any, error) { return workflows.CronWorkflow(p, f.cron) }
	case f.cutover:
		g.build = func(p workflows.Plan) (any, error) { return workflows.Cutover(p) }
	case f.rollback:
		g.build = func(p workflows.Plan) (any, error) { return workflows.Rollback(p) }
	case f.template && f.clusterScope:
		g.build = func(p workflows.Plan) (any, error) { return workflows.ClusterTemplate(p) }
	case f.template:
		g.build = func(p workflows.Plan) (any, error) { return workflows.Template(p) }
	default:
		g.build = func(p workflows.Plan) (any, error) { return workflows.Workflow(p) }
	}
	return g, nil
}

// stepImages resolves the step images' prefix and tag: the flags, then the
// spec's argo section, then the defaults. A development build (version not
// a release) has no default tag: nothing was published under it.
func stepImages(set func(string) bool, f *generateFlags, a spec.Argo, version string) (prefix, tag string, err error) {
	prefix, tag = a.ImagePrefix, a.ImageTag
	if set("image-prefix") {
		prefix = f.imagePrefix
	}
	if set("image-tag") {
		tag = f.imageTag
	}
	if prefix != "" && !spec.ImagePrefixOK(prefix) {
		return "", "", fmt.Errorf("step images: prefix %q: want a registry and path without tag or digest, e.g. registry.example/regmigrate", prefix)
	}
	if prefix == "" {
		prefix = workflows.DefaultImagePrefix
	}
	if tag == "" && !contract.IsRelease(version) {
		guess := "TAG"
		if version != "dev" && version != "" {
			guess = version
		}
		return "", "", fmt.Errorf("step images: no tag given, and this regmigrate is a development build (version %q) whose step images were never published: "+
			"build and push them from this checkout with `make images REGISTRY=registry.example/regmigrate` (tagged `git describe --tags --always --dirty`), "+
			"then pass --image-prefix registry.example/regmigrate --image-tag %s (or argo.imagePrefix and argo.imageTag in the spec)", version, guess)
	}
	if tag == "" {
		tag = version // a release: its images are published under its version
	}
	return prefix, tag, nil
}

// authFiles names the spec's credential files as "field (path)".
func authFiles(a spec.Auth) []string {
	var out []string
	for _, f := range []struct{ field, path string }{
		{"auth.authFile", a.AuthFile}, {"auth.imageMigratorAuth", a.AuthJSON}, {"auth.dockerConfig", a.DockerConfig}, {"auth.certsDir", a.CertsDir},
	} {
		if f.path != "" {
			out = append(out, fmt.Sprintf("%s (%s)", f.field, f.path))
		}
	}
	return out
}

// checkCredentials: credentials named in the spec reach the pods only
// through a Secret, never through the Workflow; a spec that names some
// must say which Secret (--secret) or have submit build it
// (--create-secret), unless the object talks to no registry (usesRegistries
// false: the rollback, which only rewrites workloads).
func checkCredentials(a spec.Auth, secret string, submitting, createSecret, usesRegistries bool) error {
	files := authFiles(a)
	switch {
	case secret != "" && createSecret:
		return errors.New("--secret and --create-secret: give one (--secret names an existing Secret; --create-secret builds one from the spec's credential files)")
	case createSecret && len(files) == 0:
		return errors.New("--create-secret builds the Secret from the spec's credential files, and none is named: set auth.authFile (a docker config.json) or auth.imageMigratorAuth (image-migrator's auth.json), or give --authfile or --auth")
	case len(files) == 0 || secret != "" || createSecret || !usesRegistries:
		return nil
	case submitting:
		return fmt.Errorf("%s: the pods need these credentials, and they are never written into the Workflow: add --create-secret "+
			"(builds a kubernetes.io/dockerconfigjson Secret from them in the Workflow's namespace, owned by the Workflow) or --secret NAME (an existing one)",
			strings.Join(files, ", "))
	default:
		return fmt.Errorf("%s: the pods need these credentials, and they are never written into the Workflow: add --secret NAME, "+
			"a kubernetes.io/dockerconfigjson Secret in the Workflow's namespace that holds them, or submit with `regmigrate submit --create-secret`, which builds it from them",
			strings.Join(files, ", "))
	}
}

// onDisk refuses a source or target on disk (oci:DIR...) unless the spec
// names the volume it lives on (argo.layoutVolume): otherwise it is a
// directory of this machine, which the workflow's pods cannot reach.
func onDisk(m *spec.Migration) error {
	for _, side := range []struct{ name, loc string }{{"source", m.Source.Registry}, {"target", m.Target.Registry}} {
		loc, err := imageref.ParseLocation(side.loc)
		if err != nil || loc.Transport == "" || m.Argo.LayoutVolume != nil {
			continue
		}
		return fmt.Errorf("the %s %s is a path on this machine, which the workflow's pods cannot reach: "+
			"name the PersistentVolumeClaim the layout lives on in the spec, argo.layoutVolume: {claimName: NAME} (mounted at %s in the pods; the shards write into it and a last step packs it), "+
			"or run the disconnected move with `regmigrate run` where the media is: `regmigrate run --from LEGACY --to oci:DIR` on a machine that reaches the legacy registry, "+
			"then `regmigrate run --from oci:DIR --to NEW` on one that reaches the new registry (README: Disconnected / air gap)", side.name, loc, loc.Path)
	}
	return nil
}

// planFor turns a spec into a plan. The image lists and rules are read
// here: their contents travel inside the Workflow (a pod cannot read this
// machine's files). Credentials files are not carried over: the steps
// read the Secret.
func planFor(m *spec.Migration) (workflows.Plan, error) {
	if err := onDisk(m); err != nil {
		return workflows.Plan{}, err
	}
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
		Throttles: m.Throttles(), Hub: hubPlan(m),
	}
	if v := m.Argo.LayoutVolume; v != nil {
		p.Layout = &workflows.LayoutVolume{ClaimName: v.ClaimName, SubPath: v.SubPath}
	}
	for _, l := range m.Images.Lists {
		in, err := readInput(l)
		if err != nil {
			return p, fmt.Errorf("images.lists: %w", err)
		}
		p.Scope.Lists = append(p.Scope.Lists, in)
	}
	if m.Images.Rules != "" {
		in, err := readInput(m.Images.Rules)
		if err != nil {
			return p, fmt.Errorf("images.rules: %w", err)
		}
		p.Scope.Rules = &in
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

// podSettings carries the spec's argo section (resources, priority class,
// deadlines, TTLs) into the plan; the spec validated it.
func podSettings(p *workflows.Plan, a spec.Argo) error {
	if a.Resources != nil {
		p.Resources = requirements(*a.Resources)
	}
	for step, r := range a.StepResources {
		if p.StepResources == nil {
			p.StepResources = map[string]corev1.ResourceRequirements{}
		}
		p.StepResources[step] = requirements(r)
	}
	p.PriorityClassName = a.PriorityClassName
	if n := a.Notify; n != nil {
		p.Notify = &workflows.Notify{Secret: n.WebhookSecret.Name, Key: n.WebhookSecret.Key, Format: n.Format, UIBaseURL: n.UIURL}
	}
	var err error
	for _, d := range []struct {
		v   string
		out *time.Duration
	}{
		{a.Deadlines.Step, &p.StepDeadline}, {a.Deadlines.Workflow, &p.WorkflowDeadline},
		{a.TTL.AfterSuccess, &p.TTLAfterSuccess}, {a.TTL.AfterFailure, &p.TTLAfterFailure},
		{a.Approval.Timeout, &p.ApprovalTimeout},
	} {
		if *d.out, err = spec.Duration(d.v); err != nil {
			return err
		}
	}
	return nil
}

// requirements turns the spec's resources into a container's.
func requirements(r spec.Resources) corev1.ResourceRequirements {
	list := func(l spec.ResourceList) corev1.ResourceList {
		out := corev1.ResourceList{}
		if l.CPU != "" {
			out[corev1.ResourceCPU] = resource.MustParse(l.CPU)
		}
		if l.Memory != "" {
			out[corev1.ResourceMemory] = resource.MustParse(l.Memory)
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return corev1.ResourceRequirements{Requests: list(r.Requests), Limits: list(r.Limits)}
}

// readInput reads a list or rules file for the Workflow. A file far over
// what fits is not read whole; the plan says how much fits.
func readInput(path string) (workflows.Input, error) {
	fh, err := os.Open(path)
	if err != nil {
		return workflows.Input{}, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, 4*workflows.MaxInlineInputs+1))
	if err != nil {
		return workflows.Input{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > 4*workflows.MaxInlineInputs {
		return workflows.Input{}, fmt.Errorf("%w: %s is larger than %d KiB, and at most %d KiB of lists and rules fit: %s",
			workflows.ErrInputsTooLarge, path, 4*workflows.MaxInlineInputs>>10, workflows.MaxInlineInputs>>10, workflows.InputsAdvice)
	}
	return workflows.Input{Name: filepath.Base(path), Data: string(b)}, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// certFiles lists auth.certsDir's files (HOST[:PORT]/NAME), which travel in
// the credentials Secret.
func certFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if strings.Count(rel, string(filepath.Separator)) != 1 {
			return fmt.Errorf("auth.certsDir %s: %s is not HOST[:PORT]/FILE (containerd's certs.d layout: one folder per registry holding ca.crt, client.cert, client.key)", dir, rel)
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth.certsDir: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("auth.certsDir %s holds no certificate (want HOST[:PORT]/ca.crt files)", dir)
	}
	return out, nil
}

package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/regmigrate/regmigrate/generator/runner"
	"github.com/regmigrate/regmigrate/generator/spec"
	"github.com/regmigrate/regmigrate/steps/airgap"
	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/connect"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/imageapi"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/inputs"
	"github.com/regmigrate/regmigrate/steps/mirror"
	"github.com/regmigrate/regmigrate/steps/ocilayout"
	"github.com/regmigrate/regmigrate/steps/progress"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/steps/report"
	"github.com/regmigrate/regmigrate/steps/stepcli/switchmodecmd"
	"github.com/regmigrate/regmigrate/steps/workloads"
)

// emptySections are the spec's sections left at their defaults, left out
// of the spec run.json records.
var emptySections = regexp.MustCompile(`(?m)^[A-Za-z]+: \{\}\n`)

// migrationFlags are the flags that describe a migration; run and generate
// share them. Each overrides the spec's field when set.
type migrationFlags struct {
	specFile                string
	from, to                string
	insecure                bool
	images                  []string
	rules                   string
	authJSON, authFile      string
	certsDir                string
	includeNS, excludeNS    []string
	repoRegex, tagRegex     string
	excludeRepo, excludeTag string
	shardSize, maxShards    int
	minShardSize            int
	strategy                string
	kubeconfig, kubecontext string
	imageAPI                string
	throttle                throttleFlags
}

func (f *migrationFlags) bind(c *cobra.Command) {
	fs := c.Flags()
	fs.StringVarP(&f.specFile, "file", "f", "", "migration spec `FILE` (migration.yaml); the flags override its fields")
	fs.StringVar(&f.from, "from", "", "the legacy registry `HOST[:PORT][/NAMESPACE]` to copy from, or oci:DIR, oci-archive:FILE, docker-archive:FILE, dir:DIR on disk")
	fs.StringVar(&f.to, "to", "", "the new registry `HOST[:PORT][/NAMESPACE]` to copy to, or oci:DIR (an OCI image layout, for a disconnected move)")
	fs.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP and unverified TLS for both registries")
	fs.StringVar(&f.authFile, "authfile", "", "docker config.json `FILE` with credentials (default: $REGISTRY_AUTH_FILE, then $DOCKER_CONFIG/config.json)")
	fs.StringVar(&f.authJSON, "auth", "", "image-migrator auth.json `FILE` (keys registry or registry/namespace)")
	fs.StringVar(&f.certsDir, "certs-dir", "", "docker certs.d-style `DIR`: DIR/<host>/{*.crt,*.cert,*.key}")
	fs.StringArrayVar(&f.images, "images", nil, "image list `FILE`: ns/repo:tag [digest] lines, an 'ac get images' table, or SRC=DST lines (repeatable; default: the source catalog)")
	fs.StringVar(&f.rules, "rules", "", "image-migrator rules `FILE` (images.json)")
	fs.StringSliceVar(&f.includeNS, "include-namespace", nil, "only these registry namespaces: `NS` as in HOST/NS/repo, not a Kubernetes namespace (repeatable, comma-separated)")
	// --namespace was this filter's name; it stays, deprecated, so that
	// scripts keep working. One Value: both spellings add to one list.
	alias := *fs.Lookup("include-namespace")
	alias.Name, alias.Deprecated = "namespace", "use --include-namespace (registry namespaces; -n/--namespace name Kubernetes namespaces in cutover)"
	fs.AddFlag(&alias)
	fs.StringSliceVar(&f.excludeNS, "exclude-namespace", nil, "leave these registry namespaces out (`NS`; repeatable, comma-separated)")
	fs.StringVar(&f.repoRegex, "repo-regex", "", "only repositories (ns/name) matching this `REGEX` (docker/migrator's V1_REPO_FILTER)")
	fs.StringVar(&f.excludeRepo, "exclude-repo-regex", "", "leave out repositories matching this `REGEX`")
	fs.StringVar(&f.tagRegex, "tag-regex", "", "only tags matching this `REGEX` (V1_TAG_FILTER)")
	fs.StringVar(&f.excludeTag, "exclude-tag-regex", "", "leave out tags matching this `REGEX`")
	fs.IntVar(&f.shardSize, "shard-size", 0, fmt.Sprintf("split namespaces with more than `N` images (default %d)", export.DefaultShardSize))
	fs.IntVar(&f.minShardSize, "min-shard-size", 0, fmt.Sprintf("pack namespaces with fewer than `N` images together (default %d)", export.DefaultMinShardSize))
	fs.IntVar(&f.maxShards, "max-shards", 0, "pack namespaces into at most `N` shards (0: no bound)")
	fs.StringVar(&f.strategy, "strategy", "", "`STRATEGY`: copy (default: the registries do not share storage) or reuse-storage (the new registry serves the legacy storage; nothing is copied)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "backfill the Image API (ImageStream, ImageStreamMapping) of the cluster of this kubeconfig `FILE`")
	fs.StringVar(&f.kubecontext, "context", "", "`CONTEXT` of --kubeconfig")
	fs.StringVar(&f.imageAPI, "image-api", "", "Image API `GROUP/VERSION`, e.g. image.alauda.io/v1 or image.openshift.io/v1 (default: discovered)")
	setGroup(fs, groupRegistries, "file", "from", "to", "insecure", "authfile", "auth", "certs-dir")
	setGroup(fs, groupScope, "images", "rules", "include-namespace", "exclude-namespace", "repo-regex", "exclude-repo-regex", "tag-regex", "exclude-tag-regex",
		"shard-size", "min-shard-size", "max-shards")
	setGroup(fs, groupCopy, "strategy")
	setGroup(fs, groupCluster, "kubeconfig", "context", "image-api")
	f.throttle.bind(c)
}

// spec merges the spec file and the flags into one Migration.
func (f *migrationFlags) spec(c *cobra.Command) (*spec.Migration, error) {
	m := &spec.Migration{APIVersion: spec.APIVersion, Kind: spec.Kind}
	if f.specFile != "" {
		var err error
		if m, err = spec.Load(f.specFile); err != nil {
			return nil, usageError(err)
		}
	}
	set := c.Flags().Changed
	if set("from") {
		m.Source.Registry = f.from
	}
	if set("to") {
		m.Target.Registry = f.to
	}
	if f.insecure {
		m.Source.Insecure, m.Target.Insecure = true, true
	}
	if set("images") {
		m.Images.Lists = f.images
	}
	if set("rules") {
		m.Images.Rules = f.rules
	}
	if set("auth") {
		m.Auth.AuthJSON = f.authJSON
	}
	if set("authfile") {
		m.Auth.AuthFile = f.authFile
	}
	if set("certs-dir") {
		m.Auth.CertsDir = f.certsDir
	}
	if set("include-namespace") || set("namespace") {
		m.Filters.IncludeNamespaces = f.includeNS
	}
	if set("exclude-namespace") {
		m.Filters.ExcludeNamespaces = f.excludeNS
	}
	if set("repo-regex") {
		m.Filters.Repositories = f.repoRegex
	}
	if set("exclude-repo-regex") {
		m.Filters.ExcludeRepositories = f.excludeRepo
	}
	if set("tag-regex") {
		m.Filters.Tags = f.tagRegex
	}
	if set("exclude-tag-regex") {
		m.Filters.ExcludeTags = f.excludeTag
	}
	if set("shard-size") {
		m.Shards.Size = f.shardSize
	}
	if set("max-shards") {
		m.Shards.Max = f.maxShards
	}
	if set("min-shard-size") {
		m.Shards.MinSize = f.minShardSize
	}
	if set("strategy") {
		m.Strategy = f.strategy
	}
	if set("kubeconfig") {
		if m.Cluster == nil {
			m.Cluster = &spec.Cluster{}
		}
		m.Cluster.Kubeconfig = f.kubeconfig
	}
	if m.Cluster != nil && set("context") {
		m.Cluster.Context = f.kubecontext
	}
	if m.Cluster != nil && set("image-api") {
		m.Cluster.ImageAPI = f.imageAPI
	}
	if m.Cluster == nil && (set("context") || set("image-api")) {
		return nil, usageError(errors.New("--context and --image-api need --kubeconfig (the cluster to backfill)"))
	}
	if err := f.throttle.apply(set, m); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, usageError(err)
	}
	return m, nil
}

type runFlags struct {
	migrationFlags
	out                        string
	rediscover, dryRun         bool
	jobs, maxPerReg, retries   int
	idleTimeout                time.Duration
	platforms                  []string
	noReferrers, noAttachments bool
	verifyMode                 string
	logFormat, progressMode    string
	output                     output
	workloadsKubeconfig        string
	workloadNamespaces         []string
	cutover                    bool
	cut                        switchmodecmd.Config
	splitSize                  string
	noCreateRepos              bool
}

func newRunCmd(env Env) *cobra.Command {
	var f runFlags
	c := &cobra.Command{
		Use:   "run",
		Short: "Migrate on this machine: export, mirror every shard, verify, report",
		Long: `run migrates on this machine: it plans the images to move (the source's
catalog, or the lists and rules given, filtered), copies every shard, verifies
the target, backfills the Image API when a cluster is named, and writes the
run directory (report.html, report.md, report.json). It ends with one line:

  27 images: 26 copied, 1 skipped, 0 failed; verified; 3.1 MiB moved in 4.2s

"skipped" images were on the target already with the source's digest. With
--dry-run it prints the plan instead, a line per image marked with what would
happen:

  + SRC@DIGEST=DST   to copy
  = SRC@DIGEST=DST   already on the target: skipped
  ! SRC@DIGEST=DST   failed while planning (the reason is in report.md)

Exit codes: 0 every image on the target and verified, 1 a failure a rerun will
not fix, 2 a mistake in the command or its files, 75 only transient failures
(run again), 130/143 interrupted.`,
		Example: `  regmigrate run --from legacy.example:5000 --to newreg.example:5000
  regmigrate run --from SRC --to DST --images image-list.txt --out ./run-1
  regmigrate run -f migration.yaml
  regmigrate run -f migration.yaml --dry-run
  regmigrate run --from SRC --to DST --include-namespace team-a -o name   # prints the run directory`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runRun(c, env, &f) },
	}
	f.bind(c)
	fs := c.Flags()
	fs.BoolVar(&f.rediscover, "rediscover", false, "plan again even when --out holds a previous plan")
	fs.StringVar(&f.workloadsKubeconfig, "scope-from-workloads", "", "kubeconfig `FILE`: the scope is the legacy-registry images the cluster's workloads use (written to workloads-images.txt and workloads-images.json in the run directory)")
	fs.StringSliceVar(&f.workloadNamespaces, "workload-namespace", nil, "with --scope-from-workloads: only these Kubernetes namespaces (`NS`; default: all)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the plan, a line per image: + to copy, = already on the target, ! failed; nothing is written to the target")
	fs.IntVar(&f.jobs, "jobs", 0, fmt.Sprintf("`N` images copied at once (default %d)", mirror.DefaultJobs))
	fs.IntVar(&f.maxPerReg, "max-per-registry", 0, fmt.Sprintf("`N` concurrent requests per registry (default %d)", registry.DefaultMaxPerRegistry))
	fs.IntVar(&f.retries, "retries", 0, fmt.Sprintf("`N` attempts per request on 429, 5xx, resets (default %d)", registry.DefaultRetryAttempts))
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 0, fmt.Sprintf("end a request whose response or body stalls this `DURATION`; retried (default %s)", registry.DefaultIdleTimeout))
	fs.StringSliceVar(&f.platforms, "platform", nil, "keep only these `OS/ARCH` platforms of multi-arch images (CHANGES their digests)")
	fs.BoolVar(&f.noReferrers, "no-referrers", false, "do not copy OCI referrers (subject)")
	fs.BoolVar(&f.noAttachments, "no-attachments", false, "do not copy signature/attestation tags (sha256-<hex>.sig/.att/.sbom)")
	fs.StringVar(&f.verifyMode, "verify", "", "`MODE`: auto (default: every tag digest, deep checks of what this run copied), full (read and hash every manifest and blob of every image on the target; images that fail are copied again by the next run) or digest")
	fs.BoolVar(&f.noCreateRepos, "no-create-repositories", false, "an ECR target's missing repositories are not created: their images fail (default: created with target.ecr's settings; --dry-run lists them)")
	fs.StringVar(&f.splitSize, "split-size", "", "with --to oci-archive:FILE, cut the archive into parts FILE.000, FILE.001... of at most `SIZE` (e.g. 4GiB) for media with a size limit")
	fs.BoolVar(&f.cutover, "cutover", false, "after a passing verify, cut the cluster over (as regmigrate cutover; dry run unless --confirm); the cluster is --kubeconfig's, else --scope-from-workloads'")
	bindCutover(c, "cutover-", &f.cut)
	fs.StringVar(&f.out, "out", "", "run `DIR` (default: a new ./regmigrate-run-<time>); give a previous one to finish it")
	bindOutput(c, &f.output, "json and yaml: report.json; name: the run directory", outputJSON, outputYAML, outputName)
	fs.StringVar(&f.progressMode, "progress", progress.ModeAuto, "`MODE`: auto (a bar on a terminal, else lines), bar, lines (a line every few seconds), json (one object a line) or none")
	fs.StringVar(&f.logFormat, "log-format", "text", "`FORMAT` of the log lines on stderr: text or json")
	setGroup(fs, groupScope, "rediscover", "scope-from-workloads", "workload-namespace")
	setGroup(fs, groupCopy, "split-size", "dry-run", "jobs", "max-per-registry", "retries", "idle-timeout", "platform", "no-referrers", "no-attachments", "verify", "no-create-repositories")
	setGroup(fs, groupCutover, "cutover", "cutover-context", "cutover-all-clusters", "workloads", "include-managed", "pull-secret", "record-namespace", "record-name", "migration", "confirm", "force")
	setGroup(fs, groupOutput, "out", "progress", "log-format")
	return c
}

func runRun(c *cobra.Command, env Env, f *runFlags) error {
	if err := f.output.check(); err != nil {
		return err
	}
	m, err := f.spec(c)
	if err != nil {
		return err
	}
	o, bad, err := buildRun(m, env)
	if err != nil {
		return usageError(err)
	}
	o.Migration, o.Command = m.Metadata.Name, recordedCommand(c)
	if f.specFile != "" { // the spec as it ran, the flags merged in; it names credential files, never holds a secret
		if b, err := yaml.Marshal(m); err == nil {
			o.Spec = emptySections.ReplaceAllString(string(b), "")
		}
	}
	for _, b := range bad {
		fmt.Fprintln(env.Stderr, "regmigrate: skipping bad input:", b)
	}
	o.BadLines = bad
	if c.Flags().Changed("jobs") {
		o.Jobs = f.jobs
	}
	if c.Flags().Changed("max-per-registry") {
		o.Connect.MaxPerRegistry = f.maxPerReg
	}
	if c.Flags().Changed("retries") {
		o.Connect.Retries = f.retries
	}
	if c.Flags().Changed("idle-timeout") {
		if f.idleTimeout <= 0 {
			return usageError(fmt.Errorf("--idle-timeout %s: want a positive duration such as 60s", f.idleTimeout))
		}
		o.Connect.IdleTimeout = f.idleTimeout
	}
	if c.Flags().Changed("platform") {
		o.Platforms = f.platforms
	}
	o.NoReferrers = o.NoReferrers || f.noReferrers
	o.NoAttachments = o.NoAttachments || f.noAttachments
	if c.Flags().Changed("verify") {
		o.VerifyMode = f.verifyMode
	}
	o.DryRun, o.Rediscover = f.dryRun, f.rediscover
	if o.Repositories, err = repositoryMaker(m, f.noCreateRepos); err != nil {
		return usageError(err)
	}
	for i := range o.Connect.Disk {
		o.Connect.Disk[i].DryRun = f.dryRun
	}
	o.Out = f.out
	if dir := runner.LayoutDir(o.Export.To); o.Out == "" && dir != "" && !f.dryRun {
		// Phase one of a disconnected move: the plan and the report travel
		// inside the layout, and the same command resumes there.
		o.Out = airgap.RecordPath(dir)
	}
	if c.Flags().Changed("split-size") {
		if o.Export.To.Transport != imageref.TransportOCIArchive {
			return usageError(fmt.Errorf("--split-size cuts an oci-archive into parts: give --to oci-archive:FILE (not %s)", o.Export.To))
		}
		n, err := parseSize(f.splitSize)
		if err != nil {
			return usageError(fmt.Errorf("--split-size %q: %w", f.splitSize, err))
		}
		o.SplitSize = n
	}
	if o.Out == "" {
		o.Out = defaultRunDir(time.Now())
	}
	o.Scope = scopeOf(m, f.specFile)
	o.Scope.Command = o.Command
	o.Say = func(format string, args ...any) { fmt.Fprintf(env.Stderr, "regmigrate: "+format+"\n", args...) }
	if t := throttleSummary(o.Connect.Throttles); t != "" {
		o.Say("throttled: %s (one limit per registry, shared by every shard of this run)", t)
	}
	mode, err := progress.ParseMode(f.progressMode, env.IsTerminal)
	if err != nil {
		return usageError(err)
	}
	o.Progress = progress.New(progress.Options{Out: env.Stderr, Mode: mode})
	defer o.Progress.Close() // a run that stops on an error leaves no bar drawn over its message
	// Log lines go through the progress bars: printed above them, never into them.
	o.Logger = newLogger(o.Progress.Logs(), f.logFormat, verbose(c))
	if f.cutover {
		if f.dryRun {
			return usageError(errors.New("--cutover needs a real run: drop --dry-run"))
		}
		f.cut.Kubeconfig = f.workloadsKubeconfig
		if m.Cluster != nil {
			f.cut.Kubeconfig = m.Cluster.Kubeconfig
			if len(f.cut.Contexts) == 0 && m.Cluster.Context != "" {
				f.cut.Contexts = []string{m.Cluster.Context}
			}
		}
		if f.cut.Kubeconfig == "" {
			return usageError(errors.New("--cutover needs the cluster: give --kubeconfig (or --scope-from-workloads)"))
		}
		f.cut.RunDir, f.cut.Namespaces, f.cut.LogFormat = o.Out, f.workloadNamespaces, f.logFormat
		if f.cut.Migration == "" {
			f.cut.Migration = m.Metadata.Name
		}
	}
	if f.workloadsKubeconfig != "" {
		entries, err := scopeFromWorkloads(c.Context(), f, o.Export.From, o.Export.To, o.Out)
		if err != nil {
			return err
		}
		o.Export.Entries = append(o.Export.Entries, entries...)
	}
	// o is not used after Run, so the input lists it holds are let go
	// while the run goes on (runner.Run drops its own copy after export).
	out := o.Out
	rep, err := runner.Run(c.Context(), o)
	if err != nil {
		return err
	}
	if err := printRun(env, &f.output, rep, out); err != nil {
		return err
	}
	if i, ok := contract.InterruptedBy(c.Context()); ok {
		return &ExitError{Code: i.Code(), Err: fmt.Errorf("%v: %d of %d images done, the rest not started or abandoned (the report in %s is partial); resume with the same command and --out %s",
			i.Signal, rep.Copied+rep.Skipped, rep.Total, out, out)}
	}
	if rep.Total == 0 && len(rep.ScopeErrors) == 0 {
		fmt.Fprintf(env.Stderr, "regmigrate: nothing to migrate: the scope is empty (%d tags and %d repositories left out by the filters); this report cannot gate a cutover\n", rep.Excluded, rep.ExcludedRepos)
		return nil
	}
	code := rep.ExitCode()
	if len(rep.ScopeErrors) > 0 {
		return &ExitError{Code: code, Err: fmt.Errorf("%d scope errors (bad input lines or repositories that could not be listed, in %s/report.md); fix them and run again with --out %s --rediscover", len(rep.ScopeErrors), out, out)}
	}
	if code != contract.ExitOK {
		if f.cutover {
			fmt.Fprintln(env.Stderr, "regmigrate: no cutover: the verify did not pass")
		}
		return &ExitError{Code: code, Err: fmt.Errorf("%d of %d images failed or did not verify; see %s/report.md, then run again with --out %s to finish", rep.Failed, rep.Total, out, out)}
	}
	if f.cutover {
		return runCutover(c.Context(), env, f.cut, &f.output)
	}
	return nil
}

// planLegend says what the dry run's marks mean.
const planLegend = "# dry run: + to copy, = already on the target (skipped), ! failed while planning (reason in report.md); nothing was written"

// printRun prints a run's result: the plan of a dry run, the summary line
// and the run directory; with -o, report.json (json, yaml) or the run
// directory (name) on stdout, and the readable lines on stderr.
func printRun(env Env, out *output, rep report.Report, dir string) error {
	w := out.readable(env)
	if rep.DryRun && out.format == "" {
		printPlan(w, rep)
	}
	fmt.Fprintf(w, "%s\nrun directory: %s (report.html, report.md, report.json)\n", rep.SummaryLine(), dir)
	switch out.format {
	case outputName:
		_, err := fmt.Fprintln(env.Stdout, dir)
		return err
	case outputJSON, outputYAML:
		return out.print(env.Stdout, rep)
	}
	return nil
}

// printPlan prints the dry run's mapping under a legend: what would be
// copied (+), what the target has (=), what failed (!).
func printPlan(w io.Writer, rep report.Report) {
	fmt.Fprintln(w, planLegend)
	for _, im := range rep.Images {
		mark := "="
		switch im.Status {
		case contract.StatusPlanned:
			mark = "+"
		case contract.StatusFailed:
			mark = "!"
		}
		fmt.Fprintf(w, "%s %s@%s=%s\n", mark, im.Source, im.Digest, im.Target)
	}
}

// buildRun turns a spec into runner options; bad input lines come back
// separately so that valid lines still run.
func buildRun(m *spec.Migration, env Env) (runner.Options, []error, error) {
	var o runner.Options
	var bad []error
	var from, to imageref.Location
	var err error
	if m.Source.Registry != "" {
		if from, err = imageref.ParseLocation(m.Source.Registry); err != nil {
			return o, nil, fmt.Errorf("source: %w", err)
		}
	}
	if to, err = imageref.ParseLocation(m.Target.Registry); err != nil {
		return o, nil, fmt.Errorf("target: %w", err)
	}
	if from.Transport != "" && to.Transport != "" {
		return o, nil, fmt.Errorf("the source (%s) and the target (%s) are both on disk: one side must be a registry; to copy a layout, copy its directory", from, to)
	}
	if to.Transport != "" && to.Transport != imageref.TransportOCI && to.Transport != imageref.TransportOCIArchive {
		return o, nil, fmt.Errorf("target %s: %s: is a source only; write to oci:DIR (or oci-archive:FILE)", to, to.Transport)
	}
	if from.Registry == to.Registry && from.Namespace == to.Namespace {
		return o, nil, fmt.Errorf("the source and the target are both %s: a migration copies from one registry (or namespace) to another; check --from and --to", to)
	}
	entries, lineErrs, err := inputs.ReadAll(m.Images.Lists, m.Images.Rules, inputs.RulesOptions{DefaultRegistry: to.Registry, DefaultNamespace: to.Namespace})
	if err != nil {
		return o, nil, err
	}
	for _, le := range lineErrs {
		bad = append(bad, le)
	}
	// Phase two of a disconnected move: the images phase one wrote into
	// the layout, pinned to the digests it read from the legacy registry.
	// With lists, the listed tags are pinned to phase one's digests.
	if dir, err := layoutDirOf(from); err != nil {
		return o, nil, err
	} else if dir != "" {
		p1, err := airgap.Read(dir)
		switch {
		case err == nil:
			carried, problems := p1.Entries(from.Registry)
			if len(m.Images.Lists) == 0 && m.Images.Rules == "" {
				entries = carried
				for _, p := range problems {
					bad = append(bad, errors.New(p))
				}
			} else {
				entries = airgap.Pin(entries, carried)
			}
			link := p1.Link()
			o.PhaseOne = &link
		case !errors.Is(err, fs.ErrNotExist):
			return o, nil, err
		}
	}
	if (len(m.Images.Lists) > 0 || m.Images.Rules != "") && len(entries) == 0 {
		return o, bad, fmt.Errorf("the image lists hold no valid line (%d bad): nothing to migrate", len(bad))
	}
	filter, err := inputs.NewFilter(inputs.FilterOptions{
		IncludeNamespaces: m.Filters.IncludeNamespaces, ExcludeNamespaces: m.Filters.ExcludeNamespaces,
		RepoRegex: m.Filters.Repositories, ExcludeRepoRegex: m.Filters.ExcludeRepositories,
		TagRegex: m.Filters.Tags, ExcludeTagRegex: m.Filters.ExcludeTags,
	})
	if err != nil {
		return o, nil, err
	}
	// Insecure source or target: the registries the lists and rules name on
	// that side too (image-migrator's rules carry their own source hosts).
	// Each host once: a list names the same few hosts on every line.
	var insecure []string
	seenHost := map[string]bool{"": true}
	addInsecure := func(host string) {
		if !seenHost[host] {
			seenHost[host] = true
			insecure = append(insecure, host)
		}
	}
	if m.Source.Insecure {
		addInsecure(from.Registry)
		for _, e := range entries {
			addInsecure(e.Source.Registry)
		}
	}
	if m.Target.Insecure {
		addInsecure(to.Registry)
		for _, e := range entries {
			addInsecure(e.Target.Registry)
		}
	}
	o.Connect = connect.Options{
		Insecure: insecure, CertsDir: m.Auth.CertsDir, DockerConfig: m.Auth.DockerConfig, AuthFile: m.Auth.AuthFile,
		AuthJSON: m.Auth.AuthJSON, Getenv: env.Getenv, MaxPerRegistry: m.Copy.MaxPerRegistry, Retries: m.Copy.Retries,
		Registries: m.Keychains(),
	}
	if from.Transport != "" {
		o.Connect.Disk = append(o.Connect.Disk, connect.Disk{Location: from})
	}
	if to.Transport != "" {
		o.Connect.Disk = append(o.Connect.Disk, connect.Disk{Location: to, Write: true})
	}
	if m.Copy.IdleTimeout != "" {
		o.Connect.IdleTimeout, _ = time.ParseDuration(m.Copy.IdleTimeout) // checked by the spec's validation
	}
	o.Connect.Throttles = m.Throttles()
	o.Export = export.Options{
		From: from, To: to, Entries: entries, Filter: filter,
		ShardSize: m.Shards.Size, MinShardSize: m.Shards.MinSize, MaxShards: m.Shards.Max,
		Hub: hubSource(m, from, env),
	}
	o.Jobs = m.Copy.Jobs
	o.Platforms = m.Copy.Platforms
	o.NoReferrers = m.Copy.NoReferrers
	o.NoAttachments = m.Copy.NoAttachments
	o.VerifyMode = m.Verify.Mode
	o.Strategy = m.Strategy
	if m.Cluster != nil {
		o.Cluster = &runner.Cluster{Kubeconfig: m.Cluster.Kubeconfig, Context: m.Cluster.Context, ImageAPI: m.Cluster.ImageAPI, QPS: m.Cluster.QPS, Burst: m.Cluster.Burst}
	}
	return o, bad, nil
}

// scopeFromWorkloads lists the legacy-registry images the cluster's
// workloads use, keeps the list and an image-migrator images.json in the
// run directory (for people who want to edit them), and returns the list
// as scope entries.
func scopeFromWorkloads(ctx context.Context, f *runFlags, from, to imageref.Location, out string) ([]inputs.Entry, error) {
	if from.Registry == "" {
		return nil, usageError(errors.New("--scope-from-workloads needs --from: the legacy registry whose images to keep"))
	}
	cfg, err := imageapi.Config(f.workloadsKubeconfig, "", 0, 0)
	if err != nil {
		return nil, usageError(err)
	}
	imgs, err := workloads.Images(ctx, cfg, from, f.workloadNamespaces)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster's workloads: %w", err)
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("no workload in the cluster uses an image on %s: nothing to migrate", from)
	}
	list := workloads.ListFile(imgs)
	rules, err := workloads.ImagesJSON(imgs, to)
	if err != nil {
		return nil, err
	}
	if err := artifacts.WriteFile(filepath.Join(out, "workloads-images.txt"), list); err != nil {
		return nil, err
	}
	if err := artifacts.WriteFile(filepath.Join(out, "workloads-images.json"), rules); err != nil {
		return nil, err
	}
	entries, bad, err := inputs.ParseList(strings.NewReader(string(list)), "workloads-images.txt")
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("workload images: %v", bad[0])
	}
	return entries, nil
}

// defaultRunDir names a run directory that no other run started in the
// same second (on this machine or another sharing the folder) also takes.
func defaultRunDir(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "regmigrate-run-" + now.Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// scopeOf is the scope definition a spec (and the flags merged into it)
// gives: what decides whether a rerun may resume a plan.
func scopeOf(m *spec.Migration, specFile string) report.Scope {
	s := report.Scope{
		Migration: m.Metadata.Name, Source: m.Source.Registry, Target: m.Target.Registry, Spec: specFile,
		Filters: report.Filters{
			IncludeNamespaces: m.Filters.IncludeNamespaces, ExcludeNamespaces: m.Filters.ExcludeNamespaces,
			Repositories: m.Filters.Repositories, ExcludeRepos: m.Filters.ExcludeRepositories,
			Tags: m.Filters.Tags, ExcludeTags: m.Filters.ExcludeTags,
		},
		Shards: report.Shards{Size: m.Shards.Size, MinSize: m.Shards.MinSize, Max: m.Shards.Max},
	}
	for _, l := range m.Images.Lists {
		s.Inputs = append(s.Inputs, report.Input{Kind: "list", Path: l})
	}
	if m.Images.Rules != "" {
		s.Inputs = append(s.Inputs, report.Input{Kind: "rules", Path: m.Images.Rules})
	}
	return s
}

// layoutDirOf is the layout directory of a location on disk that can carry
// phase one's record (oci:DIR, oci-archive:FILE unpacked beside it), or "".
func layoutDirOf(l imageref.Location) (string, error) {
	switch l.Transport {
	case imageref.TransportOCI:
		return l.Path, nil
	case imageref.TransportOCIArchive:
		lay, err := ocilayout.OpenArchive(context.Background(), l.Path)
		if err != nil {
			return "", err
		}
		return lay.Dir(), nil
	}
	return "", nil
}

// parseSize reads a size such as 4GiB, 700MB, 2G or 1048576.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 {
		return 0, errors.New("want a positive size such as 4GiB, 700MiB or 4000000000")
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "kb": 1e3, "m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9, "t": 1 << 40, "tib": 1 << 40, "tb": 1e12}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q: want B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB)", unit)
	}
	if v*mult < 1<<20 {
		return 0, errors.New("parts under 1 MiB: give at least 1MiB")
	}
	return int64(v * mult), nil
}

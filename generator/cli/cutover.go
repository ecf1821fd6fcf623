package cli

import (
	"context"
	"errors"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/stepcli"
	"github.com/regmigrate/regmigrate/steps/stepcli/switchmodecmd"
	"github.com/regmigrate/regmigrate/steps/switchmode"
)

// bindCutover binds switch-mode's configuration to cobra flags (prefix:
// for the flags run already has under another meaning).
func bindCutover(c *cobra.Command, prefix string, cfg *switchmodecmd.Config) {
	fs := c.Flags()
	fs.StringSliceVar(&cfg.Contexts, prefix+"context", nil, "kubeconfig contexts of the clusters to switch (repeatable; default: the current one)")
	fs.BoolVar(&cfg.AllClusters, prefix+"all-clusters", false, "switch every named context (every context of the kubeconfig when none is named), only if every one's verify passed")
	fs.StringVar(&cfg.PullSecret, "pull-secret", "", "imagePullSecret for the target to add to rewritten pod specs (the Secret must exist in each namespace)")
	fs.BoolVar(&cfg.Workloads, "workloads", true, "rewrite workload images (false: only the mode record)")
	fs.StringVar(&cfg.RecordNS, "record-namespace", switchmode.DefaultNamespace, "namespace of the registry mode record ConfigMap")
	fs.StringVar(&cfg.RecordName, "record-name", switchmode.DefaultName, "name of the registry mode record ConfigMap")
	fs.StringVar(&cfg.Migration, "migration", "", "migration name to record")
	fs.BoolVar(&cfg.Confirm, "confirm", false, "apply (default: dry run: print and write switch.json and switch.diff only)")
	fs.BoolVar(&cfg.Force, "force", false, "switch to modern although verify did not pass")
}

func newCutoverCmd(env Env) *cobra.Command {
	var cfg switchmodecmd.Config
	var logFormat string
	c := &cobra.Command{
		Use:   "cutover",
		Short: "Switch a cluster to the new registry (mode record and workload images), or roll back",
		Long: `cutover does what the cutover Workflow's switch-mode step does: it records
the cluster's registry mode (a ConfigMap) and rewrites the image references
of Deployments, StatefulSets, DaemonSets and CronJobs from the legacy
registry to the target, for the images the verify report proves present.
The original references are kept on each object, and --rollback restores
exactly them. Nothing is written without --confirm.`,
		Example: `  regmigrate cutover --kubeconfig ~/.kube/config --verify-report run-1/report.json
  regmigrate cutover --kubeconfig ~/.kube/config --verify-report run-1/report.json --namespace shop --confirm
  regmigrate cutover --kubeconfig ~/.kube/config --rollback --confirm
  regmigrate cutover --kubeconfig all.yaml --context east --context west --verify-report east=e/report.json --verify-report west=w/report.json --all-clusters --confirm`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg.LogFormat = logFormat
			return runCutover(c.Context(), env, cfg)
		},
	}
	bindCutover(c, "", &cfg)
	fs := c.Flags()
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig of the cluster(s) (default: $KUBECONFIG, ~/.kube/config)")
	fs.StringArrayVar(&cfg.VerifyReports, "verify-report", nil, "the run's report.json: the proof (PATH, or CONTEXT=PATH per cluster; repeatable)")
	fs.StringVar(&cfg.RunDir, "run-dir", "", "a run directory: its report.json is the proof and switch.json/switch.diff go there")
	fs.StringVar(&cfg.Out, "out", "", "where to write switch.json and switch.diff (default: --run-dir, else the report's folder)")
	fs.StringVar(&cfg.From, "from", "", "legacy registry as workloads name it (default: the report's source)")
	fs.StringVar(&cfg.To, "to", "", "target registry as workloads should name it (default: the report's target)")
	fs.StringSliceVar(&cfg.Namespaces, "namespace", nil, "namespaces whose workloads to switch (default: all)")
	fs.BoolVar(&cfg.Rollback, "rollback", false, "switch back to legacy: restore the original image references and mode")
	fs.StringVar(&logFormat, "log-format", "text", "text or json")
	return c
}

// runCutover runs switch-mode in-process and maps its result to an exit
// code.
func runCutover(ctx context.Context, env Env, cfg switchmodecmd.Config) error {
	if cfg.Out == "" && cfg.RunDir == "" && len(cfg.VerifyReports) == 1 {
		path := cfg.VerifyReports[0]
		if _, p, ok := strings.Cut(path, "="); ok {
			path = p
		}
		cfg.Out = filepath.Dir(path)
	}
	code, err := switchmodecmd.Execute(ctx, stepcli.Env{Stdout: env.Stdout, Stderr: env.Stderr, Getenv: env.Getenv}, cfg)
	if err != nil {
		var u stepcli.Usage
		if errors.As(err, &u) {
			return usageError(u.Err)
		}
		return &ExitError{Code: contract.ExitFailed, Err: err}
	}
	if code != contract.ExitOK {
		return &ExitError{Code: code, Err: errors.New("the cutover is not complete: see the errors above and switch.diff; fix them and run it again (it only changes what is left)")}
	}
	return nil
}

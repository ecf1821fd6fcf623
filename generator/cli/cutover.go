package cli

import (
	"context"
	"errors"
	"flag"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/stepcli"
	"github.com/regmigrate/regmigrate/steps/stepcli/switchmodecmd"
)

// bindCutover adds switch-mode's own flags (switchmodecmd.BindSwitch,
// defined once for the step and the CLI) to a cobra command.
func bindCutover(c *cobra.Command, prefix string, cfg *switchmodecmd.Config) {
	gfs := flag.NewFlagSet(c.Name(), flag.ContinueOnError)
	switchmodecmd.BindSwitch(gfs, cfg, prefix)
	c.Flags().AddGoFlagSet(gfs)
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
	gfs := flag.NewFlagSet(c.Name(), flag.ContinueOnError)
	switchmodecmd.BindProof(gfs, &cfg)
	switchmodecmd.BindSwitch(gfs, &cfg, "")
	c.Flags().AddGoFlagSet(gfs)
	c.Flags().StringVar(&logFormat, "log-format", "text", "text or json")
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
		if contract.IsUsage(err) {
			return err
		}
		return &ExitError{Code: contract.ExitFailed, Err: err}
	}
	if code != contract.ExitOK {
		return &ExitError{Code: code, Err: errors.New("the cutover is not complete: see the errors above and switch.diff; fix them and run it again (it only changes what is left)")}
	}
	return nil
}

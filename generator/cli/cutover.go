package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/stepcli"
	"github.com/regmigrate/regmigrate/steps/stepcli/switchmodecmd"
	"github.com/regmigrate/regmigrate/steps/switchmode"
)

// addGoFlags adds switch-mode's flags (defined once, with Go's flag
// package, for the step and the CLI) to a cobra command, with the
// shorthands the CLI gives some of them (-n for the Kubernetes namespace,
// as kubectl).
func addGoFlags(c *cobra.Command, gfs *flag.FlagSet, shorthands map[string]string) {
	gfs.VisitAll(func(gf *flag.Flag) {
		pf := pflag.PFlagFromGoFlag(gf)
		pf.Shorthand = shorthands[gf.Name]
		c.Flags().AddFlag(pf)
	})
}

// bindCutover adds switch-mode's own flags (switchmodecmd.BindSwitch,
// defined once for the step and the CLI) to a cobra command.
func bindCutover(c *cobra.Command, prefix string, cfg *switchmodecmd.Config) {
	gfs := flag.NewFlagSet(c.Name(), flag.ContinueOnError)
	switchmodecmd.BindSwitch(gfs, cfg, prefix)
	addGoFlags(c, gfs, nil)
}

func newCutoverCmd(env Env) *cobra.Command {
	var cfg switchmodecmd.Config
	var logFormat string
	var out output
	c := &cobra.Command{
		Use:   "cutover",
		Short: "Switch a cluster to the new registry (mode record and workload images), or roll back",
		Long: `cutover does what the cutover Workflow's switch-mode step does: it records
the cluster's registry mode (a ConfigMap) and rewrites the image references
of Deployments, StatefulSets, DaemonSets and CronJobs from the legacy
registry to the target, for the images the verify report proves present.
The original references are kept on each object, and --rollback restores
exactly them. Nothing is written without --confirm.

Workloads that Argo CD, Flux or Helm manage are not rewritten live (a sync
would put the legacy images back): the dry run and switch.json say who
manages each one, and gitops/ gets a kustomize images patch per
application (the Helm values that carry images per release) to commit to
their source. --include-managed rewrites them live anyway.

--check changes nothing: it lists everything still tied to the legacy
registry (workload specs, running pods, unowned ReplicaSets, Jobs and
Pods, ImageStream tags, pull secrets) into check.json and check.md, and
exits 0 only when nothing is left: the gate before switching it off.

--node-mirror containerd|openshift rolls out the fallback at the node
instead: hosts.toml under containerd's config_path sending pulls of the
legacy host to the target (with its CA), written onto every node by a
DaemonSet; or an ImageDigestMirrorSet and ImageTagMirrorSet on
OpenShift/ACP. Dry run without --confirm; --rollback removes it.

-n/--namespace are Kubernetes namespaces here: the workloads to switch.`,
		Example: `  regmigrate cutover --kubeconfig ~/.kube/config --verify-report run-1/report.json
  regmigrate cutover --kubeconfig ~/.kube/config --check --from legacy.example:5000 --out audit
  regmigrate cutover --kubeconfig ~/.kube/config --node-mirror containerd --from legacy.example:5000 --to registry.example.com --node-mirror-ca ca.crt --node-mirror-image ghcr.io/regmigrate/switch-mode:v1.2.3
  regmigrate cutover --kubeconfig ~/.kube/config --verify-report run-1/report.json -n shop --confirm
  regmigrate cutover --kubeconfig ~/.kube/config --rollback --confirm
  regmigrate cutover --kubeconfig all.yaml --context east --context west --verify-report east=e/report.json --verify-report west=w/report.json --all-clusters --confirm`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			cfg.LogFormat, cfg.Verbose = logFormat, verbose(c)
			return runCutover(c.Context(), env, cfg, &out)
		},
	}
	gfs := flag.NewFlagSet(c.Name(), flag.ContinueOnError)
	switchmodecmd.BindProof(gfs, &cfg)
	switchmodecmd.BindSwitch(gfs, &cfg, "")
	addGoFlags(c, gfs, map[string]string{"namespace": "n"})
	bindOutput(c, &out, "json and yaml: switch.json; name: the workloads changed, or that would change, as KIND/NAMESPACE/NAME", outputJSON, outputYAML, outputName)
	c.Flags().StringVar(&logFormat, "log-format", "text", "`FORMAT` of the log lines on stderr: text or json")
	fs := c.Flags()
	setGroup(fs, groupProof, "run-dir", "verify-report", "check", "check-exit-zero", "image-api")
	setGroup(fs, groupCutover, "node-mirror", "node-mirror-ca", "node-mirror-image", "node-mirror-namespace", "node-mirror-plain-http", "containerd-config-path")
	setGroup(fs, groupCutover, "from", "to", "rollback", "workloads", "include-managed", "pull-secret", "record-namespace", "record-name", "migration", "confirm", "force")
	setGroup(fs, groupCluster, "kubeconfig", "context", "all-clusters", "namespace")
	setGroup(fs, groupOutput, "out", "log-format")
	return c
}

// runCutover runs switch-mode in-process, prints its result as -o asks,
// and maps its result to an exit code.
func runCutover(ctx context.Context, env Env, cfg switchmodecmd.Config, out *output) error {
	if cfg.Out == "" && cfg.RunDir == "" && len(cfg.VerifyReports) == 1 {
		path := cfg.VerifyReports[0]
		if _, p, ok := strings.Cut(path, "="); ok {
			path = p
		}
		cfg.Out = filepath.Dir(path)
	}
	if cfg.CheckGate {
		return runCheck(ctx, env, cfg, out)
	}
	if cfg.NodeMirror != "" {
		res, code, err := switchmodecmd.ExecuteNodeMirror(ctx, stepcli.Env{Stdout: out.readable(env), Stderr: env.Stderr, Getenv: env.Getenv}, cfg)
		if err != nil {
			if contract.IsUsage(err) {
				return err
			}
			return &ExitError{Code: contract.ExitFailed, Err: err}
		}
		if out.format == outputJSON || out.format == outputYAML {
			if err := out.print(env.Stdout, res); err != nil {
				return err
			}
		}
		if code != contract.ExitOK {
			return &ExitError{Code: code, Err: errors.New("the node mirror is not fully rolled out (or removed): see the errors above")}
		}
		return nil
	}
	res, code, err := switchmodecmd.Execute(ctx, stepcli.Env{Stdout: out.readable(env), Stderr: env.Stderr, Getenv: env.Getenv}, cfg)
	if err != nil {
		if contract.IsUsage(err) {
			return err
		}
		return &ExitError{Code: contract.ExitFailed, Err: err}
	}
	switch out.format {
	case outputName:
		printChanged(env, res)
	case outputJSON, outputYAML:
		if err := out.print(env.Stdout, res); err != nil {
			return err
		}
	}
	if code != contract.ExitOK {
		return &ExitError{Code: code, Err: errors.New("the cutover is not complete: see the errors above and switch.diff; fix them and run it again (it only changes what is left)")}
	}
	return nil
}

// runCheck runs the decommission gate: exit 0 only when nothing is left.
func runCheck(ctx context.Context, env Env, cfg switchmodecmd.Config, out *output) error {
	res, code, err := switchmodecmd.ExecuteCheck(ctx, stepcli.Env{Stdout: out.readable(env), Stderr: env.Stderr, Getenv: env.Getenv}, cfg)
	if err != nil {
		if contract.IsUsage(err) {
			return err
		}
		return &ExitError{Code: contract.ExitFailed, Err: err}
	}
	switch out.format {
	case outputName:
		for _, c := range res.Clusters {
			for _, f := range c.Findings {
				if len(res.Clusters) > 1 {
					fmt.Fprintf(env.Stdout, "%s/", c.Cluster)
				}
				fmt.Fprintf(env.Stdout, "%s/%s/%s\n", f.Kind, f.Namespace, f.Name)
			}
		}
	case outputJSON, outputYAML:
		if err := out.print(env.Stdout, res); err != nil {
			return err
		}
	}
	if code != contract.ExitOK {
		return &ExitError{Code: code, Err: errors.New("the legacy registry is still in use: see check.md; switch what is left (or commit the gitops/ patches and let them sync), then run --check again")}
	}
	return nil
}

// printChanged prints the workloads the cutover changed (or would
// change), one KIND/NAMESPACE/NAME a line; CLUSTER/ first when several
// clusters were switched.
func printChanged(env Env, res switchmode.Result) {
	for _, cl := range res.Clusters {
		for _, ob := range cl.Objects {
			switch ob.Action {
			case switchmode.ActionRewritten, switchmode.ActionRestored, switchmode.ActionWouldRewrite, switchmode.ActionWouldRestore:
			default:
				continue
			}
			if len(res.Clusters) > 1 {
				fmt.Fprintf(env.Stdout, "%s/", cl.Cluster)
			}
			fmt.Fprintln(env.Stdout, ob.Ref())
		}
	}
}

// Package switchmodecmd is the switch-mode step's command line, shared by
// the step binary (in the cutover Workflow) and `regmigrate cutover`.
package switchmodecmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/decommission"
	"github.com/regmigrate/regmigrate/steps/imageapi"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/logging"
	"github.com/regmigrate/regmigrate/steps/nodemirror"
	"github.com/regmigrate/regmigrate/steps/pipeline"
	"github.com/regmigrate/regmigrate/steps/report"
	"github.com/regmigrate/regmigrate/steps/stepcli"
	"github.com/regmigrate/regmigrate/steps/switchmode"
)

// Config is switch-mode's configuration, from flags or from the regmigrate
// CLI.
type Config struct {
	// RunDir: the run whose report.json is the proof; switch.json and
	// switch.diff are written there unless Out is set.
	RunDir string
	// VerifyReports: report.json paths, "PATH" for every cluster or
	// "CONTEXT=PATH" for one.
	VerifyReports []string
	Out           string
	Kubeconfig    string   // empty: $KUBECONFIG, ~/.kube/config, then in-cluster
	Contexts      []string // empty: the current context
	AllClusters   bool
	From, To      string
	Namespaces    []string
	Workloads     bool
	// IncludeManaged: rewrite live the workloads Argo CD, Flux or Helm
	// manage too.
	IncludeManaged bool
	PullSecret     string
	RecordNS       string
	RecordName     string
	Migration      string
	Confirm        bool
	Force          bool
	Rollback       bool
	LogFormat      string
	Verbose        bool // debug logs
	// CheckGate: change nothing; list what is still tied to the legacy
	// registry (check.json, check.md) and exit 0 only when nothing is.
	CheckGate bool
	// CheckExitZero: the gate exits 0 even when something is left (the
	// cutover Workflow's step, whose outputs remaining and clean say it).
	CheckExitZero bool
	// NodeMirror: instead of switching workloads, roll out (or, with
	// Rollback, remove) the node fallback: containerd or openshift.
	NodeMirror          string
	NodeMirrorCA        string // the target's CA certificate file
	NodeMirrorImage     string // the installer's image (the switch-mode step image)
	NodeMirrorNamespace string
	NodeMirrorPlainHTTP bool
	ConfigPath          string // containerd's config_path on the nodes
	// InstallNodeMirror: the DaemonSet's pod: copy MirrorSource into
	// MirrorDir, wait for SIGTERM, remove it.
	InstallNodeMirror       bool
	MirrorSource, MirrorDir string
	// ImageAPI: GROUP/VERSION of the Image API for the gate (empty:
	// discovered; none served: ImageStreams not checked).
	ImageAPI string
}

// BindProof binds the flags that name the proof, the cluster and what to
// switch back or forth; the step and `regmigrate cutover` both take them.
func BindProof(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.RunDir, "run-dir", "", "a run `DIR`: its report.json is the proof; switch.json and switch.diff are written there")
	fs.Var((*stepcli.Multi)(&c.VerifyReports), "verify-report", "the run's report.json: the proof (`[CONTEXT=]PATH`: PATH for every cluster, CONTEXT=PATH for one; repeatable)")
	fs.StringVar(&c.Out, "out", "", "`DIR` to write switch.json and switch.diff into (default: --run-dir, else the report's folder, else the current one)")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", "", "kubeconfig `FILE` of the cluster(s) (default: $KUBECONFIG, ~/.kube/config, then in-cluster)")
	fs.StringVar(&c.From, "from", "", "legacy registry as workloads name it: `HOST[:PORT][/NAMESPACE]` (default: the report's source)")
	fs.StringVar(&c.To, "to", "", "target registry as workloads should name it: `HOST[:PORT][/NAMESPACE]` (default: the report's target)")
	fs.Var((*stepcli.Multi)(&c.Namespaces), "namespace", "Kubernetes namespace `NS` whose workloads to switch (repeatable; default: all)")
	fs.BoolVar(&c.Rollback, "rollback", false, "switch back to legacy: restore the original image references and mode")
	fs.BoolVar(&c.CheckGate, "check", false, "change nothing: list everything still tied to the legacy registry (workload specs, running pods, unowned ReplicaSets, Jobs and Pods, ImageStream tags, pull secrets) into check.json and check.md; exit 0 only when nothing is left")
	fs.BoolVar(&c.CheckExitZero, "check-exit-zero", false, "with --check: exit 0 even when something is left (the outputs remaining and clean say it; the cutover Workflow's gate step)")
	fs.StringVar(&c.NodeMirror, "node-mirror", "", "instead of switching workloads: roll out the fallback at the node, `PLATFORM` containerd (hosts.toml sending pulls of --from to --to, written onto every node by a DaemonSet) or openshift (ImageDigestMirrorSet and ImageTagMirrorSet); dry run without --confirm, removed with --rollback")
	fs.StringVar(&c.NodeMirrorCA, "node-mirror-ca", "", "the target registry's CA certificate `FILE` (PEM) for the containerd node mirror")
	fs.StringVar(&c.NodeMirrorImage, "node-mirror-image", "", "`IMAGE` of the node mirror's DaemonSet: the switch-mode step image (it runs switch-mode --install-node-mirror)")
	fs.StringVar(&c.NodeMirrorNamespace, "node-mirror-namespace", nodemirror.DefaultNamespace, "Kubernetes namespace `NS` of the node mirror's ConfigMap and DaemonSet")
	fs.BoolVar(&c.NodeMirrorPlainHTTP, "node-mirror-plain-http", false, "the target serves plain HTTP (test registries only)")
	fs.StringVar(&c.ConfigPath, "containerd-config-path", nodemirror.DefaultConfigPath, "containerd's registry config_path `DIR` on the nodes")
	fs.StringVar(&c.ImageAPI, "image-api", "", "Image API `GROUP/VERSION` whose ImageStreams --check reads (default: discovered; none served: not checked)")
}

// BindSwitch binds the flags that say how to switch; the step, `regmigrate
// cutover` and `regmigrate run --cutover` all take them (run with prefix
// "cutover-" on the flags it already has under another meaning).
func BindSwitch(fs *flag.FlagSet, c *Config, prefix string) {
	c.Workloads = true
	fs.Var((*stepcli.Multi)(&c.Contexts), prefix+"context", "kubeconfig `CONTEXT` of a cluster to switch (repeatable; default: the current one)")
	fs.BoolVar(&c.AllClusters, prefix+"all-clusters", false, "switch every named context (every context of the kubeconfig when none is named), only if every one's verify passed")
	fs.BoolVar(&c.Workloads, "workloads", true, "rewrite workload images (false: only the mode record)")
	fs.BoolVar(&c.IncludeManaged, "include-managed", false, "rewrite live the workloads Argo CD, Flux or Helm manage too (default: leave them, say who manages them, and write their source's change into gitops/; a sync would put the legacy images back)")
	fs.StringVar(&c.PullSecret, "pull-secret", "", "imagePullSecret `NAME` for the target to add to rewritten pod specs (the Secret must exist in each namespace)")
	fs.StringVar(&c.RecordNS, "record-namespace", switchmode.DefaultNamespace, "Kubernetes namespace `NS` of the registry mode record ConfigMap")
	fs.StringVar(&c.RecordName, "record-name", switchmode.DefaultName, "`NAME` of the registry mode record ConfigMap")
	fs.StringVar(&c.Migration, "migration", "", "migration `NAME` to record")
	fs.BoolVar(&c.Confirm, "confirm", false, "apply (default: dry run: print and write switch.json and switch.diff only)")
	fs.BoolVar(&c.Force, "force", false, "switch to modern although verify did not pass")
}

// Parse parses switch-mode's arguments.
func Parse(args []string, stderr io.Writer) (*Config, error) {
	c := &Config{}
	fs := flag.NewFlagSet(contract.StepSwitchMode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	BindProof(fs, c)
	BindSwitch(fs, c, "")
	fs.StringVar(&c.LogFormat, "log-format", "json", "json or text")
	fs.BoolVar(&c.InstallNodeMirror, "install-node-mirror", false, "the node mirror DaemonSet's pod: copy --mirror-source into --mirror-dir, wait for SIGTERM, then remove what it wrote")
	fs.StringVar(&c.MirrorSource, "mirror-source", "", "`DIR` of the node mirror's files (the ConfigMap's mount)")
	fs.StringVar(&c.MirrorDir, "mirror-dir", "", "`DIR` on the node to write them into (config_path/LEGACY-HOST)")
	if err := stepcli.ParseFlags(fs, args); err != nil {
		return nil, err
	}
	return c, c.Check()
}

// Check validates a configuration.
func (c *Config) Check() error {
	if c.InstallNodeMirror {
		if c.MirrorSource == "" || c.MirrorDir == "" {
			return contract.Usage(errors.New("--install-node-mirror needs --mirror-source and --mirror-dir"))
		}
		return nil
	}
	if c.NodeMirror != "" {
		if c.CheckGate {
			return contract.Usage(errors.New("--node-mirror and --check are two runs: roll out the mirror, then --check"))
		}
		if c.NodeMirror != nodemirror.PlatformContainerd && c.NodeMirror != nodemirror.PlatformOpenShift {
			return contract.Usage(fmt.Errorf("--node-mirror %q: want %s or %s", c.NodeMirror, nodemirror.PlatformContainerd, nodemirror.PlatformOpenShift))
		}
		if (c.From == "" || c.To == "") && c.RunDir == "" && len(c.VerifyReports) == 0 {
			return contract.Usage(errors.New("--node-mirror needs the legacy registry and the target: give --from and --to, or --verify-report/--run-dir"))
		}
		if c.NodeMirror == nodemirror.PlatformContainerd && !c.Rollback && c.NodeMirrorImage == "" {
			return contract.Usage(errors.New("--node-mirror containerd needs --node-mirror-image: the switch-mode step image, which writes hosts.toml on each node"))
		}
		return nil
	}
	if c.CheckGate {
		for _, f := range []struct {
			name string
			set  bool
		}{{"--confirm", c.Confirm}, {"--rollback", c.Rollback}, {"--include-managed", c.IncludeManaged}, {"--force", c.Force}} {
			if f.set {
				return contract.Usage(fmt.Errorf("--check changes nothing: drop %s (run the cutover first, then --check)", f.name))
			}
		}
	}
	if c.CheckExitZero && !c.CheckGate {
		return contract.Usage(errors.New("--check-exit-zero goes with --check"))
	}
	if c.CheckGate {
		if c.From == "" && c.RunDir == "" && len(c.VerifyReports) == 0 {
			return contract.Usage(errors.New("--check needs the legacy registry: give --from HOST[:PORT][/NAMESPACE], or --verify-report/--run-dir (its source)"))
		}
		if c.ImageAPI != "" {
			if _, err := schema.ParseGroupVersion(c.ImageAPI); err != nil || !strings.Contains(c.ImageAPI, "/") {
				return contract.Usage(fmt.Errorf("--image-api %q: want GROUP/VERSION, e.g. image.openshift.io/v1", c.ImageAPI))
			}
		}
	}
	if !c.CheckGate && !c.Rollback && c.RunDir == "" && len(c.VerifyReports) == 0 {
		return contract.Usage(errors.New("switching to modern needs the proof: give --run-dir or --verify-report (a run's report.json)"))
	}
	for _, l := range []struct{ flag, v string }{{"--from", c.From}, {"--to", c.To}} {
		if l.v == "" {
			continue
		}
		if _, err := imageref.ParseLocation(l.v); err != nil {
			return contract.Usage(fmt.Errorf("%s: %w", l.flag, err))
		}
	}
	return nil
}

// Run runs the switch-mode step.
func Run(ctx context.Context, env stepcli.Env, args []string) (int, error) {
	c, err := Parse(args, env.Stderr)
	if err != nil {
		return 0, err
	}
	if c.InstallNodeMirror {
		err := nodemirror.Install(ctx, c.MirrorSource, c.MirrorDir, func() {
			fmt.Fprintf(env.Stdout, "node mirror written into %s; removed when this pod stops\n", c.MirrorDir)
		})
		return contract.ExitOK, err
	}
	if c.NodeMirror != "" {
		_, code, err := ExecuteNodeMirror(ctx, env, *c)
		return code, err
	}
	if c.CheckGate {
		_, code, err := ExecuteCheck(ctx, env, *c)
		return code, err
	}
	_, code, err := Execute(ctx, env, *c)
	return code, err
}

// ExecuteCheck runs the decommission gate on every cluster, writes
// check.json and check.md, prints the Markdown and the summary, and
// returns the result and the exit code (0 only when nothing is left).
func ExecuteCheck(ctx context.Context, env stepcli.Env, c Config) (decommission.Result, int, error) {
	var none decommission.Result
	if err := c.Check(); err != nil {
		return none, 0, err
	}
	contexts, err := c.contexts(env.Getenv)
	if err != nil {
		return none, 0, contract.Usage(err)
	}
	legacy, err := c.legacy(contexts)
	if err != nil {
		return none, 0, contract.Usage(err)
	}
	var clusters []decommission.Cluster
	for _, name := range contexts {
		cfg, dyn, err := c.connect(name)
		if err != nil {
			return none, 0, err
		}
		cl := decommission.Cluster{Name: clusterName(name), Client: dyn}
		if c.ImageAPI != "" {
			cl.ImageAPI, _ = schema.ParseGroupVersion(c.ImageAPI)
		} else if gv, err := imageapi.Discover(cfg); err == nil {
			cl.ImageAPI = gv
		} else if !errors.Is(err, imageapi.ErrNoImageAPI) {
			cl.ImageAPIError = err.Error()
		}
		clusters = append(clusters, cl)
	}
	res := decommission.Check(ctx, decommission.Options{Clusters: clusters, Legacy: legacy, Namespaces: c.Namespaces})
	out := c.Out
	if out == "" {
		out = c.RunDir
	}
	if out == "" {
		out = "."
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return res, 0, err
	}
	if err := artifacts.WriteJSON(filepath.Join(out, decommission.ResultFile), res); err != nil {
		return res, 0, err
	}
	md := res.Markdown()
	if err := artifacts.WriteFile(filepath.Join(out, decommission.MarkdownFile), []byte(md)); err != nil {
		return res, 0, err
	}
	io.WriteString(env.Stdout, md)
	fmt.Fprintln(env.Stdout, res.Summary())
	fmt.Fprintf(env.Stdout, "written: %s, %s\n", filepath.Join(out, decommission.ResultFile), filepath.Join(out, decommission.MarkdownFile))
	clean := 0
	if res.Clean {
		clean = 1
	}
	if err := stepcli.WriteOutputs(env, map[string]int{"remaining": res.Remaining, "clean": clean}); err != nil {
		logging.New(env.Stderr, c.LogFormat, slog.LevelInfo).Warn("writing output parameters", "err", err)
	}
	if c.CheckExitZero {
		return res, contract.ExitOK, nil
	}
	return res, res.ExitCode(), nil
}

// NodeMirrorResult is node-mirror.json.
type NodeMirrorResult struct {
	Platform string              `json:"platform"`
	Legacy   string              `json:"legacy"`
	Target   string              `json:"target"`
	Rollback bool                `json:"rollback,omitempty"`
	DryRun   bool                `json:"dryRun"`
	Changes  []nodemirror.Change `json:"changes"`
	Failed   int                 `json:"failed"`
}

// Files of the node mirror.
const (
	NodeMirrorYAML = "node-mirror.yaml"
	NodeMirrorJSON = "node-mirror.json"
)

// ExecuteNodeMirror rolls out (or removes) the node fallback in the
// current cluster, and writes node-mirror.yaml (the objects) and
// node-mirror.json (what happened).
func ExecuteNodeMirror(ctx context.Context, env stepcli.Env, c Config) (NodeMirrorResult, int, error) {
	var none NodeMirrorResult
	if err := c.Check(); err != nil {
		return none, 0, err
	}
	contexts, err := c.contexts(env.Getenv)
	if err != nil {
		return none, 0, contract.Usage(err)
	}
	legacy, target, err := c.locations(contexts)
	if err != nil {
		return none, 0, contract.Usage(err)
	}
	cfg := nodemirror.Config{Legacy: legacy, Target: target, PlainHTTP: c.NodeMirrorPlainHTTP, ConfigPath: c.ConfigPath}
	if c.NodeMirrorCA != "" {
		if cfg.CA, err = os.ReadFile(c.NodeMirrorCA); err != nil {
			return none, 0, contract.Usage(fmt.Errorf("--node-mirror-ca: %w", err))
		}
	}
	image := c.NodeMirrorImage
	if image == "" {
		image = "unused-on-rollback"
	}
	objs, err := nodemirror.Objects(cfg, nodemirror.ObjectOptions{Platform: c.NodeMirror, Namespace: c.NodeMirrorNamespace, Image: image})
	if err != nil {
		return none, 0, contract.Usage(err)
	}
	res := NodeMirrorResult{Platform: c.NodeMirror, Legacy: legacy.String(), Target: target.String(), Rollback: c.Rollback, DryRun: !c.Confirm}
	for _, name := range contexts {
		_, dyn, err := c.connect(name)
		if err != nil {
			return none, 0, err
		}
		if c.Rollback {
			res.Changes = append(res.Changes, nodemirror.Remove(ctx, dyn, objs, c.Confirm)...)
		} else {
			res.Changes = append(res.Changes, nodemirror.Apply(ctx, dyn, objs, c.Confirm)...)
		}
	}
	for _, ch := range res.Changes {
		if ch.Action == nodemirror.ActionFailed || ch.Action == nodemirror.ActionNotServed {
			res.Failed++
		}
	}
	out := c.Out
	if out == "" {
		out = c.RunDir
	}
	if out == "" {
		out = "."
	}
	y, err := nodemirror.YAML(objs)
	if err != nil {
		return res, 0, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return res, 0, err
	}
	if err := artifacts.WriteFile(filepath.Join(out, NodeMirrorYAML), y); err != nil {
		return res, 0, err
	}
	if err := artifacts.WriteJSON(filepath.Join(out, NodeMirrorJSON), res); err != nil {
		return res, 0, err
	}
	if res.DryRun && !c.Rollback {
		env.Stdout.Write(y)
	}
	for _, ch := range res.Changes {
		line := fmt.Sprintf("%s: %s", ch.Object, ch.Action)
		if ch.Error != "" {
			line += ": " + ch.Error
		}
		fmt.Fprintln(env.Stdout, line)
	}
	what := "rolled out"
	switch {
	case c.Rollback && res.DryRun:
		what = "would be removed (dry run; --confirm removes it)"
	case c.Rollback:
		what = "removed (the DaemonSet's pods delete hosts.toml as they stop)"
	case res.DryRun:
		what = "would be rolled out (dry run; --confirm applies)"
	}
	fmt.Fprintf(env.Stdout, "node mirror %s → %s (%s): %s, %d failed; written: %s\n", legacy, target, c.NodeMirror, what, res.Failed, filepath.Join(out, NodeMirrorYAML))
	if res.Failed > 0 {
		return res, contract.ExitFailed, nil
	}
	return res, contract.ExitOK, nil
}

// locations: --from and --to, else the verify report's source and
// target.
func (c Config) locations(contexts []string) (from, to imageref.Location, err error) {
	var rep report.Report
	if c.From == "" || c.To == "" {
		for _, name := range contexts {
			if path := c.reportFor(name); path != "" {
				if err := artifacts.ReadJSON(path, &rep); err != nil {
					return from, to, fmt.Errorf("the verify report: %w", err)
				}
				break
			}
		}
	}
	f, t := c.From, c.To
	if f == "" {
		f = rep.Source
	}
	if t == "" {
		t = rep.Target
	}
	if from, err = imageref.ParseLocation(f); err != nil {
		return from, to, fmt.Errorf("the legacy registry: %w", err)
	}
	if to, err = imageref.ParseLocation(t); err != nil {
		return from, to, fmt.Errorf("the target: %w", err)
	}
	return from, to, nil
}

// legacy is the registry the gate looks for: --from, else the verify
// report's source.
func (c Config) legacy(contexts []string) (imageref.Location, error) {
	if c.From != "" {
		return imageref.ParseLocation(c.From)
	}
	for _, name := range contexts {
		if path := c.reportFor(name); path != "" {
			var rep report.Report
			if err := artifacts.ReadJSON(path, &rep); err != nil {
				return imageref.Location{}, fmt.Errorf("the verify report (for the legacy registry): %w", err)
			}
			return imageref.ParseLocation(rep.Source)
		}
	}
	return imageref.Location{}, errors.New("--check needs the legacy registry: give --from")
}

// Execute switches every cluster, writes switch.json and switch.diff,
// prints the diff and the summary, and returns the result (switch.json)
// and the exit code.
func Execute(ctx context.Context, env stepcli.Env, c Config) (switchmode.Result, int, error) {
	var none switchmode.Result
	if err := c.Check(); err != nil {
		return none, 0, err
	}
	lvl := slog.LevelInfo
	if c.Verbose {
		lvl = slog.LevelDebug
	}
	log := logging.New(env.Stderr, c.LogFormat, lvl)
	contexts, err := c.contexts(env.Getenv)
	if err != nil {
		return none, 0, contract.Usage(err)
	}
	var clusters []switchmode.Cluster
	for _, name := range contexts {
		_, dyn, err := c.connect(name)
		if err != nil {
			return none, 0, err
		}
		cl := switchmode.Cluster{Name: clusterName(name), Client: dyn}
		if path := c.reportFor(name); path != "" {
			var rep report.Report
			if err := artifacts.ReadJSON(path, &rep); err != nil {
				return none, 0, contract.Usage(fmt.Errorf("the verify report: %w", err))
			}
			if cl.Proof, err = switchmode.ProofFromReport(rep); err != nil {
				return none, 0, contract.Usage(fmt.Errorf("%s: %w", path, err))
			}
		} else if !c.Rollback {
			return none, 0, contract.Usage(fmt.Errorf("no verify report for cluster %s: give --verify-report %s=PATH", cl.Name, name))
		} else {
			cl.Proof.Why = "no verify report"
		}
		clusters = append(clusters, cl)
	}
	var from, to imageref.Location
	if c.From != "" {
		from, _ = imageref.ParseLocation(c.From)
	}
	if c.To != "" {
		to, _ = imageref.ParseLocation(c.To)
	}
	res, err := switchmode.Switch(ctx, switchmode.Options{
		Clusters: clusters, Rollback: c.Rollback, From: from, To: to, Namespaces: c.Namespaces,
		Workloads: c.Workloads, IncludeManaged: c.IncludeManaged, PullSecret: c.PullSecret, RecordNamespace: c.RecordNS, RecordName: c.RecordName,
		Migration: c.Migration, Confirm: c.Confirm, Force: c.Force, AllClusters: c.AllClusters, Logger: log,
	})
	if err != nil {
		return res, contract.ExitFailed, err
	}
	out := c.Out
	if out == "" {
		out = c.RunDir
	}
	if out == "" {
		out = "."
	}
	if err := switchmode.Write(out, res); err != nil {
		return res, 0, err
	}
	// The run's report.html shows the cutover record: render it again
	// when the cutover was written beside a report.
	if _, err := os.Stat(filepath.Join(out, contract.ReportJSON)); err == nil {
		if _, err := pipeline.Render(out); err != nil {
			log.Warn("the report could not show the cutover", "err", err)
		}
	}
	io.WriteString(env.Stdout, switchmode.Diff(res))
	for _, cr := range res.Clusters {
		for _, e := range cr.Errors {
			fmt.Fprintf(env.Stderr, "%s: cluster %s: %s\n", contract.StepSwitchMode, cr.Cluster, e)
		}
	}
	fmt.Fprintln(env.Stdout, res.Summary())
	fmt.Fprintf(env.Stdout, "written: %s, %s\n", filepath.Join(out, switchmode.ResultFile), filepath.Join(out, switchmode.DiffFile))
	if err := stepcli.WriteOutputs(env, map[string]int{"rewritten": res.Rewritten, "restored": res.Restored, "pending": res.Pending, "failed": res.Failed, "unproven": res.Unproven, "managed": res.Managed}); err != nil {
		log.Warn("writing output parameters", "err", err)
	}
	return res, res.ExitCode(), nil
}

// contexts are the clusters to switch: "" is the current context (or
// in-cluster).
func (c Config) contexts(getenv func(string) string) ([]string, error) {
	if len(c.Contexts) > 0 {
		return dedupe(c.Contexts), nil
	}
	if !c.AllClusters {
		return []string{""}, nil
	}
	path := c.Kubeconfig
	if path == "" {
		path = getenv("KUBECONFIG")
	}
	if path == "" {
		return nil, errors.New("--all-clusters without --context needs --kubeconfig: its contexts are the clusters")
	}
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var names []string
	for n := range kc.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("%s has no contexts", path)
	}
	return names, nil
}

// reportFor: CONTEXT=PATH first, then a plain PATH, then the run's report.
func (c Config) reportFor(context string) string {
	plain := ""
	for _, r := range c.VerifyReports {
		if ctx, path, ok := strings.Cut(r, "="); ok {
			if ctx == context && context != "" {
				return path
			}
			continue
		}
		plain = r
	}
	if plain != "" {
		return plain
	}
	if c.RunDir != "" {
		return filepath.Join(c.RunDir, contract.ReportJSON)
	}
	return ""
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// connect builds the REST config and dynamic client of one kubeconfig
// context ("" is the current one); its errors are the user's to fix.
func (c *Config) connect(context string) (*rest.Config, dynamic.Interface, error) {
	cfg, err := imageapi.Config(c.Kubeconfig, context, 50, 100)
	if err != nil {
		return nil, nil, contract.Usage(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, contract.Usage(err)
	}
	return cfg, dyn, nil
}

// clusterName is how results name a kubeconfig context: "current" for the
// current one.
func clusterName(context string) string {
	if context == "" {
		return "current"
	}
	return context
}

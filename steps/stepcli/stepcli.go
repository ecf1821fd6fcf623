// Package stepcli is the command line of the step binaries (export,
// mirror-shard, verify): standard-library flags bound to each step's
// Options, so the binaries stay small and free of cobra. The generator
// renders the same flag names from package contract, and a test parses the
// generator's container args with these parsers.
package stepcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/connect"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/inputs"
	"github.com/regmigrate/regmigrate/steps/mirror"
	"github.com/regmigrate/regmigrate/steps/progress"
	"github.com/regmigrate/regmigrate/steps/report"
	"github.com/regmigrate/regmigrate/steps/verify"
)

// Env is the process environment, read at the composition root.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// OSEnv is the real environment.
func OSEnv() Env { return Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv} }

// common flags of every step.
type common struct {
	insecure  string
	certsDir  string
	authFile  string
	authJSON  string
	maxPerReg int
	retries   int
	jobs      int
	logFormat string
}

func (c *common) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.insecure, "insecure", "", "comma-separated registries reachable over plain HTTP / unverified TLS")
	fs.StringVar(&c.certsDir, "certs-dir", "", "docker certs.d-style folder")
	fs.StringVar(&c.authFile, "authfile", "", "docker config.json with credentials (default $REGISTRY_AUTH_FILE, then $DOCKER_CONFIG/config.json)")
	fs.StringVar(&c.authJSON, "auth", "", "image-migrator auth.json")
	fs.IntVar(&c.maxPerReg, "max-per-registry", 0, "concurrent requests per registry")
	fs.IntVar(&c.retries, "retries", 0, "attempts per request")
	fs.IntVar(&c.jobs, "jobs", 0, "images at once")
	fs.StringVar(&c.logFormat, "log-format", "json", "json or text")
}

func (c *common) connect(env Env, logger *slog.Logger) connect.Options {
	var insecure []string
	for _, h := range strings.Split(c.insecure, ",") {
		if h = strings.TrimSpace(h); h != "" {
			insecure = append(insecure, h)
		}
	}
	authFile := c.authFile
	if authFile == "" {
		authFile = env.Getenv("REGISTRY_AUTH_FILE")
	}
	dockerConfig := env.Getenv("DOCKER_CONFIG")
	if dockerConfig == "" && env.Getenv("HOME") != "" {
		dockerConfig = filepath.Join(env.Getenv("HOME"), ".docker")
	}
	return connect.Options{
		Insecure: insecure, CertsDir: c.certsDir, DockerConfig: dockerConfig, AuthFile: authFile,
		AuthJSON: c.authJSON, Getenv: env.Getenv, MaxPerRegistry: c.maxPerReg, Retries: c.retries, Logger: logger,
	}
}

func (c *common) logger(env Env) *slog.Logger {
	if c.logFormat == "text" {
		return slog.New(slog.NewTextHandler(env.Stderr, nil))
	}
	return slog.New(slog.NewJSONHandler(env.Stderr, nil))
}

func progressFor(env Env) *progress.Reporter {
	return progress.New(progress.Options{Out: env.Stderr, Mode: progress.Lines, ArgoFile: env.Getenv("ARGO_PROGRESS_FILE")})
}

// usage is a flag or input error (exit 2).
type usage struct{ err error }

func (u usage) Error() string { return u.err.Error() }

// Main runs step name with args and returns its exit code.
func Main(ctx context.Context, env Env, name string, args []string) int {
	var code int
	var err error
	switch name {
	case contract.StepExport:
		code, err = runExport(ctx, env, args)
	case contract.StepMirror:
		code, err = runMirror(ctx, env, args)
	case contract.StepVerify:
		code, err = runVerify(ctx, env, args)
	default:
		err = usage{fmt.Errorf("unknown step %q", name)}
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", name, err)
		var u usage
		if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
			return contract.ExitUsage
		}
		if errors.Is(err, context.Canceled) {
			return contract.ExitRetryable
		}
		return contract.ExitFailed
	}
	return code
}

// ExportFlags are export's flags, parsed.
type ExportFlags struct {
	common
	From, To                string
	Images                  multi
	Rules                   string
	Out                     string
	IncludeNS, ExcludeNS    string
	RepoRegex, TagRegex     string
	ExcludeRepo, ExcludeTag string
	ShardSize, MinShardSize int
	MaxShards               int
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

// ParseExport parses export's arguments.
func ParseExport(args []string, stderr io.Writer) (*ExportFlags, error) {
	f := &ExportFlags{}
	fs := flag.NewFlagSet(contract.StepExport, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.common.bind(fs)
	fs.StringVar(&f.From, "from", "", "legacy registry HOST[:PORT][/NAMESPACE]")
	fs.StringVar(&f.To, "to", "", "new registry HOST[:PORT][/NAMESPACE]")
	fs.Var(&f.Images, "images", "image list / ac table / mapping file (repeatable)")
	fs.StringVar(&f.Rules, "rules", "", "image-migrator images.json")
	fs.StringVar(&f.Out, "out", "", "run directory to write")
	fs.StringVar(&f.IncludeNS, "namespace", "", "comma-separated namespaces to include")
	fs.StringVar(&f.ExcludeNS, "exclude-namespace", "", "comma-separated namespaces to leave out")
	fs.StringVar(&f.RepoRegex, "repo-regex", "", "repository regex")
	fs.StringVar(&f.ExcludeRepo, "exclude-repo-regex", "", "repository regex to leave out")
	fs.StringVar(&f.TagRegex, "tag-regex", "", "tag regex")
	fs.StringVar(&f.ExcludeTag, "exclude-tag-regex", "", "tag regex to leave out")
	fs.IntVar(&f.ShardSize, "shard-size", 0, "split namespaces larger than this")
	fs.IntVar(&f.MinShardSize, "min-shard-size", 0, "pack namespaces smaller than this")
	fs.IntVar(&f.MaxShards, "max-shards", 0, "at most this many shards")
	if err := fs.Parse(args); err != nil {
		return nil, usage{err}
	}
	if fs.NArg() > 0 {
		return nil, usage{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if f.Out == "" || f.To == "" {
		return nil, usage{errors.New("--out and --to are required")}
	}
	return f, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func runExport(ctx context.Context, env Env, args []string) (int, error) {
	f, err := ParseExport(args, env.Stderr)
	if err != nil {
		return 0, err
	}
	log := f.logger(env)
	c, err := connect.Client(f.connect(env, log))
	if err != nil {
		return 0, usage{err}
	}
	var from imageref.Location
	if f.From != "" {
		if from, err = imageref.ParseLocation(f.From); err != nil {
			return 0, usage{err}
		}
	}
	to, err := imageref.ParseLocation(f.To)
	if err != nil {
		return 0, usage{err}
	}
	var entries []inputs.Entry
	var bad int
	for _, l := range f.Images {
		es, lineErrs, err := inputs.ReadListFile(l)
		if err != nil {
			return 0, usage{err}
		}
		entries = append(entries, es...)
		for _, le := range lineErrs {
			log.Error("bad input line", "err", le)
			bad++
		}
	}
	if f.Rules != "" {
		es, lineErrs, err := inputs.ReadImagesJSON(f.Rules, inputs.RulesOptions{DefaultRegistry: to.Registry, DefaultNamespace: to.Namespace})
		if err != nil {
			return 0, usage{err}
		}
		entries = append(entries, es...)
		for _, le := range lineErrs {
			log.Error("bad rule", "err", le)
			bad++
		}
	}
	filter, err := inputs.NewFilter(inputs.FilterOptions{
		IncludeNamespaces: splitList(f.IncludeNS), ExcludeNamespaces: splitList(f.ExcludeNS),
		RepoRegex: f.RepoRegex, ExcludeRepoRegex: f.ExcludeRepo, TagRegex: f.TagRegex, ExcludeTagRegex: f.ExcludeTag,
	})
	if err != nil {
		return 0, usage{err}
	}
	res, err := export.Run(ctx, export.Options{
		Client: c, From: from, To: to, Entries: entries, Filter: filter,
		ShardSize: f.ShardSize, MinShardSize: f.MinShardSize, MaxShards: f.MaxShards, Jobs: f.jobs,
		Progress: progressFor(env), Logger: log,
	})
	if err != nil {
		return 0, err
	}
	if err := export.Write(artifacts.Dir(f.Out), res); err != nil {
		return 0, err
	}
	s := res.Summary()
	fmt.Fprintf(env.Stdout, "exported %d images (%d unresolved) in %d shards to %s\n", s.Total, s.Unresolved, s.Shards, f.Out)
	if bad > 0 {
		return contract.ExitFailed, fmt.Errorf("%d bad input lines skipped", bad)
	}
	return contract.ExitOK, nil
}

// MirrorFlags are mirror-shard's flags, parsed.
type MirrorFlags struct {
	common
	ShardDir      string
	Platforms     string
	NoReferrers   bool
	NoAttachments bool
	DryRun        bool
}

// ParseMirror parses mirror-shard's arguments.
func ParseMirror(args []string, stderr io.Writer) (*MirrorFlags, error) {
	f := &MirrorFlags{}
	fs := flag.NewFlagSet(contract.StepMirror, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.common.bind(fs)
	fs.StringVar(&f.ShardDir, "shard-dir", "", "the shard's folder: reads mapping.txt, writes mirror.log and mirror.json")
	fs.StringVar(&f.Platforms, "platform", "", "comma-separated platforms to keep (changes index digests)")
	fs.BoolVar(&f.NoReferrers, "no-referrers", false, "do not copy OCI referrers")
	fs.BoolVar(&f.NoAttachments, "no-attachments", false, "do not copy signature/attestation tags (sha256-<hex>.sig/.att/.sbom)")
	fs.BoolVar(&f.DryRun, "dry-run", false, "compare only")
	if err := fs.Parse(args); err != nil {
		return nil, usage{err}
	}
	if fs.NArg() > 0 {
		return nil, usage{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if f.ShardDir == "" {
		return nil, usage{errors.New("--shard-dir is required")}
	}
	return f, nil
}

func runMirror(ctx context.Context, env Env, args []string) (int, error) {
	f, err := ParseMirror(args, env.Stderr)
	if err != nil {
		return 0, err
	}
	log := f.logger(env)
	c, err := connect.Client(f.connect(env, log))
	if err != nil {
		return 0, usage{err}
	}
	items, err := artifacts.ReadMapping(filepath.Join(f.ShardDir, contract.ShardMapping))
	if err != nil {
		return 0, usage{err}
	}
	lf, err := os.OpenFile(filepath.Join(f.ShardDir, contract.MirrorLog), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	defer lf.Close()
	ph := progressFor(env).Start("mirror", len(items))
	res, err := mirror.Run(ctx, mirror.Options{
		Client: c, Items: items, Jobs: f.jobs, Platforms: splitList(f.Platforms), NoReferrers: f.NoReferrers,
		NoAttachments: f.NoAttachments, DryRun: f.DryRun, Log: lf, Logger: log, Progress: ph,
	})
	ph.Finish()
	if werr := artifacts.WriteJSON(filepath.Join(f.ShardDir, contract.MirrorResult), res); werr != nil {
		return 0, werr
	}
	if err := writeOutputs(env, res.Copied, res.Skipped, res.Failed); err != nil {
		log.Warn("writing output parameters", "err", err)
	}
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(env.Stdout, "mirror: %d copied, %d skipped, %d failed, %s\n", res.Copied, res.Skipped, res.Failed, progress.HumanBytes(res.Bytes))
	return res.ExitCode(), nil
}

// writeOutputs writes counts where Argo reads output parameters
// (REGMIGRATE_OUTPUTS_DIR/{copied,skipped,failed}).
func writeOutputs(env Env, copied, skipped, failed int) error {
	dir := env.Getenv("REGMIGRATE_OUTPUTS_DIR")
	if dir == "" {
		return nil
	}
	for k, v := range map[string]int{"copied": copied, "skipped": skipped, "failed": failed} {
		if err := artifacts.WriteFile(filepath.Join(dir, k), []byte(fmt.Sprint(v))); err != nil {
			return err
		}
	}
	return nil
}

// VerifyFlags are verify's flags, parsed.
type VerifyFlags struct {
	common
	ShardDir string
	RunDir   string
	Mode     string
}

// ParseVerify parses verify's arguments.
func ParseVerify(args []string, stderr io.Writer) (*VerifyFlags, error) {
	f := &VerifyFlags{}
	fs := flag.NewFlagSet(contract.StepVerify, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.common.bind(fs)
	fs.StringVar(&f.ShardDir, "shard-dir", "", "verify one shard: reads mirror.json (or mapping.txt), writes verify.json")
	fs.StringVar(&f.RunDir, "run-dir", "", "aggregate: read every shard's results, write report.json and report.md")
	fs.StringVar(&f.Mode, "mode", verify.ModeAuto, "auto (deep-check what mirror copied), full (deep-check everything) or digest")
	if err := fs.Parse(args); err != nil {
		return nil, usage{err}
	}
	if (f.ShardDir == "") == (f.RunDir == "") {
		return nil, usage{errors.New("give exactly one of --shard-dir and --run-dir")}
	}
	return f, nil
}

func runVerify(ctx context.Context, env Env, args []string) (int, error) {
	f, err := ParseVerify(args, env.Stderr)
	if err != nil {
		return 0, err
	}
	if f.RunDir != "" {
		return aggregate(env, artifacts.Dir(f.RunDir))
	}
	log := f.logger(env)
	c, err := connect.Client(f.connect(env, log))
	if err != nil {
		return 0, usage{err}
	}
	exp, err := expectations(f.ShardDir)
	if err != nil {
		return 0, usage{err}
	}
	ph := progressFor(env).Start("verify", len(exp))
	res, err := verify.Run(ctx, verify.Options{Client: c, Expects: exp, Mode: f.Mode, Jobs: f.jobs, Progress: ph, Logger: log})
	ph.Finish()
	if err != nil {
		return 0, err
	}
	if err := artifacts.WriteJSON(filepath.Join(f.ShardDir, contract.VerifyResult), res); err != nil {
		return 0, err
	}
	fmt.Fprintf(env.Stdout, "verify: %d passed, %d failed\n", res.Passed, res.Failed)
	if !res.OK() {
		return contract.ExitFailed, nil
	}
	return contract.ExitOK, nil
}

// expectations come from mirror.json (the digests now on the target), else
// from the shard's plan.
func expectations(shardDir string) ([]verify.Expect, error) {
	var mr mirror.Result
	if err := artifacts.ReadJSON(filepath.Join(shardDir, contract.MirrorResult), &mr); err == nil {
		exp := make([]verify.Expect, 0, len(mr.Images))
		for _, im := range mr.Images {
			t, err := imageref.Parse(im.Target)
			if err != nil {
				return nil, err
			}
			exp = append(exp, verify.Expect{Target: t, Digest: im.Digest, Copied: im.Status == contract.StatusCopied})
		}
		return exp, nil
	}
	items, err := artifacts.ReadMapping(filepath.Join(shardDir, contract.ShardMapping))
	if err != nil {
		return nil, err
	}
	exp := make([]verify.Expect, 0, len(items))
	for _, it := range items {
		exp = append(exp, verify.Expect{Target: it.Target, Digest: it.Source.Digest})
	}
	return exp, nil
}

// aggregate builds report.json/md from the shards' results.
func aggregate(env Env, dir artifacts.Dir) (int, error) {
	var plan artifacts.Plan
	if err := artifacts.ReadJSON(dir.Path(contract.ShardsFile), &plan); err != nil {
		return 0, usage{err}
	}
	var ins []report.ShardInput
	for _, s := range plan.Shards {
		in := report.ShardInput{Shard: s}
		if err := artifacts.ReadJSON(filepath.Join(dir.ShardDir(s.ID), contract.MirrorResult), &in.Mirror); err != nil {
			return 0, fmt.Errorf("shard %s has no mirror result: %w", s.ID, err)
		}
		var v verify.Result
		if err := artifacts.ReadJSON(filepath.Join(dir.ShardDir(s.ID), contract.VerifyResult), &v); err == nil {
			in.Verify = &v
		}
		ins = append(ins, in)
	}
	rep := report.Build(plan, ins)
	if err := artifacts.WriteJSON(dir.Path(contract.ReportJSON), rep); err != nil {
		return 0, err
	}
	if err := artifacts.WriteFile(dir.Path(contract.ReportMD), []byte(rep.Markdown())); err != nil {
		return 0, err
	}
	fmt.Fprintln(env.Stdout, rep.SummaryLine())
	return rep.ExitCode(), nil
}

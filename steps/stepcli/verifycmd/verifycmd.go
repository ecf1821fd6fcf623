// Package verifycmd is the verify step's command line.
package verifycmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/mirror"
	"github.com/regmigrate/regmigrate/steps/report"
	"github.com/regmigrate/regmigrate/steps/stepcli"
	"github.com/regmigrate/regmigrate/steps/verify"
)

// Flags are verify's flags, parsed.
type Flags struct {
	stepcli.Common
	ShardDir string
	RunDir   string
	Mode     string
}

// Parse parses verify's arguments.
func Parse(args []string, stderr io.Writer) (*Flags, error) {
	f := &Flags{}
	fs := flag.NewFlagSet(contract.StepVerify, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.Common.Bind(fs)
	fs.StringVar(&f.ShardDir, "shard-dir", "", "verify one shard: reads mirror.json (or mapping.txt), writes verify.json")
	fs.StringVar(&f.RunDir, "run-dir", "", "aggregate: read every shard's results, write report.json and report.md")
	fs.StringVar(&f.Mode, "mode", verify.ModeAuto, "auto (deep-check what mirror copied), full (deep-check everything) or digest")
	if err := stepcli.ParseFlags(fs, args); err != nil {
		return nil, err
	}
	if (f.ShardDir == "") == (f.RunDir == "") {
		return nil, stepcli.Usage{Err: errors.New("give exactly one of --shard-dir and --run-dir")}
	}
	return f, nil
}

// Run runs verify.
func Run(ctx context.Context, env stepcli.Env, args []string) (int, error) {
	f, err := Parse(args, env.Stderr)
	if err != nil {
		return 0, err
	}
	if f.RunDir != "" {
		return aggregate(env, artifacts.Dir(f.RunDir))
	}
	log, c, err := f.Client(env)
	if err != nil {
		return 0, err
	}
	exp, err := expectations(f.ShardDir)
	if err != nil {
		return 0, stepcli.Usage{Err: err}
	}
	ph := stepcli.ProgressFor(env).Start("verify", len(exp))
	res, err := verify.Run(ctx, verify.Options{Client: c, Expects: exp, Mode: f.Mode, Jobs: f.Jobs, Progress: ph, Logger: log})
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
		// A separate pod: nothing this process saw proves a tag, so every
		// tag is resolved again.
		return verify.FromMirror(mr.Images, false)
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
func aggregate(env stepcli.Env, dir artifacts.Dir) (int, error) {
	var plan artifacts.Plan
	if err := artifacts.ReadJSON(dir.Path(contract.ShardsFile), &plan); err != nil {
		return 0, stepcli.Usage{Err: err}
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
	var exp export.Summary
	if err := artifacts.ReadJSON(dir.Path(contract.ExportFile), &exp); err == nil {
		rep.ScopeErrors = exp.Errors
	}
	if err := artifacts.WriteJSON(dir.Path(contract.ReportJSON), rep); err != nil {
		return 0, err
	}
	if err := artifacts.WriteFile(dir.Path(contract.ReportMD), []byte(rep.Markdown())); err != nil {
		return 0, err
	}
	fmt.Fprintln(env.Stdout, rep.SummaryLine())
	return rep.ExitCode(), nil
}

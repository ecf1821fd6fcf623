package pipeline

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/dockerhub"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/steps/report"
)

// ExportOptions for Export.
type ExportOptions struct {
	// RunDir receives the plan: images.txt, digests.txt, shards.json,
	// export.json, shard-ids.json and shards/<id>/{images,mapping}.txt.
	RunDir string
	// Export is what to list and how to shard it (Client included).
	Export export.Options
	// BadLines are the input lines that could not be read. The valid
	// lines still run; these become scope errors in export.json, and the
	// report fails on them.
	BadLines []error
	// Scope is the definition the plan is made from, recorded in
	// scope.json (inputs hashed here) and copied into the report.
	Scope  report.Scope
	Logger *slog.Logger
	// Say tells the person who started the run what the plan found (the
	// source's pull quota); nil: the log only.
	Say func(format string, args ...any)
}

// Export reaches and authenticates to every registry of the scope once
// (Preflight), lists the scope, cuts it into shards and writes the run
// directory's plan. The error is for a registry that fails the preflight,
// a scope that cannot be listed at all (an unreachable catalog) or a plan
// that cannot be written, a contract.ExitError with ExitRetryable when
// the cause is transient; problems with single repositories and lines are
// scope errors in the result.
func Export(ctx context.Context, o ExportOptions) (export.Result, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Export.Client != nil {
		if err := Preflight(ctx, o.Export.Client, o.Export.From, o.Export.To, o.Export.Entries); err != nil {
			return export.Result{}, err
		}
	}
	res, err := export.Run(ctx, o.Export)
	if err != nil {
		err = fmt.Errorf("export: %w", err)
		if registry.IsRetryable(err) {
			err = &contract.ExitError{Code: contract.ExitRetryable, Err: err}
		}
		return res, err
	}
	for _, e := range res.Errors {
		log.Warn("export", "problem", e)
	}
	for _, le := range o.BadLines {
		res.Errors = append(res.Errors, le.Error())
	}
	scope, err := ResolveScope(o.Scope)
	if err != nil {
		return res, err
	}
	if err := export.Write(artifacts.Dir(o.RunDir), res); err != nil {
		return res, fmt.Errorf("writing the plan to %s: %w", o.RunDir, err)
	}
	if err := writeScope(o.RunDir, scope); err != nil {
		return res, fmt.Errorf("writing the plan to %s: %w", o.RunDir, err)
	}
	// A registry with a pull quota (Docker Hub): what the plan needs
	// against what is left, said before anything is pulled.
	if o.Export.Client != nil {
		hub := func(host string) bool {
			return dockerhub.IsHub(host) || (o.Export.Hub != nil && host == o.Export.From.Registry)
		}
		checks := CheckQuota(ctx, o.Export.Client, res.Items, hub, log)
		for _, qc := range checks {
			if o.Say != nil {
				o.Say("%s", qc.Message)
			}
		}
		if err := WriteQuota(o.RunDir, checks); err != nil {
			return res, fmt.Errorf("writing the plan to %s: %w", o.RunDir, err)
		}
	}
	return res, nil
}

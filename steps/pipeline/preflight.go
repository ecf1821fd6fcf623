package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/inputs"
	"github.com/regmigrate/regmigrate/steps/par"
	"github.com/regmigrate/regmigrate/steps/registry"
)

// Registry sides, as the preflight names them.
const (
	SideSource = "source"
	SideTarget = "target"
)

// preflightJobs bounds the registries logged in to at once (lists may
// name many).
const preflightJobs = 8

// Endpoint is one registry a migration reaches, from one side, with the
// repository (or namespace) whose credentials apply ("" for the
// registry's).
type Endpoint struct {
	Side string
	Host string
	Repo string
}

// Endpoints lists the registries a scope reaches: the source and target
// locations, and the registries that list entries name on either side,
// each once per side.
func Endpoints(source, target imageref.Location, entries []inputs.Entry) []Endpoint {
	var out []Endpoint
	seen := map[string]bool{}
	add := func(side, host, repo string) {
		if host == "" || seen[side+" "+host] {
			return
		}
		seen[side+" "+host] = true
		out = append(out, Endpoint{Side: side, Host: host, Repo: repo})
	}
	add(SideSource, source.Registry, source.Namespace)
	add(SideTarget, target.Registry, target.Namespace)
	for _, e := range entries {
		add(SideSource, e.Source.Registry, e.Source.Repository)
		add(SideTarget, e.Target.Registry, e.Target.Repository)
	}
	return out
}

// Preflight reaches every registry of the migration once, at the same
// time, before anything is planned, and authenticates as `docker login`
// does (registry.Client.Login): one line per registry that fails, naming
// it, its side and what to do, instead of a line per image. The error is
// a contract.ExitError: ExitRetryable when every failure is transient (a
// registry down, 5xx, 429, a stall), else ExitFailed (TLS verification,
// refused or missing credentials, no such host).
func Preflight(ctx context.Context, c *registry.Client, source, target imageref.Location, entries []inputs.Entry) error {
	eps := Endpoints(source, target, entries)
	errs := make([]error, len(eps))
	par.ForEach(ctx, preflightJobs, len(eps), func(i int) {
		if err := c.Login(ctx, eps[i].Host, eps[i].Repo); err != nil {
			errs[i] = preflightError(eps[i], err)
		}
	}, nil)
	if err := ctx.Err(); err != nil {
		return err
	}
	err := errors.Join(errs...)
	if err == nil {
		return nil
	}
	code := contract.ExitRetryable
	for _, e := range errs {
		if e != nil && !registry.IsRetryable(e) {
			code = contract.ExitFailed
		}
	}
	return &contract.ExitError{Code: code, Err: err}
}

// preflightError says which registry failed, from which side, and what to
// do about it.
func preflightError(ep Endpoint, err error) error {
	var le *registry.LoginError
	switch {
	case !errors.As(err, &le):
		return fmt.Errorf("preflight: %s registry %s: %w", ep.Side, ep.Host, err)
	case le.Denied:
		return fmt.Errorf("preflight: %s %w: give the right credentials for %s (docker login %s, --authfile FILE or $REGISTRY_AUTH_FILE, or image-migrator's --auth auth.json), then run again", ep.Side, err, ep.Host, ep.Host)
	case registry.IsRetryable(err):
		return fmt.Errorf("preflight: %s %w: check the address and that the registry is up, then run again", ep.Side, err)
	}
	return fmt.Errorf("preflight: %s %w", ep.Side, err)
}

// Package stepcli holds what the step binaries' command lines share:
// standard-library flags for registries and credentials, the environment,
// exit codes, progress and output parameters. Each step's command is its own
// package (exportcmd, mirrorcmd, verifycmd, backfillcmd) so that every
// binary links only its step. The generator renders the same flag names,
// and a test parses the generator's container args with these parsers.
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
	"time"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/connect"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/logging"
	"github.com/regmigrate/regmigrate/steps/progress"
	"github.com/regmigrate/regmigrate/steps/registry"
)

// Env is the process environment, read at the composition root.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// OSEnv is the real environment.
func OSEnv() Env { return Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv} }

// common flags of every step.
// Common are the flags every step takes.
type Common struct {
	insecure  string
	certsDir  string
	authFile  string
	authJSON  string
	maxPerReg int
	retries   int
	idle      time.Duration
	Jobs      int
	logFormat string
	Keychains Keychains
	throttle  throttleFlags
	// layout is an oci:DIR the step reads (or, WriteLayout, writes) on
	// a volume; layoutPart its own index part in it (ocilayout.Options.Part).
	layout, layoutPart string
	// WriteLayout: the step writes into --layout (mirror-shard), set by
	// the step's command.
	WriteLayout bool
}

// Bind registers the common flags.
func (c *Common) Bind(fs *flag.FlagSet) {
	fs.StringVar(&c.insecure, "insecure", "", "comma-separated registries reachable over plain HTTP / unverified TLS")
	fs.StringVar(&c.certsDir, "certs-dir", "", "docker certs.d-style folder")
	fs.StringVar(&c.authFile, "authfile", "", "docker config.json with credentials (default $REGISTRY_AUTH_FILE, then $DOCKER_CONFIG/config.json)")
	fs.StringVar(&c.authJSON, "auth", "", "image-migrator auth.json")
	fs.IntVar(&c.maxPerReg, "max-per-registry", 0, "concurrent requests per registry")
	fs.IntVar(&c.retries, "retries", 0, "attempts per request")
	fs.DurationVar(&c.idle, "idle-timeout", 0, fmt.Sprintf("end a request that stalls this long (default %s)", registry.DefaultIdleTimeout))
	fs.IntVar(&c.Jobs, "jobs", 0, "images at once")
	fs.StringVar(&c.logFormat, "log-format", "json", "json or text")
	c.Keychains = Keychains{}
	fs.Var(c.Keychains, "keychain", "a registry's keychain other than its host's: HOST=KIND[:REGION[:ACCOUNT]] (KIND: files, ecr, google, acr, ghcr, gitlab, anonymous; repeatable, comma-separated)")
	c.throttle.bind(fs)
	fs.StringVar(&c.layout, "layout", "", "an OCI image layout on a volume, oci:DIR, that the shard's references to oci:DIR read from or write to")
	fs.StringVar(&c.layoutPart, "layout-part", "", "with --layout: this shard's own index part in the layout (shards writing at once; the pack step merges the parts into index.json)")
}

// Layout is the location of --layout (zero without it).
func (c *Common) Layout() (imageref.Location, error) {
	if c.layout == "" {
		if c.layoutPart != "" {
			return imageref.Location{}, contract.Usage(errors.New("--layout-part names a part of the --layout: give --layout oci:DIR too"))
		}
		return imageref.Location{}, nil
	}
	loc, err := imageref.ParseLocation(c.layout)
	if err != nil || loc.Transport != imageref.TransportOCI {
		return imageref.Location{}, contract.Usage(fmt.Errorf("--layout %q: want oci:DIR, an OCI image layout's directory", c.layout))
	}
	return loc, nil
}

// Connect turns the common flags and the environment into client options.
func (c *Common) Connect(env Env, logger *slog.Logger) connect.Options {
	var insecure []string
	for _, h := range strings.Split(c.insecure, ",") {
		if h = strings.TrimSpace(h); h != "" {
			insecure = append(insecure, h)
		}
	}
	return connect.Options{
		Insecure: insecure, CertsDir: c.certsDir, AuthFile: c.authFile,
		AuthJSON: c.authJSON, Getenv: env.Getenv, MaxPerRegistry: c.maxPerReg, Retries: c.retries, IdleTimeout: c.idle, Logger: logger,
		Registries: c.Keychains,
		Throttles:  c.throttle.perHost, ThrottleAll: c.throttle.all,
	}
}

// Logger is the step's logger (JSON in pods, text on request).
func (c *Common) Logger(env Env) *slog.Logger { return NewLogger(env, c.logFormat) }

// NewLogger logs to stderr as JSON, or as text when format is "text".
func NewLogger(env Env, format string) *slog.Logger {
	return logging.New(env.Stderr, format, slog.LevelInfo)
}

// ProgressFor reports plain lines and to ARGO_PROGRESS_FILE when set.
func ProgressFor(env Env) *progress.Reporter {
	return progress.New(progress.Options{Out: env.Stderr, Mode: progress.Lines, ArgoFile: env.Getenv("ARGO_PROGRESS_FILE")})
}

// RunFunc is one step's command: it parses args and runs the step.
type RunFunc func(ctx context.Context, env Env, args []string) (int, error)

// Main runs a step and returns its exit code; errors are printed once, here.
func Main(ctx context.Context, env Env, name string, run RunFunc, args []string) int {
	code, err := run(ctx, env, args)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", name, err)
		code = contract.ExitCode(err)
	}
	// Stopped by a signal (SIGTERM from the Argo controller, Ctrl-C): the
	// step wrote what it had; its exit code says it was interrupted.
	if i, ok := contract.InterruptedBy(ctx); ok && code != contract.ExitOK {
		fmt.Fprintf(env.Stderr, "%s: %v: the results written so far are kept\n", name, i)
		return i.Code()
	}
	return code
}

// Multi is a repeatable string flag.
type Multi []string

func (m *Multi) String() string     { return strings.Join(*m, ",") }
func (m *Multi) Set(s string) error { *m = append(*m, s); return nil }

// SplitList splits a comma-separated flag value.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// WriteOutputs writes counts where Argo reads output parameters
// ($REGMIGRATE_OUTPUTS_DIR/<name>), so the UI shows them per shard.
func WriteOutputs(env Env, counts map[string]int) error {
	dir := env.Getenv("REGMIGRATE_OUTPUTS_DIR")
	if dir == "" {
		return nil
	}
	for k, v := range counts {
		if err := artifacts.WriteFile(filepath.Join(dir, k), []byte(fmt.Sprint(v))); err != nil {
			return err
		}
	}
	return nil
}

// ParseFlags parses args; flag errors and positional arguments are usage
// errors (exit 2).
func ParseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return contract.Usage(err)
	}
	if fs.NArg() > 0 {
		return contract.Usage(fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	return nil
}

// Client is the step's logger and registry client from the common flags.
func (c *Common) Client(env Env) (*slog.Logger, *registry.Client, error) {
	log := c.Logger(env)
	o := c.Connect(env, log)
	loc, err := c.Layout()
	if err != nil {
		return nil, nil, err
	}
	if loc.Transport != "" {
		o.Disk = append(o.Disk, connect.Disk{Location: loc, Write: c.WriteLayout, Part: c.layoutPart})
	}
	rc, err := connect.Client(o)
	if err != nil {
		return nil, nil, contract.Usage(err)
	}
	return log, rc, nil
}

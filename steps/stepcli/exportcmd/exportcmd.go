// Package exportcmd is the export step's command line.
package exportcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/regmigrate/regmigrate/steps/airgap"
	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/inputs"
	"github.com/regmigrate/regmigrate/steps/pipeline"
	"github.com/regmigrate/regmigrate/steps/report"
	"github.com/regmigrate/regmigrate/steps/stepcli"
)

// Flags are export's flags, parsed.
type Flags struct {
	stepcli.Common
	From, To                string
	Images                  stepcli.Multi
	Rules                   string
	Out                     string
	IncludeNS, ExcludeNS    string
	RepoRegex, TagRegex     string
	ExcludeRepo, ExcludeTag string
	ShardSize, MinShardSize int
	MaxShards               int
	Migration               string
	Strategy                string // recorded in run.json for the report
	hub                     hubFlags
}

// Parse parses export's arguments.
func Parse(args []string, stderr io.Writer) (*Flags, error) {
	f := &Flags{}
	fs := flag.NewFlagSet(contract.StepExport, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.Common.Bind(fs)
	fs.StringVar(&f.From, "from", "", "legacy registry HOST[:PORT][/NAMESPACE]")
	fs.StringVar(&f.To, "to", "", "new registry HOST[:PORT][/NAMESPACE]")
	fs.Var(&f.Images, "images", "image list / ac table / mapping file (repeatable)")
	fs.StringVar(&f.Rules, "rules", "", "image-migrator images.json")
	fs.StringVar(&f.Out, "out", "", "run directory to write")
	fs.StringVar(&f.IncludeNS, "include-namespace", "", "comma-separated registry namespaces to include")
	fs.Func("namespace", "deprecated: --include-namespace", func(s string) error {
		fmt.Fprintln(stderr, "export: --namespace is deprecated, use --include-namespace (registry namespaces)")
		f.IncludeNS = s
		return nil
	})
	fs.StringVar(&f.ExcludeNS, "exclude-namespace", "", "comma-separated registry namespaces to leave out")
	fs.StringVar(&f.RepoRegex, "repo-regex", "", "repository regex")
	fs.StringVar(&f.ExcludeRepo, "exclude-repo-regex", "", "repository regex to leave out")
	fs.StringVar(&f.TagRegex, "tag-regex", "", "tag regex")
	fs.StringVar(&f.ExcludeTag, "exclude-tag-regex", "", "tag regex to leave out")
	fs.IntVar(&f.ShardSize, "shard-size", 0, "split namespaces larger than this")
	fs.IntVar(&f.MinShardSize, "min-shard-size", 0, "pack namespaces smaller than this")
	fs.IntVar(&f.MaxShards, "max-shards", 0, "at most this many shards")
	fs.StringVar(&f.Migration, "migration", "", "the migration's name, recorded in run.json for the report")
	fs.StringVar(&f.Strategy, "strategy", contract.StrategyCopy, "copy or reuse-storage, recorded in run.json for the report")
	f.hub.bind(fs)
	if err := stepcli.ParseFlags(fs, args); err != nil {
		return nil, err
	}
	if f.Out == "" || f.To == "" {
		return nil, contract.Usage(errors.New("--out and --to are required"))
	}
	if f.Strategy != contract.StrategyCopy && f.Strategy != contract.StrategyReuseStorage {
		return nil, contract.Usage(fmt.Errorf("--strategy %q: want %s or %s", f.Strategy, contract.StrategyCopy, contract.StrategyReuseStorage))
	}
	return f, nil
}

// Run runs export.
func Run(ctx context.Context, env stepcli.Env, args []string) (int, error) {
	started := time.Now()
	f, err := Parse(args, env.Stderr)
	if err != nil {
		return 0, err
	}
	var from imageref.Location
	if f.From != "" {
		if from, err = imageref.ParseLocation(f.From); err != nil {
			return 0, contract.Usage(err)
		}
	}
	to, err := imageref.ParseLocation(f.To)
	if err != nil {
		return 0, contract.Usage(err)
	}
	// A target layout on a volume (--layout, phase one in a Workflow):
	// created here, so that a volume the pods cannot write fails now,
	// before any shard starts.
	if lay, err := f.Layout(); err != nil {
		return 0, err
	} else if lay.Transport != "" && lay == to {
		f.WriteLayout = true
	}
	log, c, err := f.Client(env)
	if err != nil {
		return 0, err
	}
	if from.Registry == to.Registry && from.Namespace == to.Namespace {
		return 0, contract.Usage(fmt.Errorf("the source and the target are both %s: a migration copies from one registry (or namespace) to another; check --from and --to", to))
	}
	entries, lineErrs, err := inputs.ReadAll(f.Images, f.Rules, inputs.RulesOptions{DefaultRegistry: to.Registry, DefaultNamespace: to.Namespace})
	if err != nil {
		return 0, contract.Usage(err)
	}
	// Phase two of a disconnected move, the layout on a volume (--layout):
	// the images phase one wrote, pinned to the digests it read from the
	// legacy registry, and its report linked from this run's, as
	// `regmigrate run --from oci:DIR` does.
	var link *report.PhaseLink
	var notCarried []error // images phase one failed: not in the layout
	if from.Transport == imageref.TransportOCI {
		p1, err := airgap.Read(from.Path)
		switch {
		case err == nil:
			carried, problems := p1.Entries(from.Registry)
			if len(f.Images) == 0 && f.Rules == "" {
				entries = carried
				for _, p := range problems {
					notCarried = append(notCarried, errors.New(p))
				}
			} else {
				entries = airgap.Pin(entries, carried)
			}
			l := p1.Link()
			link = &l
		case !errors.Is(err, fs.ErrNotExist):
			return 0, err
		}
	}
	filter, err := inputs.NewFilter(inputs.FilterOptions{
		IncludeNamespaces: stepcli.SplitList(f.IncludeNS), ExcludeNamespaces: stepcli.SplitList(f.ExcludeNS),
		RepoRegex: f.RepoRegex, ExcludeRepoRegex: f.ExcludeRepo, TagRegex: f.TagRegex, ExcludeTagRegex: f.ExcludeTag,
	})
	if err != nil {
		return 0, contract.Usage(err)
	}
	bad := make([]error, len(lineErrs))
	for i, le := range lineErrs {
		log.Error("bad input line", "err", le)
		bad[i] = le
	}
	for _, p := range notCarried {
		log.Error("not in the layout", "err", p)
		bad = append(bad, p)
	}
	res, err := pipeline.Export(ctx, pipeline.ExportOptions{
		RunDir: f.Out, BadLines: bad, Logger: log, Scope: f.scope(args),
		Export: export.Options{
			Client: c, From: from, To: to, Entries: entries, Filter: filter,
			ShardSize: f.ShardSize, MinShardSize: f.MinShardSize, MaxShards: f.MaxShards, Jobs: f.Jobs,
			Progress: stepcli.ProgressFor(env), Logger: log, Hub: f.hub.source(from, env),
		},
	})
	if err != nil {
		return 0, err
	}
	// The run's record: the report shows which migration this is and how
	// it was started; the aggregate takes the start from here.
	if err := artifacts.WriteRun(artifacts.Dir(f.Out), artifacts.Run{
		Migration: f.Migration, Version: contract.Version, Command: artifacts.RedactArgs(append([]string{contract.StepExport}, args...)),
		Source: from.String(), Target: to.String(), Strategy: f.Strategy, Started: started,
	}); err != nil {
		return 0, err
	}
	if link != nil {
		if err := airgap.WriteLink(f.Out, *link); err != nil {
			return 0, err
		}
	}
	s := res.Summary()
	// The counts Argo reads as output parameters: the metrics' progress
	// gauge counts shards done against these.
	if err := stepcli.WriteOutputs(env, map[string]int{"images": s.Total, "shards": s.Shards}); err != nil {
		log.Warn("writing output parameters", "err", err)
	}
	fmt.Fprintf(env.Stdout, "exported %d images (%d unresolved) in %d shards to %s\n", s.Total, s.Unresolved, s.Shards, f.Out)
	// Bad lines do not stop the pipeline (the valid ones still run); they
	// are scope errors in export.json, and the final report fails on them.
	if len(bad) > 0 {
		fmt.Fprintf(env.Stderr, "export: %d bad input lines skipped (listed in export.json; the report will fail)\n", len(bad))
	}
	return contract.ExitOK, nil
}

// scope is the definition the flags give, recorded in scope.json.
func (f *Flags) scope(args []string) report.Scope {
	s := report.Scope{
		Migration: f.Migration, Source: f.From, Target: f.To,
		Filters: report.Filters{
			IncludeNamespaces: stepcli.SplitList(f.IncludeNS), ExcludeNamespaces: stepcli.SplitList(f.ExcludeNS),
			Repositories: f.RepoRegex, ExcludeRepos: f.ExcludeRepo, Tags: f.TagRegex, ExcludeTags: f.ExcludeTag,
		},
		Shards:  report.Shards{Size: f.ShardSize, MinSize: f.MinShardSize, Max: f.MaxShards},
		Command: artifacts.RedactArgs(append([]string{contract.StepExport}, args...)),
	}
	for _, l := range f.Images {
		s.Inputs = append(s.Inputs, report.Input{Kind: "list", Path: l})
	}
	if f.Rules != "" {
		s.Inputs = append(s.Inputs, report.Input{Kind: "rules", Path: f.Rules})
	}
	return s
}

package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/pipeline"
)

func newReportCmd(env Env) *cobra.Command {
	var out output
	c := &cobra.Command{
		Use:   "report RUN_DIR",
		Short: "Write report.md and report.html (the audit report to look at and print) from a run directory",
		Long: `Writes report.md and report.html into RUN_DIR from what the run left there:
report.json, and beside it run.json (the migration and how it ran), history.json
(every run of the directory) and switch.json (the cutover, when there was one).
A run directory whose shards were verified but not yet aggregated (the steps
ran, the aggregate did not) is aggregated first, as verify --run-dir does.

report.html is self-contained: no script, no external asset; it opens from an
archive offline and prints readably.`,
		Example: `  regmigrate report ./regmigrate-run-20261130-101500
  regmigrate report ./run-1 && xdg-open ./run-1/report.html`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			dir := args[0]
			rep, err := pipeline.Render(dir)
			if errors.Is(err, pipeline.ErrMissingInput) {
				rep, err = pipeline.Aggregate(pipeline.AggregateOptions{RunDir: dir})
			}
			if errors.Is(err, pipeline.ErrMissingInput) {
				return usageError(err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out.readable(env), "%s\nwritten: %s, %s\n", rep.SummaryLine(), filepath.Join(dir, contract.ReportMD), filepath.Join(dir, contract.ReportHTML))
			if out.format != "" {
				return out.print(env.Stdout, rep)
			}
			return nil
		},
	}
	bindOutput(c, &out, "report.json", outputJSON, outputYAML)
	return c
}

// recordedCommand is the command line as run.json records it: the
// command's path and every flag given, as --name=value (repeated flags
// once per value), credentials redacted.
func recordedCommand(c *cobra.Command) []string {
	args := strings.Fields(c.CommandPath())
	c.Flags().Visit(func(f *pflag.Flag) {
		switch v := f.Value.(type) {
		case pflag.SliceValue:
			for _, s := range v.GetSlice() {
				args = append(args, "--"+f.Name+"="+s)
			}
		default:
			if f.Value.Type() == "bool" && f.Value.String() == "true" {
				args = append(args, "--"+f.Name)
			} else {
				args = append(args, "--"+f.Name+"="+f.Value.String())
			}
		}
	})
	args = append(args, c.Flags().Args()...)
	return artifacts.RedactArgs(args)
}

package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/workflows"
)

func newLintCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "lint FILE...",
		Short: "Validate Workflow, CronWorkflow and WorkflowTemplate YAML files with Argo's validator, offline",
		Args: func(_ *cobra.Command, files []string) error {
			if len(files) == 0 {
				return usageError(errors.New("lint: name the YAML files to validate"))
			}
			return nil
		},
		RunE: func(c *cobra.Command, files []string) error {
			var errs []error
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err == nil {
					err = workflows.Lint(f, b)
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(env.Stdout, "%s: ok\n", f)
			}
			if len(errs) > 0 {
				return &ExitError{Code: contract.ExitUsage, Err: errors.Join(errs...)}
			}
			return nil
		},
	}
}

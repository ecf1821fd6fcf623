package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/spf13/cobra"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/workflows"
)

// stdinName is how lint names standard input (FILE "-").
const stdinName = "<stdin>"

func newLintCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "lint FILE...",
		Short: "Validate Workflow, CronWorkflow, WorkflowTemplate and ClusterWorkflowTemplate YAML files with Argo's validator, offline",
		Long: `lint validates every Workflow, CronWorkflow, WorkflowTemplate and
ClusterWorkflowTemplate in the files with Argo's own validator, offline (no
cluster is asked). A file may hold several YAML documents; documents that are
not Argo objects (a ConfigMap or a Secret kept beside the Workflow) are
skipped, each with a note on stderr. FILE "-" reads standard input.

An object that runs a WorkflowTemplate (workflowTemplateRef, as regmigrate
generate --from-template prints) is validated against the WorkflowTemplate of
that name among the files given (the ClusterWorkflowTemplate, for a reference
with clusterScope), as argo lint --offline does.

Exit codes: 0 every Argo object is valid, 2 one is not, a file cannot be read,
or a file holds no Argo object.`,
		Example: `  regmigrate lint workflow.yaml cron.yaml
  regmigrate lint workflowtemplate.yaml cronworkflow.yaml    # the CronWorkflow runs the template
  regmigrate generate -f migration.yaml --image-tag v1.2.3 | regmigrate lint -`,
		Args: func(_ *cobra.Command, files []string) error {
			if len(files) == 0 {
				return usageError(errors.New("lint: name the YAML files to validate (- for standard input)"))
			}
			return nil
		},
		RunE: func(c *cobra.Command, files []string) error {
			// Every input first: the WorkflowTemplates among them are what
			// the objects that reference one are validated against.
			type input struct {
				name string
				data []byte
				err  error
			}
			inputs := make([]input, len(files))
			var templates []*wfv1.WorkflowTemplate
			for i, f := range files {
				name, b, err := readLintInput(env, f)
				inputs[i] = input{name, b, err}
				if err == nil {
					templates = append(templates, workflows.Templates(b)...)
				}
			}
			var errs []error
			for _, in := range inputs {
				name, err := in.name, in.err
				var res workflows.Linted
				if err == nil {
					res, err = workflows.Lint(name, in.data, templates...)
				}
				for _, s := range res.Skipped {
					fmt.Fprintf(env.Stderr, "regmigrate lint: %s: %s\n", name, s)
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(env.Stdout, "%s: ok\n", name)
			}
			if len(errs) > 0 {
				return &ExitError{Code: contract.ExitUsage, Err: errors.Join(errs...)}
			}
			return nil
		},
	}
}

// readLintInput reads a file, or standard input for "-".
func readLintInput(env Env, f string) (string, []byte, error) {
	if f != "-" {
		b, err := os.ReadFile(f)
		return f, b, err
	}
	if env.Stdin == nil {
		return stdinName, nil, errors.New("lint -: no standard input")
	}
	b, err := io.ReadAll(env.Stdin)
	if err != nil {
		return stdinName, nil, fmt.Errorf("reading standard input: %w", err)
	}
	return stdinName, b, nil
}

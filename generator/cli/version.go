package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/regmigrate/regmigrate/steps/contract"
)

// versionLine is what `regmigrate version` and `regmigrate --version` print.
func versionLine() string {
	return fmt.Sprintf("regmigrate %s (%s %s/%s)", contract.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newVersionCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print regmigrate's version (the default tag of the step images when it is a release)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(env.Stdout, versionLine())
			return err
		},
	}
}

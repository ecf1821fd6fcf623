// Command regmigrate-argo-validate runs Argo's own validator for
// regmigrate's generate, submit and lint: it reads one Argo object (and
// the templates it references) as JSON on standard input and writes the
// verdict as JSON on standard output. It is a binary of its own because
// Argo's validator, linked into regmigrate, would add 15 MiB to the
// resident memory of every regmigrate command, run included.
package main

import (
	"fmt"
	"os"

	"github.com/regmigrate/regmigrate/workflows"
	"github.com/regmigrate/regmigrate/workflows/argovalidate"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintf(os.Stderr, "%s takes no arguments: regmigrate generate, submit and lint run it with a request on standard input\n", workflows.ValidatorBinary)
		os.Exit(2)
	}
	if err := workflows.ServeValidation(os.Stdin, os.Stdout, argovalidate.Validate); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", workflows.ValidatorBinary, err)
		os.Exit(2)
	}
}

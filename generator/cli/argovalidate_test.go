package cli_test

import (
	"github.com/regmigrate/regmigrate/workflows"
	"github.com/regmigrate/regmigrate/workflows/argovalidate"
)

// These tests generate, submit and lint in process: Argo's validator runs
// here, as regmigrate-argo-validate runs it for the regmigrate binary
// (tests/e2e's TestArgoValidatorIsItsOwnBinary runs that one).
func init() { workflows.UseValidator(argovalidate.Validate) }

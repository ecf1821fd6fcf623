//go:build e2e

package argoe2e

import (
	"github.com/regmigrate/regmigrate/workflows"
	"github.com/regmigrate/regmigrate/workflows/argovalidate"
)

// These tests generate and submit in process: Argo's validator runs here,
// as regmigrate-argo-validate runs it for the regmigrate binary.
func init() { workflows.UseValidator(argovalidate.Validate) }

package spec_test

import (
	"slices"
	"testing"

	"github.com/regmigrate/regmigrate/generator/spec"
	"github.com/regmigrate/regmigrate/workflows"
)

// TestStepNamesAreTheTemplates: argo.stepResources is keyed by the step
// templates the generator writes.
func TestStepNamesAreTheTemplates(t *testing.T) {
	if !slices.Equal(spec.StepNames, workflows.StepTemplates) {
		t.Errorf("spec.StepNames %v, workflows.StepTemplates %v", spec.StepNames, workflows.StepTemplates)
	}
}

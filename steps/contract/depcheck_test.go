package contract_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStepsDependOnNeitherCobraNorArgoNorTheGenerator keeps dependencies
// pointing one way: generator -> steps, never back, and the step binaries
// small (no cobra, no Argo, no Kubernetes validation in them).
func TestStepsDependOnNeitherCobraNorArgoNorTheGenerator(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "github.com/regmigrate/regmigrate/steps/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{
			"github.com/spf13/cobra",
			"github.com/argoproj/",
			"github.com/regmigrate/regmigrate/generator",
			"github.com/regmigrate/regmigrate/workflows",
			"github.com/regmigrate/regmigrate/tests",
		} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("steps depend on %s", dep)
			}
		}
	}
}

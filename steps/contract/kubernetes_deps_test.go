package contract_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/regmigrate/regmigrate/"

// assertNoDependency fails for every package in banned that links a
// dependency whose import path starts with one of the prefixes (as
// go-containerregistry's internal/depcheck does).
func assertNoDependency(t *testing.T, banned map[string][]string) {
	t.Helper()
	for pkg, prefixes := range banned {
		out, err := exec.Command("go", "list", "-deps", module+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		var linked []string
		for _, dep := range strings.Fields(string(out)) {
			for _, p := range prefixes {
				if strings.HasPrefix(dep, p) {
					linked = append(linked, dep)
				}
			}
		}
		if len(linked) > 0 {
			t.Errorf("%s links %d packages under %v, e.g. %s (find the import with: go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./%s)",
				pkg, len(linked), prefixes, linked[0], pkg)
		}
	}
}

// kubernetes are the import path prefixes of Kubernetes' client libraries.
var kubernetes = []string{"k8s.io/", "sigs.k8s.io/"}

// TestResultsAndCopyStepsLinkNoKubernetes: the result types, the report and
// the per-directory pipeline hold no Kubernetes client, and the export and
// mirror-shard binaries, which never talk to a cluster, stay small. Only
// what talks to a cluster (imageapi, backfill, imagecheck, workloads,
// switchmode, and the binaries that run them) links client-go.
func TestResultsAndCopyStepsLinkNoKubernetes(t *testing.T) {
	t.Parallel()
	assertNoDependency(t, map[string][]string{
		"steps/verify":           kubernetes,
		"steps/report":           kubernetes,
		"steps/backfillresult":   kubernetes,
		"steps/pipeline":         kubernetes,
		"steps/par":              kubernetes,
		"steps/switchresult":     kubernetes,
		"steps/logging":          kubernetes,
		"steps/cmd/export":       kubernetes,
		"steps/cmd/mirror-shard": kubernetes,
	})
}

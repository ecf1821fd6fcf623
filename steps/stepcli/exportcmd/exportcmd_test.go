package exportcmd_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/stepcli/exportcmd"
)

// The registry-namespace filter is --include-namespace, as in regmigrate
// run; the old --namespace still parses, with a warning.
func TestIncludeNamespaceAndItsDeprecatedAlias(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		flag, warning string
	}{
		{"--include-namespace", ""},
		{"--namespace", "--namespace is deprecated, use --include-namespace"},
	} {
		var stderr bytes.Buffer
		f, err := exportcmd.Parse([]string{"--to", "new.example", "--out", "d", tc.flag, "team-a,team-b"}, &stderr)
		if err != nil {
			t.Fatalf("%s: %v", tc.flag, err)
		}
		if f.IncludeNS != "team-a,team-b" {
			t.Errorf("%s team-a,team-b: IncludeNS %q", tc.flag, f.IncludeNS)
		}
		if got := stderr.String(); tc.warning == "" && got != "" || !strings.Contains(got, tc.warning) {
			t.Errorf("%s: stderr %q, want %q", tc.flag, got, tc.warning)
		}
	}
}

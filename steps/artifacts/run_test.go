package artifacts_test

import (
	"slices"
	"testing"

	"github.com/regmigrate/regmigrate/steps/artifacts"
)

func TestRedactArgsKeepsSecretsOutOfTheRecord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want []string }{
		{[]string{"regmigrate", "run", "--from", "a:5000", "--authfile", "/x/config.json"}, []string{"regmigrate", "run", "--from", "a:5000", "--authfile", "/x/config.json"}},
		{[]string{"run", "--password=hunter2", "--registry-token", "abc", "--insecure"}, []string{"run", "--password=REDACTED", "--registry-token", "REDACTED", "--insecure"}},
		{[]string{"run", "--from", "https://user:hunter2@a:5000/ns"}, []string{"run", "--from", "https://REDACTED@a:5000/ns"}},
		{[]string{"run", "--secret"}, []string{"run", "--secret"}},
	} {
		if got := artifacts.RedactArgs(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("RedactArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

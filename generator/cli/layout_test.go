package cli_test

import (
	"strings"
	"testing"
)

// Bad uses of the transports on disk are the user's mistakes (exit 2),
// each saying what to give instead.
func TestRunDiskUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--from", "a.example", "--to", "b.example", "--split-size", "4GiB", "--out", dir + "/1"}, "--split-size cuts an oci-archive into parts: give --to oci-archive:FILE"},
		{[]string{"run", "--from", "a.example", "--to", "oci-archive:" + dir + "/x.tar", "--split-size", "4 parsecs", "--out", dir + "/2"}, `--split-size "4 parsecs"`},
		{[]string{"run", "--from", "oci:" + dir + "/a", "--to", "oci:" + dir + "/b", "--out", dir + "/3"}, "are both on disk"},
		{[]string{"run", "--from", "a.example", "--to", "docker-archive:" + dir + "/x.tar", "--out", dir + "/4"}, "is a source only"},
		{[]string{"run", "--from", "oci:", "--to", "b.example", "--out", dir + "/5"}, "names no path"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message about %q", tc.args, code, stderr, tc.want)
		}
	}
}

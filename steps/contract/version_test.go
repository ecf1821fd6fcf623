package contract

import "testing"

// A binary from `go install ...@v1.2.3` knows its version; -X (make
// build) wins; a build in the checkout stays dev.
func TestVersionOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ linked, module, want string }{
		{"dev", "v1.2.3", "v1.2.3"},
		{"dev", "v0.0.0-20261130101500-abcdef123456", "v0.0.0-20261130101500-abcdef123456"},
		{"dev", "(devel)", "dev"},
		{"dev", "", "dev"},
		{"v1.2.4-3-gabc1234", "v1.2.3", "v1.2.4-3-gabc1234"},
	} {
		if got := versionOf(tc.linked, tc.module); got != tc.want {
			t.Errorf("versionOf(%q, %q) = %q, want %q", tc.linked, tc.module, got, tc.want)
		}
	}
}

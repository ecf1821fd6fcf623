package contract_test

import (
	"testing"

	"github.com/regmigrate/regmigrate/steps/contract"
)

func TestIsRelease(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{
		"v1.2.3": true, "v0.1.0": true, "v10.20.30": true, "v1.2.3-rc.1": true, "v1.2.3-beta.2": true, "v1.2.3-alpha.0": true,
		"dev": false, "": false, "1.2.3": false, "v1.2": false, "0a1b2c3": false,
		"v1.2.3-4-gabc1234": false, "v1.2.3-dirty": false, "v1.2.3-4-gabc1234-dirty": false, "v1.2.3-rc1": false,
		"v1.2.3\n": false,
	} {
		if got := contract.IsRelease(v); got != want {
			t.Errorf("IsRelease(%q) = %v, want %v", v, got, want)
		}
	}
}

package cli

import (
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/generator/spec"
	"github.com/regmigrate/regmigrate/workflows"
)

// TestStepImagesDefaults: a release build defaults to its own version; a
// development build (a plain go build, a commit, `git describe` past a
// tag) has no default and names the tag make images would give.
func TestStepImagesDefaults(t *testing.T) {
	none := func(string) bool { return false }
	for _, tc := range []struct {
		version, wantTag, wantErr string
	}{
		{"v1.2.3", "v1.2.3", ""},
		{"v1.2.3-rc.2", "v1.2.3-rc.2", ""},
		{"dev", "", "--image-tag TAG "},
		{"v1.2.3-4-g0a1b2c3-dirty", "", "--image-tag v1.2.3-4-g0a1b2c3-dirty "},
	} {
		prefix, tag, err := stepImages(none, &generateFlags{}, spec.Argo{}, tc.version)
		if tc.wantErr == "" {
			if err != nil || tag != tc.wantTag || prefix != workflows.DefaultImagePrefix {
				t.Errorf("%s: %s:%s, %v; want %s:%s", tc.version, prefix, tag, err, workflows.DefaultImagePrefix, tc.wantTag)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "make images REGISTRY=") {
			t.Errorf("%s: %v, want an error naming make images and %q", tc.version, err, tc.wantErr)
		}
	}
	if _, tag, err := stepImages(none, &generateFlags{}, spec.Argo{ImageTag: "e2e"}, "dev"); err != nil || tag != "e2e" {
		t.Errorf("the spec's tag on a development build: %q, %v", tag, err)
	}
}

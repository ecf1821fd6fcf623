package pipeline_test

import (
	"reflect"
	"testing"

	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/inputs"
	"github.com/regmigrate/regmigrate/steps/pipeline"
)

// The preflight logs in to every registry the scope reaches, once per side:
// the locations, and the registries list entries name (an oc-style
// mapping may name others), with the repository whose credentials apply.
func TestPreflightEndpointsAreEveryRegistryOncePerSide(t *testing.T) {
	t.Parallel()
	ref := func(s string) imageref.Ref {
		r, err := imageref.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	from := imageref.Location{Registry: "legacy:5000", Namespace: "old"}
	to := imageref.Location{Registry: "new:5000", Namespace: "platform"}
	entries := []inputs.Entry{
		{Source: imageref.Ref{Repository: "old/app", Tag: "v1"}},                            // relative to --from
		{Source: ref("legacy:5000/old/other:v1")},                                           // --from again
		{Source: ref("quay.example/team/tool:v2"), Target: ref("mirror:5000/team/tool:v2")}, // a mapping
		{Source: ref("quay.example/team/more:v1"), Target: ref("new:5000/platform/more:v1")},
	}
	got := pipeline.Endpoints(from, to, entries)
	want := []pipeline.Endpoint{
		{Side: pipeline.SideSource, Host: "legacy:5000", Repo: "old"},
		{Side: pipeline.SideTarget, Host: "new:5000", Repo: "platform"},
		{Side: pipeline.SideSource, Host: "quay.example", Repo: "team/tool"},
		{Side: pipeline.SideTarget, Host: "mirror:5000", Repo: "team/tool"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("endpoints\n got %+v\nwant %+v", got, want)
	}
	if got := pipeline.Endpoints(imageref.Location{}, to, nil); len(got) != 1 || got[0].Host != "new:5000" {
		t.Errorf("without a source location or entries: %+v, want the target alone", got)
	}
}

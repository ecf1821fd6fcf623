package artifacts_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
)

// The aggregate gathers images.txt and digests.txt shard by shard; the
// files must be those FormatImages and FormatDigests write from every item
// at once, sorted the same, with names that are prefixes of others.
func TestPlanListsWriteWhatFormatWrites(t *testing.T) {
	d := "sha256:" + string(bytes.Repeat([]byte("c"), 64))
	e := "sha256:" + string(bytes.Repeat([]byte("0"), 64))
	ref := func(s, digest string) imageref.Ref {
		r, err := imageref.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		r.Digest = digest
		return r
	}
	shards := [][]artifacts.Item{
		{
			{Source: ref("src.example/ns-b/app:v1", d), Target: ref("dst.example/ns-b/app:v1", "")},
			{Source: ref("src.example/ns-b/app:v1-rc", ""), Target: ref("dst.example/ns-b/app:v1-rc", ""), Error: "not found"},
		},
		{
			{Source: ref("src.example/ns/app-x:v1", e), Target: ref("dst.example/ns/app-x:v1", "")},
			{Source: ref("src.example/ns/app:v1.0", d), Target: ref("dst.example/ns/app:v1.0", "")},
			{Source: ref("src.example/ns/app/sub:latest", e), Target: ref("dst.example/ns/app/sub:latest", "")},
			{Source: ref("src.example/ns/app:v1", e), Target: ref("dst.example/ns/app:v1", "")},
		},
		{},
	}
	var all []artifacts.Item
	var lists artifacts.PlanLists
	for _, s := range shards {
		all = append(all, s...)
		lists.Add(s)
	}
	dir := artifacts.Dir(t.TempDir())
	if err := lists.Write(dir); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string][]byte{
		contract.ImagesFile:  artifacts.FormatImages(all),
		contract.DigestsFile: artifacts.FormatDigests(all),
	} {
		got, err := os.ReadFile(dir.Path(file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s gathered shard by shard:\n%s\nwant\n%s", file, got, want)
		}
	}
	if n := bytes.Count(artifacts.FormatDigests(all), []byte("\n")); n != 5 {
		t.Errorf("digests.txt has %d lines, want 5 (the unresolved image has none)", n)
	}
}

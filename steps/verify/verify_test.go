package verify_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/steps/verify"
)

func TestVerifyFindsWhatIsWrong(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "http://")

	pushRandom := func(ref string) (string, v1.Image) {
		img, err := random.Image(1024, 2)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := name.ParseReference(host + "/" + ref)
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return d.String(), img
	}
	good, _ := pushRandom("ns/good:v1")
	moved, _ := pushRandom("ns/moved:v1")
	broken, img := pushRandom("ns/broken:v1")
	// Remove one layer of "broken" behind the registry's back.
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	req, _ := http.NewRequest(http.MethodDelete, s.URL+"/v2/ns/broken/blobs/"+ld.String(), nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode >= 300 {
		t.Fatalf("deleting a blob: %v %v", err, resp)
	}
	other, _ := random.Image(10, 1)
	od, _ := other.Digest()

	ref := func(s string) imageref.Ref {
		r, err := imageref.Parse(host + "/" + s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	res, err := verify.Run(context.Background(), verify.Options{
		Client: registry.New(registry.Options{Insecure: anyHost}),
		Mode:   verify.ModeFull,
		Expects: []verify.Expect{
			{Target: ref("ns/good:v1"), Digest: good},
			{Target: ref("ns/moved:v1"), Digest: od.String()},
			{Target: ref("ns/broken:v1"), Digest: broken},
			{Target: ref("ns/absent:v1"), Digest: good},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed != 1 || res.Failed != 3 || res.OK() {
		t.Fatalf("passed %d failed %d, want 1 and 3: %+v", res.Passed, res.Failed, res.Images)
	}
	byTarget := map[string]verify.Check{}
	for _, c := range res.Images {
		byTarget[strings.TrimPrefix(c.Target, host+"/")] = c
	}
	if c := byTarget["ns/moved:v1"]; c.Got != moved || !strings.Contains(c.Error, "expected") {
		t.Errorf("moved tag: %+v, want got=%s and a mismatch error", c, moved)
	}
	if c := byTarget["ns/broken:v1"]; len(c.Missing) != 1 || c.Missing[0] != "blob "+ld.String() {
		t.Errorf("broken image: missing %v, want [blob %s]", c.Missing, ld)
	}
	if c := byTarget["ns/absent:v1"]; !strings.Contains(c.Error, "not found") {
		t.Errorf("absent tag: %+v, want not found", c)
	}
}

func TestVerifyAutoModeDeepChecksWhatWasCopied(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "http://")
	img, _ := random.Image(1024, 1)
	r, _ := name.ParseReference(host + "/ns/app:v1")
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	req, _ := http.NewRequest(http.MethodDelete, s.URL+"/v2/ns/app/blobs/"+ld.String(), nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode >= 300 {
		t.Fatalf("deleting a blob: %v %v", err, resp)
	}
	target, _ := imageref.Parse(host + "/ns/app:v1")
	for _, tc := range []struct {
		name       string
		mode       string
		copied     bool
		wantPassed bool
	}{
		{"auto checks a copied image deeply", verify.ModeAuto, true, false},
		{"auto trusts the digest of an image the run did not write", verify.ModeAuto, false, true},
		{"full checks everything deeply", verify.ModeFull, false, false},
		{"digest never looks at blobs", verify.ModeDigest, true, true},
	} {
		res, err := verify.Run(context.Background(), verify.Options{
			Client: registry.New(registry.Options{Insecure: anyHost}), Mode: tc.mode,
			Expects: []verify.Expect{{Target: target, Digest: d.String(), Copied: tc.copied}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.OK() != tc.wantPassed {
			t.Errorf("%s: passed=%v, want %v (%+v)", tc.name, res.OK(), tc.wantPassed, res.Images)
		}
	}
}

// anyHost marks every registry insecure: the test registries speak plain
// HTTP on loopback, which the client uses only when told.
func anyHost(string) bool { return true }

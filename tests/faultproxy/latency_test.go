package faultproxy_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"

	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// A copy through two proxies is counted by kind of request on each side:
// what a client asked the source and the target for.
func TestRequestsAreCountedByKind(t *testing.T) {
	src, dst := regtest.StartInProcess(t), regtest.StartInProcess(t)
	img := pushRandom(t, src.Host, "ns/app", 1024)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ps, pd := faultproxy.New(t, src.URL()), faultproxy.New(t, dst.URL())

	if err := crane.Copy(ps.Host+"/ns/app:latest", pd.Host+"/ns/app:latest", crane.Insecure); err != nil {
		t.Fatal(err)
	}
	s, d := ps.Stats().ByKind, pd.Stats().ByKind
	// crane reads the manifest and every blob (config + layers) once from
	// the source, and asks the target for each blob before uploading it.
	blobs := len(layers) + 1
	if s[faultproxy.KindManifestGet] != 1 || s[faultproxy.KindBlobGet] != blobs {
		t.Errorf("source: %v, want 1 manifest GET and %d blob GETs", s, blobs)
	}
	// crane asks for a mount from the source repository (the target
	// answers with an upload session), then PATCHes and PUTs the data.
	if d[faultproxy.KindManifestPut] != 1 || d[faultproxy.KindBlobHead] != blobs ||
		d[faultproxy.KindMount]+d[faultproxy.KindUploadStart] != blobs || d[faultproxy.KindUploadData] != 2*blobs {
		t.Errorf("target: %v, want 1 manifest PUT, %d blob HEADs, %d upload starts and %d upload PATCH/PUTs", d, blobs, blobs, 2*blobs)
	}
	if d[faultproxy.KindOther] != 0 || s[faultproxy.KindOther] != 0 {
		t.Errorf("unclassified requests: source %v, target %v", s, d)
	}

	if _, err := crane.Digest(ps.Host+"/ns/app:latest", crane.Insecure); err != nil {
		t.Fatal(err)
	}
	if got := ps.Stats().ByKind[faultproxy.KindManifestHead]; got != 1 {
		t.Errorf("manifest HEADs after crane digest: %d, want 1", got)
	}
	if _, err := crane.ListTags(ps.Host+"/ns/app", crane.Insecure); err != nil {
		t.Fatal(err)
	}
	if got := ps.Stats().ByKind[faultproxy.KindTagList]; got != 1 {
		t.Errorf("tag lists: %d, want 1", got)
	}
}

// A delayed request whose client gives up before the delay is over never
// reaches the registry.
func TestDelayedRequestsGivenUpNeverReachTheRegistry(t *testing.T) {
	up := regtest.StartInProcess(t)
	pushRandom(t, up.Host, "ns/app", 512)
	p := faultproxy.New(t, up.URL())
	p.SetDelay(time.Hour)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/v2/ns/app/manifests/latest", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request during an hour's delay: %v, want the client's deadline", err)
	}
	if got := p.Stats().Requests["GET"]; got != 0 {
		t.Errorf("the registry saw %d GETs of a request given up during its delay", got)
	}

	p.SetDelay(0)
	if got := status(t, "GET", p.URL+"/v2/ns/app/manifests/latest"); got != 200 {
		t.Errorf("after SetDelay(0): %d", got)
	}
}

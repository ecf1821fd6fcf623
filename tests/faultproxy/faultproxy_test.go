package faultproxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// pushRandom pushes a random image of one layer of size bytes to
// host/repo:latest and returns it.
func pushRandom(t *testing.T, host, repo string, size int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/" + repo + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return img
}

// do sends one request through a client without keep-alives (so that a
// reset affects only its own request) and returns the response with its
// body read, or the transport error.
func do(t *testing.T, method, url string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func status(t *testing.T, method, url string) int {
	t.Helper()
	resp, _, err := do(t, method, url)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.StatusCode
}

func TestStatusFaultsAreCounted(t *testing.T) {
	up := regtest.StartInProcess(t)
	pushRandom(t, up.Host, "ns/app", 512)
	p := faultproxy.New(t, up.URL(),
		faultproxy.Fault{Method: "GET", PathRegex: regexp.MustCompile(`/manifests/`), Kind: faultproxy.Status503, Times: 2},
		faultproxy.Fault{Method: "HEAD", Kind: faultproxy.Status429, Times: 1, RetryAfter: "3"},
		faultproxy.Fault{PathRegex: regexp.MustCompile(`/tags/list$`), Kind: faultproxy.Status500}, // Times 0: once
	)
	manifest := p.URL + "/v2/ns/app/manifests/latest"

	for i, want := range []int{503, 503, 200, 200} {
		if got := status(t, "GET", manifest); got != want {
			t.Errorf("GET #%d: %d, want %d", i+1, got, want)
		}
	}
	resp, body, err := do(t, "HEAD", manifest)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("HEAD: %d Retry-After %q, want 429 and 3", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if len(body) != 0 {
		t.Errorf("HEAD answered a body: %q", body)
	}
	if got := status(t, "HEAD", manifest); got != 200 {
		t.Errorf("second HEAD: %d", got)
	}
	resp, body, _ = do(t, "GET", p.URL+"/v2/ns/app/tags/list")
	if resp.StatusCode != 500 || !strings.Contains(string(body), `"UNKNOWN"`) {
		t.Errorf("tags/list: %d %s, want 500 with a registry error", resp.StatusCode, body)
	}
	if got := status(t, "GET", p.URL+"/v2/ns/app/tags/list"); got != 200 {
		t.Errorf("second tags/list: %d", got)
	}

	st := p.Stats()
	if st.Faults != 4 || st.FaultsByKind[faultproxy.Status503] != 2 || st.FaultsByKind[faultproxy.Status429] != 1 || st.FaultsByKind[faultproxy.Status500] != 1 {
		t.Errorf("faults %d %v, want 4: 2 503, 1 429, 1 500", st.Faults, st.FaultsByKind)
	}
	if st.Requests["GET"] != 6 || st.Requests["HEAD"] != 2 {
		t.Errorf("requests %v, want 6 GET and 2 HEAD", st.Requests)
	}

	p.ResetStats()
	if st := p.Stats(); st.Faults != 0 || len(st.Requests) != 0 {
		t.Errorf("after ResetStats: %+v", st)
	}
}

func TestForeverAndSetFaults(t *testing.T) {
	up := regtest.StartInProcess(t)
	p := faultproxy.New(t, up.URL(), faultproxy.Fault{Kind: faultproxy.Status503, Times: -1})
	for range 5 {
		if got := status(t, "GET", p.URL+"/v2/"); got != 503 {
			t.Fatalf("GET /v2/: %d, want 503 for ever", got)
		}
	}
	p.SetFaults()
	if got := status(t, "GET", p.URL+"/v2/"); got != 200 {
		t.Errorf("GET /v2/ without faults: %d", got)
	}
	p.SetFaults(faultproxy.Fault{Method: "POST", Kind: faultproxy.Status500, Times: -1})
	if got := status(t, "GET", p.URL+"/v2/"); got != 200 {
		t.Errorf("GET /v2/ with a POST fault: %d", got)
	}
	if st := p.Stats(); st.Faults != 5 || st.Requests["GET"] != 7 {
		t.Errorf("stats %+v, want 5 faults of 7 GETs", st)
	}
}

func TestReset(t *testing.T) {
	up := regtest.StartInProcess(t)
	p := faultproxy.New(t, up.URL())
	// A keep-alive client: the reset must reach it even on a reused
	// connection, where net/http retries idempotent requests that got no
	// response at all.
	client := &http.Client{}
	defer client.CloseIdleConnections()
	get := func() error {
		resp, err := client.Get(p.URL + "/v2/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.ReadAll(resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	p.SetFaults(faultproxy.Fault{PathRegex: regexp.MustCompile(`^/v2/$`), Kind: faultproxy.Reset, Times: 2})
	for i := range 2 {
		if err := get(); err == nil {
			t.Errorf("GET #%d with a reset: no error", i+1)
		}
	}
	if err := get(); err != nil {
		t.Errorf("GET after the resets: %v", err)
	}
	if st := p.Stats(); st.FaultsByKind[faultproxy.Reset] != 2 || st.Requests["GET"] != 4 {
		t.Errorf("stats %+v, want 2 resets in 4 GETs (none retried behind the client's back)", st)
	}
}

func TestTruncateBody(t *testing.T) {
	up := regtest.StartInProcess(t)
	img := pushRandom(t, up.Host, "ns/app", 64<<10)
	layers, _ := img.Layers()
	digest, _ := layers[0].Digest()
	size, _ := layers[0].Size()
	blobURL := fmt.Sprintf("%s/v2/ns/app/blobs/%s", "%s", digest)
	p := faultproxy.New(t, up.URL(),
		faultproxy.Fault{Method: "GET", PathRegex: regexp.MustCompile(`/blobs/`), Kind: faultproxy.TruncateBody, Times: 1},
		faultproxy.Fault{Method: "GET", PathRegex: regexp.MustCompile(`/manifests/`), Kind: faultproxy.TruncateBody, Times: 1},
	)

	resp, body, err := do(t, "GET", fmt.Sprintf(blobURL, p.URL))
	if resp == nil {
		t.Fatalf("truncated GET: no response: %v", err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != size {
		t.Errorf("truncated GET: %d, Content-Length %d, want 200 and %d", resp.StatusCode, resp.ContentLength, size)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) || int64(len(body)) != size/2 {
		t.Errorf("truncated GET: read %d bytes (%v), want %d and an unexpected EOF", len(body), err, size/2)
	}

	// A small body is truncated the same way.
	mresp, mbody, err := do(t, "GET", p.URL+"/v2/ns/app/manifests/latest")
	if mresp == nil || !errors.Is(err, io.ErrUnexpectedEOF) || int64(len(mbody)) != mresp.ContentLength/2 {
		t.Errorf("truncated manifest: %v, %d bytes, err %v", mresp, len(mbody), err)
	}

	resp, body, err = do(t, "GET", fmt.Sprintf(blobURL, p.URL))
	if err != nil || int64(len(body)) != size {
		t.Fatalf("second GET: %d bytes, %v", len(body), err)
	}
	st := p.Stats()
	if st.BlobBytes != size/2+size || st.BlobGets[digest.String()] != 2 || st.FaultsByKind[faultproxy.TruncateBody] != 2 {
		t.Errorf("stats %+v, want %d blob bytes, 2 GETs of %s, 2 truncations", st, size/2+size, digest)
	}
}

// TestCopyThroughProxy pulls and pushes with go-containerregistry through
// proxies in front of in-process registries, as crane copy does.
func TestCopyThroughProxy(t *testing.T) {
	src, dst := regtest.StartInProcess(t), regtest.StartInProcess(t)
	img := pushRandom(t, src.Host, "ns/app", 32<<10)
	want, _ := img.Digest()
	psrc, pdst := faultproxy.New(t, src.URL()), faultproxy.New(t, dst.URL())

	if err := crane.Copy(psrc.Host+"/ns/app:latest", pdst.Host+"/copied/app:v1", crane.WithContext(context.Background())); err != nil {
		t.Fatalf("crane copy through the proxies: %v", err)
	}
	got, err := crane.Digest(dst.Host + "/copied/app:v1")
	if err != nil || got != want.String() {
		t.Fatalf("target digest %q (%v), want %s", got, err, want)
	}

	// The source proxy served every blob once.
	m, _ := img.Manifest()
	wantBytes := m.Config.Size
	blobs := []v1.Descriptor{m.Config}
	for _, l := range m.Layers {
		wantBytes += l.Size
		blobs = append(blobs, l)
	}
	st := psrc.Stats()
	if st.BlobBytes != wantBytes {
		t.Errorf("source proxy served %d blob bytes, want %d", st.BlobBytes, wantBytes)
	}
	for _, b := range blobs {
		if st.BlobGets[b.Digest.String()] != 1 {
			t.Errorf("blob %s fetched %d times, want 1", b.Digest, st.BlobGets[b.Digest.String()])
		}
	}
	// The uploads went through the target proxy.
	if st := pdst.Stats(); st.Requests["PUT"] < len(blobs)+1 || st.Faults != 0 {
		t.Errorf("target proxy stats %+v, want a PUT per blob and the manifest", st)
	}
}

// TestUploadsStayOnTheProxy pushes to a real distribution registry, which
// answers absolute upload Locations built from the request, through the
// proxy.
func TestUploadsStayOnTheProxy(t *testing.T) {
	t.Parallel()
	reg := regtest.StartDistribution(t, regtest.Options{})
	p := faultproxy.New(t, reg.URL())

	resp, _, err := do(t, "POST", p.URL+"/v2/ns/up/blobs/uploads/")
	if err != nil {
		t.Fatal(err)
	}
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || !strings.HasPrefix(loc, p.URL+"/v2/ns/up/blobs/uploads/") {
		t.Errorf("POST upload: %d Location %q, want 202 and a Location on %s", resp.StatusCode, loc, p.URL)
	}

	img := pushRandom(t, p.Host, "ns/app", 16<<10)
	layers, _ := img.Layers()
	st := p.Stats()
	// A POST, PATCH and PUT per blob (config and layers), a PUT for the manifest.
	if st.Requests["PATCH"] < len(layers)+1 || st.Requests["PUT"] < len(layers)+2 {
		t.Errorf("proxy saw %v: the uploads left the proxy", st.Requests)
	}
	want, _ := img.Digest()
	if got, err := crane.Digest(reg.Host + "/ns/app:latest"); err != nil || got != want.String() {
		t.Errorf("registry digest %q (%v), want %s", got, err, want)
	}
}

// TestLocationRewrite checks that an absolute Location naming the upstream
// is pointed at the proxy, for upstreams that ignore the forwarded Host.
func TestLocationRewrite(t *testing.T) {
	var upstream *httptest.Server
	upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Forwarded-Proto") != "http" || r.Header.Get("X-Forwarded-Host") == "" {
			t.Errorf("upstream got X-Forwarded-Proto %q X-Forwarded-Host %q", r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"))
		}
		w.Header().Set("Location", upstream.URL+"/v2/x/blobs/uploads/abc?_state=s")
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(upstream.Close)
	p := faultproxy.New(t, upstream.URL)
	resp, _, err := do(t, "POST", p.URL+"/v2/x/blobs/uploads/")
	if err != nil {
		t.Fatal(err)
	}
	if loc := resp.Header.Get("Location"); loc != p.URL+"/v2/x/blobs/uploads/abc?_state=s" {
		t.Errorf("Location %q, want it on the proxy %s", loc, p.URL)
	}
}

package faultproxy_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

var (
	manifests = regexp.MustCompile(`/manifests/`)
	blobs     = regexp.MustCompile(`/blobs/sha256:`)
	catalog   = regexp.MustCompile(`^/v2/_catalog$`)
	tagsList  = regexp.MustCompile(`/tags/list$`)
)

// fixture is an upstream registry with ns/app:latest, an image of one
// layer.
type fixture struct {
	up             *regtest.Registry
	manifest       []byte // ns/app:latest
	manifestDigest string
	layer          string // the layer's digest
	layerSize      int64
}

func newFixture(t *testing.T, layerSize int64) fixture {
	t.Helper()
	up := regtest.StartInProcess(t)
	img := pushRandom(t, up.Host, "ns/app", layerSize)
	raw, _ := img.RawManifest()
	d, _ := img.Digest()
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	ls, _ := layers[0].Size()
	return fixture{up: up, manifest: raw, manifestDigest: d.String(), layer: ld.String(), layerSize: ls}
}

func (f fixture) manifestURL(base string) string { return base + "/v2/ns/app/manifests/latest" }
func (f fixture) blobURL(base string) string     { return base + "/v2/ns/app/blobs/" + f.layer }

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// proxyGoroutines returns the stacks of the goroutines running code of
// package faultproxy (not of its tests), after waiting up to 3 s for them
// to end.
func proxyGoroutines() string {
	var last string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		last = ""
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "/tests/faultproxy.") {
				last += g + "\n\n"
			}
		}
		if last == "" {
			return ""
		}
	}
	return last
}

// readInBackground copies body to a counter until it ends; the count so
// far and the end (its error) are observable.
type backgroundRead struct {
	n    atomic.Int64
	done chan error
}

func readInBackground(body io.Reader) *backgroundRead {
	b := &backgroundRead{done: make(chan error, 1)}
	go func() {
		_, err := io.Copy(writerFunc(func(p []byte) (int, error) { b.n.Add(int64(len(p))); return len(p), nil }), body)
		b.done <- err
	}()
	return b
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// stalls checks that the read got exactly want bytes and is still blocked
// after d.
func (b *backgroundRead) stalls(t *testing.T, want int64, d time.Duration) {
	t.Helper()
	select {
	case err := <-b.done:
		t.Fatalf("body ended after %d bytes (%v), want a stall after %d", b.n.Load(), err, want)
	case <-time.After(d):
	}
	if got := b.n.Load(); got != want {
		t.Errorf("read %d bytes before the stall, want %d", got, want)
	}
}

func (b *backgroundRead) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-b.done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("body read still blocked 5 s after the stall should have ended")
		return nil
	}
}

func TestStallHeaders(t *testing.T) {
	fx := newFixture(t, 512)
	p := faultproxy.New(t, fx.up.URL(), faultproxy.Fault{Method: "HEAD", PathRegex: manifests, Kind: faultproxy.StallHeaders, Times: -1})

	client := &http.Client{Timeout: 200 * time.Millisecond}
	start := time.Now()
	resp, err := client.Head(fx.manifestURL(p.URL))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("stalled HEAD answered %d", resp.StatusCode)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("stalled HEAD: %v, want a client timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the client timeout took %v", d)
	}
	// The handler ends once the client has given up.
	if g := proxyGoroutines(); g != "" {
		t.Errorf("proxy goroutines left after the client gave up:\n%s", g)
	}

	// Not one byte of response, not even a status line.
	conn, err := net.Dial("tcp", p.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "HEAD /v2/ns/app/manifests/latest HTTP/1.1\r\nHost: %s\r\n\r\n", p.Host)
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := conn.Read(make([]byte, 64)); n != 0 || !isTimeout(err) {
		t.Errorf("raw stalled HEAD: read %d bytes (%v), want none and a timeout", n, err)
	}

	// Other requests pass.
	if got := status(t, "GET", fx.manifestURL(p.URL)); got != 200 {
		t.Errorf("GET: %d", got)
	}
	if st := p.Stats(); st.FaultsByKind[faultproxy.StallHeaders] != 2 {
		t.Errorf("stats %+v, want 2 stalls", st)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestStallBody(t *testing.T) {
	fx := newFixture(t, 64<<10)
	p := faultproxy.New(t, fx.up.URL(),
		faultproxy.Fault{Method: "GET", PathRegex: blobs, Kind: faultproxy.StallBody, StallAfter: 1000},
		faultproxy.Fault{Method: "GET", PathRegex: manifests, Kind: faultproxy.StallBody}, // the default
		faultproxy.Fault{Method: "GET", PathRegex: manifests, Kind: faultproxy.StallBody, StallAfter: 1 << 20},
	)
	cases := []struct {
		url  string
		size int64
		want int64
	}{
		{fx.blobURL(p.URL), fx.layerSize, 1000},
		{fx.manifestURL(p.URL), int64(len(fx.manifest)), faultproxy.DefaultStallAfter},
		// More than the body: all but its last byte.
		{fx.manifestURL(p.URL), int64(len(fx.manifest)), int64(len(fx.manifest)) - 1},
	}
	for _, c := range cases {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", c.url, nil)
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err != nil {
			cancel()
			t.Fatalf("GET %s: %v", c.url, err)
		}
		if resp.StatusCode != 200 || resp.ContentLength != c.size {
			t.Errorf("GET %s: %d, Content-Length %d, want 200 and %d", c.url, resp.StatusCode, resp.ContentLength, c.size)
		}
		r := readInBackground(resp.Body)
		r.stalls(t, c.want, 300*time.Millisecond)
		cancel() // the client gives up
		if err := r.wait(t); err == nil {
			t.Errorf("GET %s: the body ended cleanly after the stall", c.url)
		}
		resp.Body.Close()
	}
	if st := p.Stats(); st.BlobBytes != 1000 || st.FaultsByKind[faultproxy.StallBody] != 3 {
		t.Errorf("stats %+v, want 1000 blob bytes sent and 3 stalls", st)
	}
	if g := proxyGoroutines(); g != "" {
		t.Errorf("proxy goroutines left after the clients gave up:\n%s", g)
	}
}

func TestEndlessList(t *testing.T) {
	fx := newFixture(t, 512)
	p := faultproxy.New(t, fx.up.URL(),
		faultproxy.Fault{Method: "GET", PathRegex: catalog, Kind: faultproxy.EndlessList},
		faultproxy.Fault{Method: "GET", PathRegex: tagsList, Kind: faultproxy.EndlessList},
	)
	cases := []struct {
		path, prefix string
		read         int64
	}{
		{"/v2/_catalog", `{"repositories":["r000000","r000001","r000002",`, 10<<20 + 1},
		{"/v2/ns/app/tags/list", `{"name":"ns/app","tags":["t000000","t000001",`, 1 << 20},
	}
	for _, c := range cases {
		resp, err := http.Get(p.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.ContentLength != -1 || !slices.Contains(resp.TransferEncoding, "chunked") {
			t.Errorf("%s: %d, Content-Length %d, Transfer-Encoding %v, want 200, chunked, no length", c.path, resp.StatusCode, resp.ContentLength, resp.TransferEncoding)
		}
		br := bufio.NewReader(resp.Body)
		if head, err := br.Peek(len(c.prefix)); err != nil || string(head) != c.prefix {
			t.Errorf("%s starts with %q (%v), want %q", c.path, head, err, c.prefix)
		}
		if n, err := io.CopyN(io.Discard, br, c.read); err != nil {
			t.Errorf("%s: the body ended after %d bytes: %v", c.path, n, err)
		}
		resp.Body.Close()
	}
	if g := proxyGoroutines(); g != "" {
		t.Errorf("proxy goroutines left after the clients stopped reading:\n%s", g)
	}
	// Times is spent: the real catalog is back.
	_, body, err := do(t, "GET", p.URL+"/v2/_catalog")
	if err != nil || !strings.Contains(string(body), `"ns/app"`) {
		t.Errorf("catalog after the fault: %s (%v)", body, err)
	}
}

var linkNext = regexp.MustCompile(`^<([^>]+)>;\s*rel="next"$`)

// getPage GETs a list page and returns its names and the next page's URL.
func getPage(t *testing.T, pageURL string) (names []string, next string) {
	t.Helper()
	resp, body, err := do(t, "GET", pageURL)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %v %v", pageURL, resp, err)
	}
	var doc struct {
		Repositories []string `json:"repositories"`
		Tags         []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("GET %s: %v in %s", pageURL, err, body)
	}
	names = append(doc.Repositories, doc.Tags...)
	if link := resp.Header.Get("Link"); link != "" {
		m := linkNext.FindStringSubmatch(link)
		if m == nil {
			t.Fatalf("GET %s: Link %q", pageURL, link)
		}
		base, _ := url.Parse(pageURL)
		ref, err := url.Parse(m[1])
		if err != nil {
			t.Fatal(err)
		}
		next = base.ResolveReference(ref).String()
	}
	return names, next
}

func TestEndlessPages(t *testing.T) {
	fx := newFixture(t, 512)
	p := faultproxy.New(t, fx.up.URL(), faultproxy.Fault{Method: "GET", PathRegex: catalog, Kind: faultproxy.EndlessPages}) // Times 1

	seen := map[string]bool{}
	next := p.URL + "/v2/_catalog?n=5"
	for page := range 50 {
		names, link := getPage(t, next)
		if len(names) != 5 || link == "" {
			t.Fatalf("page %d: %v, next %q: want 5 names and a next page", page, names, link)
		}
		for _, n := range names {
			if seen[n] {
				t.Fatalf("page %d: %q again", page, n)
			}
			seen[n] = true
		}
		next = link
	}
	if st := p.Stats(); st.FaultsByKind[faultproxy.EndlessPages] != 50 {
		t.Errorf("%d endless pages counted, want 50", st.FaultsByKind[faultproxy.EndlessPages])
	}

	// A tag list, with the fault's page size.
	p.SetFaults(faultproxy.Fault{PathRegex: tagsList, Kind: faultproxy.EndlessPages, PageSize: 3})
	names, link := getPage(t, p.URL+"/v2/ns/app/tags/list")
	if !slices.Equal(names, []string{"t000000", "t000001", "t000002"}) || !strings.Contains(link, "/v2/ns/app/tags/list?last=t000002&n=3") {
		t.Errorf("tag list page: %v, next %q", names, link)
	}
	if names, _ := getPage(t, link); !slices.Equal(names, []string{"t000003", "t000004", "t000005"}) {
		t.Errorf("second tag list page: %v", names)
	}

	// SetFaults ends it: the upstream answers, even for a generated last=.
	p.SetFaults()
	if names, link := getPage(t, p.URL+"/v2/_catalog?n=5&last=r000004"); !slices.Contains(names, "ns/app") || link != "" {
		t.Errorf("catalog after SetFaults: %v, next %q", names, link)
	}
}

var wellFormed = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func TestWrongDigestHeader(t *testing.T) {
	fx := newFixture(t, 512)
	other := "sha256:" + strings.Repeat("1", 64)
	p := faultproxy.New(t, fx.up.URL(),
		faultproxy.Fault{PathRegex: manifests, Kind: faultproxy.WrongDigestHeader, Times: 2},
		faultproxy.Fault{PathRegex: manifests, Kind: faultproxy.WrongDigestHeader, Digest: other},
	)
	for i, method := range []string{"HEAD", "GET"} {
		resp, body, err := do(t, method, fx.manifestURL(p.URL))
		if err != nil {
			t.Fatal(err)
		}
		got := resp.Header.Get("Docker-Content-Digest")
		if got == fx.manifestDigest || !wellFormed.MatchString(got) {
			t.Errorf("%s #%d: Docker-Content-Digest %q, want another well-formed digest than %s", method, i, got, fx.manifestDigest)
		}
		if method == "GET" && sha(body) != fx.manifestDigest {
			t.Errorf("GET: the body changed")
		}
	}
	resp, _, _ := do(t, "GET", fx.manifestURL(p.URL))
	if got := resp.Header.Get("Docker-Content-Digest"); got != other {
		t.Errorf("with Fault.Digest: %q, want %q", got, other)
	}
	resp, _, _ = do(t, "HEAD", fx.manifestURL(p.URL))
	if got := resp.Header.Get("Docker-Content-Digest"); got != fx.manifestDigest {
		t.Errorf("after the faults: %q, want the real %s", got, fx.manifestDigest)
	}
}

func TestInvalidDigestHeader(t *testing.T) {
	fx := newFixture(t, 512)
	p := faultproxy.New(t, fx.up.URL(),
		faultproxy.Fault{Method: "HEAD", PathRegex: manifests, Kind: faultproxy.InvalidDigestHeader},
		faultproxy.Fault{Method: "GET", PathRegex: blobs, Kind: faultproxy.InvalidDigestHeader, Digest: "md5:abc"},
	)
	resp, _, _ := do(t, "HEAD", fx.manifestURL(p.URL))
	if got := resp.Header.Get("Docker-Content-Digest"); got != faultproxy.DefaultInvalidDigest {
		t.Errorf("HEAD manifest: %q, want %q", got, faultproxy.DefaultInvalidDigest)
	}
	resp, body, err := do(t, "GET", fx.blobURL(p.URL))
	if got := resp.Header.Get("Docker-Content-Digest"); got != "md5:abc" || err != nil || sha(body) != fx.layer {
		t.Errorf("GET blob: %q (%v), want md5:abc and the real body", got, err)
	}
}

// oneByteApart reports whether a and b have the same length and differ in
// exactly one byte, and which.
func oneByteApart(a, b []byte) (int, bool) {
	if len(a) != len(b) {
		return -1, false
	}
	at := -1
	for i := range a {
		if a[i] != b[i] {
			if at >= 0 {
				return -1, false
			}
			at = i
		}
	}
	return at, at >= 0
}

func TestAlteredBody(t *testing.T) {
	fx := newFixture(t, 64<<10)
	// A layer larger than what the proxy alters in memory.
	bigDigest, err := regtest.PushLargeImage(context.Background(), fx.up.Host, "ns/big", "v1", 3<<20)
	if err != nil {
		t.Fatal(err)
	}
	_, bigManifest, err := do(t, "GET", fx.up.URL()+"/v2/ns/big/manifests/"+bigDigest)
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Layers []struct{ Digest string } }
	if err := json.Unmarshal(bigManifest, &m); err != nil || len(m.Layers) != 1 {
		t.Fatalf("big manifest %s: %v", bigManifest, err)
	}
	bigLayer := "/v2/ns/big/blobs/" + m.Layers[0].Digest

	p := faultproxy.New(t, fx.up.URL(), faultproxy.Fault{Method: "GET", Kind: faultproxy.AlteredBody, Times: -1})
	for _, path := range []string{"/v2/ns/app/manifests/latest", "/v2/ns/app/blobs/" + fx.layer, bigLayer} {
		realResp, real, err := do(t, "GET", fx.up.URL()+path)
		if err != nil {
			t.Fatal(err)
		}
		resp, body, err := do(t, "GET", p.URL+path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		at, ok := oneByteApart(real, body)
		if !ok {
			t.Errorf("GET %s: %d bytes, want the %d real ones with one changed", path, len(body), len(real))
		}
		for _, h := range []string{"Docker-Content-Digest", "Content-Length", "Content-Type"} {
			if resp.Header.Get(h) != realResp.Header.Get(h) {
				t.Errorf("GET %s: %s %q, want the upstream's %q", path, h, resp.Header.Get(h), realResp.Header.Get(h))
			}
		}
		if d := resp.Header.Get("Docker-Content-Digest"); d != sha(real) || sha(body) == d {
			t.Errorf("GET %s: a hashing client would not notice (header %s)", path, d)
		}
		if path == "/v2/ns/app/manifests/latest" {
			if !json.Valid(body) {
				t.Errorf("altered manifest is not valid JSON: %s", body)
			}
		} else if at != len(real)/2 {
			t.Errorf("GET %s: byte %d changed, want the middle one %d", path, at, len(real)/2)
		}
	}
	// HEAD is not altered.
	if resp, _, _ := do(t, "HEAD", fx.manifestURL(p.URL)); resp.Header.Get("Docker-Content-Digest") != fx.manifestDigest {
		t.Errorf("HEAD: %v", resp.Header)
	}
}

func TestNoDigestOnHead(t *testing.T) {
	fx := newFixture(t, 512)
	p := faultproxy.New(t, fx.up.URL(), faultproxy.Fault{PathRegex: manifests, Kind: faultproxy.NoDigestOnHead}) // Times 1
	digestOf := func(method string) string {
		resp, _, err := do(t, method, fx.manifestURL(p.URL))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", method, resp, err)
		}
		return resp.Header.Get("Docker-Content-Digest")
	}
	// A GET neither loses the header nor uses up the fault.
	for i, c := range []struct{ method, want string }{
		{"GET", fx.manifestDigest}, {"HEAD", ""}, {"HEAD", fx.manifestDigest},
	} {
		if got := digestOf(c.method); got != c.want {
			t.Errorf("#%d %s: Docker-Content-Digest %q, want %q", i, c.method, got, c.want)
		}
	}
	p.SetFaults(faultproxy.Fault{PathRegex: manifests, Kind: faultproxy.NoDigestOnHead, AlsoGet: true, Times: -1})
	if got, got2 := digestOf("GET"), digestOf("HEAD"); got != "" || got2 != "" {
		t.Errorf("with AlsoGet: GET %q, HEAD %q, want neither", got, got2)
	}
	if st := p.Stats(); st.FaultsByKind[faultproxy.NoDigestOnHead] != 3 {
		t.Errorf("stats %+v, want 3 faults", st)
	}
}

// pushTag pushes a random image to host/repo:tag and returns its digest.
func pushTag(t *testing.T, host, repo, tag string) string {
	t.Helper()
	img, _ := random.Image(256, 1)
	ref, _ := name.ParseReference(host + "/" + repo + ":" + tag)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// unsafeManifestURIs returns the manifest request URIs whose path carried
// a raw ? (a query) or a .. segment.
func unsafeManifestURIs(uris []string) []string {
	var bad []string
	for _, u := range uris {
		path, query, hasQuery := strings.Cut(u, "?")
		if !strings.Contains(path, "/manifests/") {
			continue
		}
		if hasQuery || query != "" || slices.Contains(strings.Split(path, "/"), "..") {
			bad = append(bad, u)
		}
	}
	return bad
}

func TestOddNames(t *testing.T) {
	fx := newFixture(t, 512)
	v1 := pushTag(t, fx.up.Host, "ns/app", "v1")
	p := faultproxy.New(t, fx.up.URL(),
		faultproxy.Fault{Method: "GET", PathRegex: catalog, Kind: faultproxy.OddNames},
		faultproxy.Fault{Method: "GET", PathRegex: tagsList, Kind: faultproxy.OddNames, Times: -1},
	)
	odd := faultproxy.DefaultOddNames()
	for _, want := range []string{"x?y=1", "a/../../b", "UPPER", "tag with space", "%2e%2e", "-leadingdash", strings.Repeat("x", 200), "ns/repo#frag"} {
		if !slices.Contains(odd, want) {
			t.Errorf("DefaultOddNames() lacks %q", want)
		}
	}

	repos, _ := getPage(t, p.URL+"/v2/_catalog")
	if !slices.Equal(repos, append([]string{"ns/app"}, odd...)) {
		t.Errorf("catalog %q, want ns/app and the odd names", repos)
	}
	resp, body, err := do(t, "GET", p.URL+"/v2/ns/app/tags/list")
	if err != nil || resp.ContentLength != int64(len(body)) {
		t.Fatalf("tag list: %v, Content-Length %d for %d bytes", err, resp.ContentLength, len(body))
	}
	var doc struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Name != "ns/app" || !slices.Equal(doc.Tags, append([]string{"latest", "v1"}, odd...)) {
		t.Errorf("tag list %s (%v), want latest, v1 and the odd names", body, err)
	}

	// Every odd tag is served (as latest) when asked for escaped...
	manifestDigest := func(uri string) (int, string) {
		resp, _, err := do(t, "GET", p.URL+uri)
		if err != nil {
			t.Fatalf("GET %s: %v", uri, err)
		}
		return resp.StatusCode, resp.Header.Get("Docker-Content-Digest")
	}
	for _, tag := range odd {
		if code, d := manifestDigest("/v2/ns/app/manifests/" + url.PathEscape(tag)); code != 200 || d != fx.manifestDigest {
			t.Errorf("manifest %q escaped: %d %s, want latest's %s", tag, code, d, fx.manifestDigest)
		}
	}
	if bad := unsafeManifestURIs(p.RequestURIs()); len(bad) != 0 {
		t.Errorf("escaped requests flagged: %q", bad)
	}
	// ... and when asked for wrongly, which the recorded URIs show.
	wrong := []string{"/v2/ns/app/manifests/x?y=1", "/v2/ns/app/manifests/a/../../b"}
	for _, uri := range wrong {
		if code, d := manifestDigest(uri); code != 200 || d != fx.manifestDigest {
			t.Errorf("manifest %s: %d %s, want it served", uri, code, d)
		}
	}
	if bad := unsafeManifestURIs(p.RequestURIs()); !slices.Equal(bad, wrong) {
		t.Errorf("flagged URIs %q, want %q", bad, wrong)
	}

	// Custom names, served as another tag; real tags are untouched.
	p.SetFaults(faultproxy.Fault{PathRegex: tagsList, Kind: faultproxy.OddNames, Names: []string{"Bad:Tag"}, ServeAs: "v1"})
	if tags, _ := getPage(t, p.URL+"/v2/ns/app/tags/list"); !slices.Equal(tags, []string{"latest", "v1", "Bad:Tag"}) {
		t.Errorf("tags %q", tags)
	}
	if code, d := manifestDigest("/v2/ns/app/manifests/Bad:Tag"); code != 200 || d != v1 {
		t.Errorf("Bad:Tag: %d %s, want v1's %s", code, d, v1)
	}
	if code, d := manifestDigest("/v2/ns/app/manifests/latest"); code != 200 || d != fx.manifestDigest {
		t.Errorf("latest: %d %s", code, d)
	}
}

// noFollow is a client that returns redirects.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestRedirectToOtherHost(t *testing.T) {
	fx := newFixture(t, 4<<10)
	p := faultproxy.New(t, fx.up.URL(), faultproxy.Fault{PathRegex: blobs, Kind: faultproxy.Redirect, Times: -1})
	if !strings.HasPrefix(p.OtherHost, "127.0.0.2:") || p.OtherURL != "http://"+p.OtherHost {
		t.Fatalf("second listener %q %q, want one on 127.0.0.2", p.OtherURL, p.OtherHost)
	}

	resp, err := noFollow.Head(fx.blobURL(p.URL))
	if err != nil {
		t.Fatal(err)
	}
	if want := fx.blobURL(p.OtherURL); resp.StatusCode != 307 || resp.Header.Get("Location") != want {
		t.Errorf("HEAD blob: %d Location %q, want 307 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}

	// A client that follows, with the registry's credentials: Go's client
	// drops them on the way to another host.
	const secret = "Basic c2VjcmV0OnNlY3JldA=="
	fetch := func(client *http.Client, method string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, fx.blobURL(p.URL), nil)
		req.Header.Set("Authorization", secret)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s blob: %v", method, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s blob: %d, %v", method, resp.StatusCode, err)
		}
		return resp, body
	}
	if resp, _ := fetch(http.DefaultClient, "HEAD"); resp.ContentLength != fx.layerSize || resp.Request.URL.Host != p.OtherHost {
		t.Errorf("HEAD blob followed: Content-Length %d from %s", resp.ContentLength, resp.Request.URL.Host)
	}
	if _, body := fetch(http.DefaultClient, "GET"); sha(body) != fx.layer {
		t.Errorf("GET blob followed: wrong content")
	}
	// A client that forwards them is caught.
	leaky := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		req.Header.Set("Authorization", via[0].Header.Get("Authorization"))
		return nil
	}}
	fetch(leaky, "GET")

	reqs := p.OtherRequests()
	want := []faultproxy.OtherRequest{
		{Method: "HEAD", URI: "/v2/ns/app/blobs/" + fx.layer},
		{Method: "GET", URI: "/v2/ns/app/blobs/" + fx.layer},
		{Method: "GET", URI: "/v2/ns/app/blobs/" + fx.layer, Authorization: true},
	}
	if !slices.Equal(reqs, want) {
		t.Errorf("second listener saw %+v, want %+v", reqs, want)
	}
	if s := fmt.Sprintf("%#v", reqs); strings.Contains(s, "c2VjcmV0") {
		t.Errorf("the credentials were stored: %s", s)
	}
	if st := p.Stats(); st.FaultsByKind[faultproxy.Redirect] != 4 {
		t.Errorf("stats %+v, want 4 redirects", st)
	}

	for _, code := range []int{301, 302, 303, 307, 308} {
		p.SetFaults(faultproxy.Fault{PathRegex: blobs, Kind: faultproxy.Redirect, RedirectStatus: code})
		resp, err := noFollow.Get(fx.blobURL(p.URL))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code || resp.Header.Get("Location") != fx.blobURL(p.OtherURL) {
			t.Errorf("RedirectStatus %d: %d to %q", code, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

func TestRedirectRelative(t *testing.T) {
	fx := newFixture(t, 4<<10)
	p := faultproxy.New(t, fx.up.URL(),
		faultproxy.Fault{Method: "GET", PathRegex: blobs, Kind: faultproxy.Redirect, RedirectTo: faultproxy.ToRelative, RedirectStatus: 302, Times: -1},
		faultproxy.Fault{PathRegex: tagsList, Kind: faultproxy.Redirect, RedirectTo: faultproxy.ToRelative, Times: -1},
	)
	resp, err := noFollow.Get(fx.blobURL(p.URL))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "/_redirected/v2/ns/app/blobs/" + fx.layer; resp.StatusCode != 302 || resp.Header.Get("Location") != want {
		t.Errorf("GET blob: %d Location %q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}

	resp, body, err := do(t, "GET", fx.blobURL(p.URL))
	if err != nil || resp.StatusCode != 200 || sha(body) != fx.layer {
		t.Fatalf("GET blob followed: %v %v", resp, err)
	}
	if resp.Request.URL.Host != p.Host || !strings.HasPrefix(resp.Request.URL.Path, "/_redirected/") {
		t.Errorf("served from %s", resp.Request.URL)
	}
	// The query stays.
	if tags, _ := getPage(t, p.URL+"/v2/ns/app/tags/list?n=1"); !slices.Equal(tags, []string{"latest"}) {
		t.Errorf("tag list followed: %q", tags)
	}
	uris := p.RequestURIs()
	if !slices.Contains(uris, "/_redirected/v2/ns/app/tags/list?n=1") {
		t.Errorf("request URIs %q lack the redirected tag list", uris)
	}
	if st := p.Stats(); st.BlobGets[fx.layer] != 2 || st.BlobBytes != fx.layerSize || len(p.OtherRequests()) != 0 {
		t.Errorf("stats %+v, want 2 blob GETs and one body sent by the proxy", st)
	}
}

func TestRedirectChain(t *testing.T) {
	fx := newFixture(t, 512)
	p := faultproxy.New(t, fx.up.URL(), faultproxy.Fault{Method: "GET", PathRegex: manifests, Kind: faultproxy.Redirect, RedirectTo: faultproxy.ToRelative, Hops: 4})
	var hops []string
	client := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		hops = append(hops, req.URL.RequestURI())
		return nil
	}}
	resp, err := client.Get(fx.manifestURL(p.URL))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != fx.manifestDigest || len(hops) != 4 {
		t.Errorf("chain of 4: %d after hops %q", resp.StatusCode, hops)
	}
	if st := p.Stats(); st.FaultsByKind[faultproxy.Redirect] != 4 {
		t.Errorf("%d redirects counted, want 4", st.FaultsByKind[faultproxy.Redirect])
	}

	// A chain to the other host.
	p.SetFaults(faultproxy.Fault{Method: "GET", PathRegex: manifests, Kind: faultproxy.Redirect, Hops: 2})
	resp, body, err := do(t, "GET", fx.manifestURL(p.URL))
	if err != nil || sha(body) != fx.manifestDigest || resp.Request.URL.Host != p.OtherHost {
		t.Errorf("chain to the other host: %v from %s", err, resp.Request.URL)
	}

	// An endless chain: Go's client gives up after 10 redirects, a client
	// with its own limit after its limit.
	p.SetFaults(faultproxy.Fault{Method: "GET", PathRegex: manifests, Kind: faultproxy.Redirect, Hops: -1, Times: -1})
	p.ResetStats()
	if _, _, err := do(t, "GET", fx.manifestURL(p.URL)); err == nil || !strings.Contains(err.Error(), "stopped after 10 redirects") {
		t.Errorf("endless chain: %v", err)
	}
	limited := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > 3 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	if _, err := limited.Get(fx.manifestURL(p.URL)); err == nil {
		t.Error("endless chain: a limited client got an answer")
	}
	if st := p.Stats(); st.FaultsByKind[faultproxy.Redirect] != 10+4 {
		t.Errorf("%d redirects counted, want 14", st.FaultsByKind[faultproxy.Redirect])
	}
	if uris := p.RequestURIs(); len(uris) != 14 || !slices.ContainsFunc(uris, func(u string) bool { return strings.HasPrefix(u, "/_loop/307/9/v2/ns/app/manifests/latest") }) {
		t.Errorf("request URIs %q", uris)
	}
}

// TestCloseStopsStalledHandlers closes a proxy with a stalled header, a
// stalled body and an endless list (whose client does not read) in
// flight.
func TestCloseStopsStalledHandlers(t *testing.T) {
	fx := newFixture(t, 64<<10)
	p := faultproxy.New(t, fx.up.URL(),
		faultproxy.Fault{Method: "HEAD", PathRegex: manifests, Kind: faultproxy.StallHeaders, Times: -1},
		faultproxy.Fault{Method: "GET", PathRegex: blobs, Kind: faultproxy.StallBody, Times: -1},
		faultproxy.Fault{Method: "GET", PathRegex: catalog, Kind: faultproxy.EndlessList, Times: -1},
	)
	client := &http.Client{Transport: &http.Transport{}} // no timeout
	errs := make(chan error, 3)
	closed := make(chan struct{})
	go func() {
		resp, err := client.Head(fx.manifestURL(p.URL))
		if err == nil {
			resp.Body.Close()
		}
		errs <- err
	}()
	go func() {
		resp, err := client.Get(fx.blobURL(p.URL))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		errs <- err
	}()
	go func() {
		resp, err := client.Get(p.URL + "/v2/_catalog")
		if err == nil {
			<-closed // not reading meanwhile
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		errs <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); p.Stats().Faults < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("faults %+v, want 3 in flight", p.Stats())
		}
	}
	time.Sleep(200 * time.Millisecond) // the endless list fills the connection's buffers

	start := time.Now()
	p.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	close(closed)
	for range 3 {
		select {
		case err := <-errs:
			if err == nil {
				t.Error("a faulted request ended cleanly")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a client is still blocked 5 s after Close")
		}
	}
	if g := proxyGoroutines(); g != "" {
		t.Errorf("proxy goroutines left after Close:\n%s", g)
	}
	p.Close() // idempotent
}

// TestConcurrentUse hammers a proxy with faulted and plain requests while
// reading its records and changing its faults (for the race detector).
func TestConcurrentUse(t *testing.T) {
	fx := newFixture(t, 4<<10)
	faults := []faultproxy.Fault{
		{Method: "GET", PathRegex: blobs, Kind: faultproxy.Redirect, Times: 20},
		{Method: "GET", PathRegex: tagsList, Kind: faultproxy.OddNames, Times: 20},
		{Method: "HEAD", PathRegex: manifests, Kind: faultproxy.WrongDigestHeader, Times: 20},
		{Method: "GET", PathRegex: manifests, Kind: faultproxy.AlteredBody, Times: 20},
		{PathRegex: catalog, Kind: faultproxy.EndlessPages, Times: 20},
	}
	p := faultproxy.New(t, fx.up.URL(), faults...)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 10 {
				for _, u := range []string{fx.blobURL(p.URL), p.URL + "/v2/ns/app/tags/list", fx.manifestURL(p.URL), p.URL + "/v2/_catalog?n=2"} {
					if _, _, err := do(t, "GET", u); err != nil {
						t.Errorf("GET %s: %v", u, err)
					}
				}
				if _, _, err := do(t, "HEAD", fx.manifestURL(p.URL)); err != nil {
					t.Error(err)
				}
				_, _, _ = p.Stats(), p.RequestURIs(), p.OtherRequests()
				if i == 0 && j == 5 {
					p.SetFaults(faults...)
				}
			}
		})
	}
	wg.Wait()
	if st := p.Stats(); st.Requests["GET"] < 8*10*4 || st.Faults == 0 || len(p.RequestURIs()) != st.Requests["GET"]+st.Requests["HEAD"] {
		t.Errorf("stats %+v with %d URIs", st, len(p.RequestURIs()))
	}
}

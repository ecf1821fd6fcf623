package registry_test

// Registries as they are in the field: redirects to object storage, plain
// HTTP, stalls, endless lists, odd names, lying digests, a registry that
// omits digests on HEAD. Each test runs the client against a real registry
// (go-containerregistry's, or the CNCF distribution registry) behind the
// scripted misbehaving proxy of tests/faultproxy.

import (
	"bytes"
	"context"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

var (
	blobPath     = regexp.MustCompile(`/blobs/sha256:`)
	manifestPath = regexp.MustCompile(`/manifests/`)
)

// guard bounds a test that must not hang: a client that never gives up
// fails the test at the deadline instead of hanging the run.
func guard(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// image pushes a random image to repo on the registry and returns its
// manifest digest and a layer's digest and size.
func image(t *testing.T, host, repo string) (string, registry.Descriptor) {
	t.Helper()
	img, err := random.Image(64<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/"+repo+":v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	ls, _ := img.Layers()
	ld, _ := ls[0].Digest()
	size, _ := ls[0].Size()
	return d.String(), registry.Descriptor{Digest: ld.String(), Size: size}
}

// basicAuth puts HTTP Basic authentication in front of a registry handler
// for /v2/ and manifests (blob reads pass, as a presigned URL would let
// them), so that a client sends its credentials to this host.
func basicAuth(h http.Handler, user, pass string) http.Handler {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !blobPath.MatchString(r.URL.Path) && r.Header.Get("Authorization") != want {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func withCreds(host string) *regtest.Registry {
	return &regtest.Registry{Host: host, Username: "migrator", Password: "s3cret-pass"}
}

func TestRedirectsAreFollowedWithoutTheRegistrysCredentials(t *testing.T) {
	t.Parallel()
	up := regtest.StartInProcess(t)
	digest, layer := image(t, up.Host, "ns/app")
	authed := httptest.NewServer(basicAuth(proxyTo(t, "http://"+up.Host), "migrator", "s3cret-pass"))
	t.Cleanup(authed.Close)
	for _, tc := range []struct {
		name  string
		fault faultproxy.Fault
	}{
		{"307 to another host", faultproxy.Fault{Kind: faultproxy.Redirect, PathRegex: blobPath, Times: -1}},
		{"302 to another host", faultproxy.Fault{Kind: faultproxy.Redirect, PathRegex: blobPath, Times: -1, RedirectStatus: http.StatusFound}},
		{"303 to another host", faultproxy.Fault{Kind: faultproxy.Redirect, PathRegex: blobPath, Times: -1, RedirectStatus: http.StatusSeeOther}},
		{"308 to another host", faultproxy.Fault{Kind: faultproxy.Redirect, PathRegex: blobPath, Times: -1, RedirectStatus: http.StatusPermanentRedirect}},
		{"301 relative", faultproxy.Fault{Kind: faultproxy.Redirect, PathRegex: blobPath, Times: -1, RedirectStatus: http.StatusMovedPermanently, RedirectTo: faultproxy.ToRelative}},
		{"three hops, then another host", faultproxy.Fault{Kind: faultproxy.Redirect, PathRegex: blobPath, Times: -1, Hops: 3}},
		{"manifests redirected too", faultproxy.Fault{Kind: faultproxy.Redirect, PathRegex: regexp.MustCompile(`/manifests/|/blobs/`), Times: -1, RedirectTo: faultproxy.ToRelative}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := guard(t)
			px := faultproxy.New(t, authed.URL, tc.fault)
			dst := regtest.StartInProcess(t)
			c := registry.New(registry.Options{Insecure: anyHost, Keychain: withCreds(px.Host).Keychain(), RetryBase: time.Millisecond})
			d, err := c.HeadManifest(ctx, px.Host, "ns/app", "v1")
			if err != nil || d.Digest != digest {
				t.Fatalf("HEAD manifest: %v %v, want %s", d.Digest, err, digest)
			}
			if ok, err := c.HeadBlob(ctx, px.Host, "ns/app", layer.Digest); !ok || err != nil {
				t.Fatalf("HEAD blob through a redirect: %v %v", ok, err)
			}
			n, err := c.CopyBlob(ctx, px.Host, "ns/app", dst.Host, "ns/app", layer)
			if err != nil || n != layer.Size {
				t.Fatalf("copy through a redirect: %d bytes, %v; want %d", n, err, layer.Size)
			}
			if ok, _ := c.HeadBlob(ctx, dst.Host, "ns/app", layer.Digest); !ok {
				t.Fatal("the target does not have the blob")
			}
			if px.Stats().FaultsByKind[faultproxy.Redirect] == 0 {
				t.Fatal("no redirect was served: the test proves nothing")
			}
			for _, r := range px.OtherRequests() {
				if r.Authorization {
					t.Errorf("%s %s on the other host carried an Authorization header: credentials leaked off the registry", r.Method, r.URI)
				}
			}
		})
	}
}

func TestEndlessRedirectsEndWithAClearFinalError(t *testing.T) {
	t.Parallel()
	ctx := guard(t)
	up := regtest.StartInProcess(t)
	_, layer := image(t, up.Host, "ns/app")
	px := faultproxy.New(t, "http://"+up.Host, faultproxy.Fault{Kind: faultproxy.Redirect, PathRegex: blobPath, Times: -1, Hops: -1})
	c := registry.New(registry.Options{Insecure: anyHost, RetryBase: time.Millisecond})
	_, err := c.HeadBlob(ctx, px.Host, "ns/app", layer.Digest)
	var re *registry.RedirectError
	if !errors.As(err, &re) || registry.IsRetryable(err) || !strings.Contains(err.Error(), "more than 10 redirects") {
		t.Fatalf("err %v: want a final RedirectError about the hop limit", err)
	}
}

func TestPlainHTTPOnlyForRegistriesMarkedInsecure(t *testing.T) {
	t.Parallel()
	ctx := guard(t)
	up := regtest.StartInProcess(t)
	image(t, up.Host, "ns/app")
	// A plain-HTTP registry on loopback, with credentials configured: not
	// marked insecure, it must get no HTTP request at all.
	px := faultproxy.New(t, "http://"+up.Host)
	c := registry.New(registry.Options{Keychain: withCreds(px.Host).Keychain(), RetryAttempts: 1})
	_, err := c.HeadManifest(ctx, px.Host, "ns/app", "v1")
	if err == nil || !strings.Contains(err.Error(), "plain HTTP") || !strings.Contains(err.Error(), "insecure") {
		t.Fatalf("err %v: want a refusal that says how to allow plain HTTP", err)
	}
	if n := len(px.RequestURIs()); n != 0 {
		t.Fatalf("the registry got %d plain-HTTP requests without --insecure: %v", n, px.RequestURIs())
	}
	// Marked insecure, it is reached.
	c = registry.New(registry.Options{Insecure: registry.InsecureHosts(px.Host)})
	if _, err := c.HeadManifest(ctx, px.Host, "ns/app", "v1"); err != nil {
		t.Fatalf("insecure registry: %v", err)
	}
}

func TestATLSFailureNeverFallsBackToHTTP(t *testing.T) {
	t.Parallel()
	ctx := guard(t)
	var logged bytes.Buffer
	var mu sync.Mutex
	srv := httptest.NewUnstartedServer(proxyTo(t, "http://"+regtest.StartInProcess(t).Host))
	srv.Config.ErrorLog = log.New(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), "", 0)
	srv.StartTLS() // a certificate no one here trusts
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	c := registry.New(registry.Options{Keychain: withCreds(host).Keychain(), RetryAttempts: 1})
	_, err := c.HeadManifest(ctx, host, "ns/app", "v1")
	if err == nil || !strings.Contains(err.Error(), "certificate") || registry.IsRetryable(err) {
		t.Fatalf("err %v: want a final certificate error", err)
	}
	if !strings.Contains(err.Error(), "--certs-dir") {
		t.Errorf("err %v: does not say how to trust the registry", err)
	}
	time.Sleep(100 * time.Millisecond) // the server logs the handshake after the client left
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logged.String(), "HTTP request to an HTTPS server") {
		t.Fatalf("the client fell back to plain HTTP after a TLS failure:\n%s", logged.String())
	}
}

func TestStalledResponsesEndAndAreRetried(t *testing.T) {
	t.Parallel()
	up := regtest.StartInProcess(t)
	digest, layer := image(t, up.Host, "ns/app")
	for _, tc := range []struct {
		name  string
		fault faultproxy.Fault
		op    func(ctx context.Context, c *registry.Client, host, dst string) error
	}{
		{"no response headers to a blob GET", faultproxy.Fault{Method: "GET", PathRegex: blobPath, Kind: faultproxy.StallHeaders, Times: 1},
			func(ctx context.Context, c *registry.Client, host, dst string) error {
				_, err := c.CopyBlob(ctx, host, "ns/app", dst, "ns/app", layer)
				return err
			}},
		{"a blob body that stops", faultproxy.Fault{Method: "GET", PathRegex: blobPath, Kind: faultproxy.StallBody, Times: 1, StallAfter: 1000},
			func(ctx context.Context, c *registry.Client, host, dst string) error {
				_, err := c.CopyBlob(ctx, host, "ns/app", dst, "ns/app", layer)
				return err
			}},
		{"a manifest body that stops", faultproxy.Fault{Method: "GET", PathRegex: manifestPath, Kind: faultproxy.StallBody, Times: 2, StallAfter: 10},
			func(ctx context.Context, c *registry.Client, host, _ string) error {
				_, _, err := c.GetManifest(ctx, host, "ns/app", digest)
				return err
			}},
		{"no answer to a HEAD", faultproxy.Fault{Method: "HEAD", PathRegex: manifestPath, Kind: faultproxy.StallHeaders, Times: 1},
			func(ctx context.Context, c *registry.Client, host, _ string) error {
				_, err := c.HeadManifest(ctx, host, "ns/app", "v1")
				return err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := guard(t)
			px := faultproxy.New(t, "http://"+up.Host, tc.fault)
			dst := regtest.StartInProcess(t)
			c := registry.New(registry.Options{Insecure: anyHost, IdleTimeout: 300 * time.Millisecond, RetryBase: time.Millisecond})
			if err := tc.op(ctx, c, px.Host, dst.Host); err != nil {
				t.Fatalf("after a stall the retry should succeed: %v", err)
			}
			if px.Stats().Faults == 0 {
				t.Fatal("no stall was served: the test proves nothing")
			}
		})
	}
	t.Run("a registry that always stalls fails retryably", func(t *testing.T) {
		t.Parallel()
		ctx := guard(t)
		px := faultproxy.New(t, "http://"+up.Host, faultproxy.Fault{Method: "GET", PathRegex: blobPath, Kind: faultproxy.StallHeaders, Times: -1})
		dst := regtest.StartInProcess(t)
		c := registry.New(registry.Options{Insecure: anyHost, IdleTimeout: 200 * time.Millisecond, RetryBase: time.Millisecond, RetryAttempts: 2})
		_, err := c.CopyBlob(ctx, px.Host, "ns/app", dst.Host, "ns/app", layer)
		var se *registry.StallError
		if !errors.As(err, &se) || !registry.IsRetryable(err) || ctx.Err() != nil {
			t.Fatalf("err %v: want a retryable StallError before the test's deadline", err)
		}
		if !strings.Contains(err.Error(), "--idle-timeout") {
			t.Errorf("err %v does not name the flag that changes the limit", err)
		}
	})
}

func TestListingsAndErrorBodiesAreBounded(t *testing.T) {
	t.Parallel()
	up := regtest.StartInProcess(t)
	image(t, up.Host, "ns/app")
	for _, tc := range []struct {
		name  string
		fault faultproxy.Fault
		list  func(ctx context.Context, c *registry.Client, host string) error
	}{
		{"an endless catalog body", faultproxy.Fault{PathRegex: regexp.MustCompile(`/_catalog`), Kind: faultproxy.EndlessList, Times: -1},
			func(ctx context.Context, c *registry.Client, host string) error {
				_, err := c.Catalog(ctx, host, nil)
				return err
			}},
		{"an endless tag list body", faultproxy.Fault{PathRegex: regexp.MustCompile(`/tags/list`), Kind: faultproxy.EndlessList, Times: -1},
			func(ctx context.Context, c *registry.Client, host string) error {
				_, err := c.ListTags(ctx, host, "ns/app")
				return err
			}},
		{"catalog pages without end", faultproxy.Fault{PathRegex: regexp.MustCompile(`/_catalog`), Kind: faultproxy.EndlessPages, Times: -1, PageSize: 1000},
			func(ctx context.Context, c *registry.Client, host string) error {
				_, err := c.Catalog(ctx, host, nil)
				return err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := guard(t)
			px := faultproxy.New(t, "http://"+up.Host, tc.fault)
			c := registry.New(registry.Options{Insecure: anyHost, RetryBase: time.Millisecond, MaxListEntries: 20_000})
			err := tc.list(ctx, c, px.Host)
			if !errors.Is(err, registry.ErrTooLarge) || registry.IsRetryable(err) {
				t.Fatalf("err %v: want a final ErrTooLarge", err)
			}
		})
	}
}

func TestInvalidNamesNeverReachARequestPath(t *testing.T) {
	t.Parallel()
	ctx := guard(t)
	up := regtest.StartInProcess(t)
	image(t, up.Host, "ns/app")
	px := faultproxy.New(t, "http://"+up.Host)
	c := registry.New(registry.Options{Insecure: anyHost})
	for _, ref := range []struct{ repo, ref string }{
		{"ns/app", "x?y=1"}, {"ns/app", "a/../../b"}, {"ns/app", "tag with space"}, {"ns/app", "-leadingdash"},
		{"ns/app", strings.Repeat("x", 200)}, {"ns/app", "sha256:zzzz"}, {"ns/../app", "v1"}, {"NS/app", "v1"}, {"ns/app#frag", "v1"},
	} {
		if _, err := c.HeadManifest(ctx, px.Host, ref.repo, ref.ref); !errors.Is(err, registry.ErrInvalidName) || registry.IsRetryable(err) {
			t.Errorf("HEAD %s:%s: err %v, want a final ErrInvalidName", ref.repo, ref.ref, err)
		}
		if _, _, err := c.GetManifest(ctx, px.Host, ref.repo, ref.ref); !errors.Is(err, registry.ErrInvalidName) {
			t.Errorf("GET %s:%s: err %v, want ErrInvalidName", ref.repo, ref.ref, err)
		}
		if err := c.PutManifest(ctx, px.Host, ref.repo, ref.ref, registry.MediaOCIManifest, []byte("{}")); !errors.Is(err, registry.ErrInvalidName) {
			t.Errorf("PUT %s:%s: err %v, want ErrInvalidName", ref.repo, ref.ref, err)
		}
	}
	if uris := px.RequestURIs(); len(uris) != 0 {
		t.Fatalf("invalid names reached the registry: %v", uris)
	}
}

func TestDigestsAreCheckedAndInvalidOnesRefused(t *testing.T) {
	t.Parallel()
	up := regtest.StartInProcess(t)
	digest, layer := image(t, up.Host, "ns/app")
	t.Run("an invalid Docker-Content-Digest on HEAD is replaced by the content's", func(t *testing.T) {
		t.Parallel()
		px := faultproxy.New(t, "http://"+up.Host, faultproxy.Fault{Method: "HEAD", PathRegex: manifestPath, Kind: faultproxy.InvalidDigestHeader, Times: -1})
		c := registry.New(registry.Options{Insecure: anyHost})
		d, err := c.HeadManifest(guard(t), px.Host, "ns/app", "v1")
		if err != nil || d.Digest != digest {
			t.Fatalf("got %q %v, want %s", d.Digest, err, digest)
		}
	})
	t.Run("a Docker-Content-Digest that does not match the content fails for good", func(t *testing.T) {
		t.Parallel()
		px := faultproxy.New(t, "http://"+up.Host, faultproxy.Fault{Method: "GET", PathRegex: manifestPath, Kind: faultproxy.WrongDigestHeader, Times: -1})
		c := registry.New(registry.Options{Insecure: anyHost})
		_, _, err := c.GetManifest(guard(t), px.Host, "ns/app", "v1")
		if !errors.Is(err, registry.ErrInvalidDigest) || registry.IsRetryable(err) {
			t.Fatalf("err %v: want a final ErrInvalidDigest", err)
		}
	})
	t.Run("a manifest whose content is not its digest", func(t *testing.T) {
		t.Parallel()
		px := faultproxy.New(t, "http://"+up.Host, faultproxy.Fault{Method: "GET", PathRegex: manifestPath, Kind: faultproxy.AlteredBody, Times: -1})
		c := registry.New(registry.Options{Insecure: anyHost, RetryBase: time.Millisecond})
		if _, _, err := c.GetManifest(guard(t), px.Host, "ns/app", digest); err == nil {
			t.Fatal("an altered manifest was accepted")
		}
	})
	t.Run("a blob whose content is not its digest is never stored", func(t *testing.T) {
		t.Parallel()
		ctx := guard(t)
		px := faultproxy.New(t, "http://"+up.Host, faultproxy.Fault{Method: "GET", PathRegex: blobPath, Kind: faultproxy.AlteredBody, Times: -1})
		dst := regtest.StartInProcess(t)
		c := registry.New(registry.Options{Insecure: anyHost, RetryBase: time.Millisecond})
		_, err := c.CopyBlob(ctx, px.Host, "ns/app", dst.Host, "ns/app", layer)
		if !errors.Is(err, registry.ErrInvalidDigest) || registry.IsRetryable(err) {
			t.Fatalf("err %v: want a final ErrInvalidDigest", err)
		}
		if ok, _ := c.HeadBlob(ctx, dst.Host, "ns/app", layer.Digest); ok {
			t.Fatal("the target stored a blob under a digest its content does not have")
		}
	})
	t.Run("a manifest that references an invalid digest", func(t *testing.T) {
		t.Parallel()
		_, err := registry.ParseManifest([]byte(`{"schemaVersion":2,"layers":[{"digest":"sha256:../../etc","size":1}]}`), registry.MediaOCIManifest)
		if !errors.Is(err, registry.ErrInvalidDigest) {
			t.Fatalf("err %v, want ErrInvalidDigest", err)
		}
	})
	t.Run("sha512", func(t *testing.T) {
		t.Parallel()
		b := []byte("hello")
		d, err := registry.DigestAs("sha512:"+strings.Repeat("0", 128), b)
		if err != nil || d != "sha512:9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043" {
			t.Fatalf("sha512 of hello: %s %v", d, err)
		}
		if !registry.Matches(d, b) || registry.Matches(d, []byte("hellO")) {
			t.Fatal("Matches does not check sha512")
		}
	})
}

// A registry that omits Docker-Content-Digest on HEAD sends the client to
// GET the manifest: that GET must not wait for the slot the HEAD held.
func TestNoDigestOnHeadDoesNotDeadlockTheRequestSlots(t *testing.T) {
	t.Parallel()
	up := regtest.StartInProcess(t)
	digest, _ := image(t, up.Host, "ns/app")
	px := faultproxy.New(t, "http://"+up.Host, faultproxy.Fault{Method: "HEAD", PathRegex: manifestPath, Kind: faultproxy.NoDigestOnHead, Times: -1})
	for _, tc := range []struct{ perRegistry, concurrent int }{{1, 1}, {1, 4}, {6, 8}, {2, 32}} {
		ctx := guard(t)
		c := registry.New(registry.Options{Insecure: anyHost, MaxPerRegistry: tc.perRegistry})
		var wg sync.WaitGroup
		errs := make(chan error, tc.concurrent)
		for range tc.concurrent {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := c.HeadManifest(ctx, px.Host, "ns/app", "v1")
				if err == nil && d.Digest != digest {
					err = errors.New("digest " + d.Digest + ", want " + digest)
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("%d HEADs with %d slots: %v", tc.concurrent, tc.perRegistry, err)
			}
		}
	}
}

// proxyTo is a plain reverse proxy to a registry (a handler to wrap); an
// absolute Location naming the upstream is made relative to the proxy.
func proxyTo(t *testing.T, upstream string) http.Handler {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		ModifyResponse: func(resp *http.Response) error {
			if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, upstream) {
				resp.Header.Set("Location", strings.TrimPrefix(loc, upstream))
			}
			return nil
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A TLS registry that redirects to plain HTTP on its own host would have
// the client send its credentials in clear: refused.
func TestRedirectToPlainHTTPOnTheRegistryItselfIsRefused(t *testing.T) {
	t.Parallel()
	ctx := guard(t)
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		http.Redirect(w, r, "http://"+srv.Listener.Addr().String()+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	host := srv.Listener.Addr().String()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := registry.New(registry.Options{TLSConfig: func(string) (*tls.Config, error) { return &tls.Config{RootCAs: pool}, nil }})
	_, err := c.HeadBlob(ctx, host, "ns/app", "sha256:"+strings.Repeat("a", 64))
	var re *registry.RedirectError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "plain HTTP") || registry.IsRetryable(err) {
		t.Fatalf("err %v: want a final refusal of the plain-HTTP redirect", err)
	}
}

// delayFirst delays the first request matching re by d, then proxies.
func delayFirst(t *testing.T, upstream string, re *regexp.Regexp, d time.Duration) *httptest.Server {
	var once sync.Once
	next := proxyTo(t, upstream)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if re.MatchString(r.URL.Path) {
			once.Do(func() { time.Sleep(d) })
		}
		next.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// Bearer tokens of distribution v3 from a token issuer whose tokens live a
// second or two: a long copy renews them before they lapse, and a token the
// registry refuses in the middle of a blob upload is replaced and the
// upload redone.
func TestExpiringTokensAreRenewed(t *testing.T) {
	t.Parallel()
	up := regtest.StartInProcess(t)
	_, layer := image(t, up.Host, "ns/app")
	for _, tc := range []struct {
		name string
		ttl  time.Duration // what the issuer says a token lives
		// the registry refuses a token this long after it was issued
		// (JWT expiry has whole seconds: up to a second later)
		refusedAfter time.Duration
		sourceDelay  time.Duration // between opening the upload and sending it
	}{
		// renewed when three quarters of its life are over
		{"renewed before it lapses", 2 * time.Second, 2 * time.Second, 2500 * time.Millisecond},
		// the registry drops it sooner than the issuer said
		{"refused mid-upload, then renewed", 4 * time.Second, time.Second, 2500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := guard(t)
			ti := regtest.StartTokenIssuer(t, regtest.TokenOptions{TTL: tc.ttl, Leeway: regtest.DistributionLeeway + tc.ttl - tc.refusedAfter})
			dst := regtest.StartDistribution(t, regtest.Options{Version: regtest.DistributionV3Version, TLS: true, Token: ti})
			src := delayFirst(t, "http://"+up.Host, blobPath, tc.sourceDelay)
			srcHost := strings.TrimPrefix(src.URL, "http://")
			var logs bytes.Buffer
			var mu sync.Mutex
			c := registry.New(registry.Options{
				Insecure: registry.InsecureHosts(srcHost), Keychain: dst.Keychain(), TLSConfig: caOf(t, dst),
				RetryBase: time.Millisecond,
				Logger:    slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) }), &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			if _, err := c.HeadManifest(ctx, dst.Host, "ns/app", "v1"); !errors.Is(err, registry.ErrNotFound) {
				t.Fatalf("HEAD on the empty target: %v, want not found", err)
			}
			before := ti.Issued()
			n, err := c.CopyBlob(ctx, srcHost, "ns/app", dst.Host, "ns/app", layer)
			if err != nil || n != layer.Size {
				t.Fatalf("copy across a token expiry: %d %v", n, err)
			}
			if ti.Issued() <= before {
				t.Fatal("no new token was issued: the test proves nothing")
			}
			if ok, err := c.HeadBlob(ctx, dst.Host, "ns/app", layer.Digest); !ok || err != nil {
				t.Fatalf("the blob is not on the target: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.refusedAfter < tc.ttl && !strings.Contains(logs.String(), "TOKEN_EXPIRED") {
				t.Errorf("the upload was not refused mid-stream: the test did not reach the case it is about\n%s", logs.String())
			}
		})
	}
}

// caOf trusts a TLS test registry's CA.
func caOf(t *testing.T, r *regtest.Registry) func(string) (*tls.Config, error) {
	t.Helper()
	pem, err := os.ReadFile(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return func(string) (*tls.Config, error) { return &tls.Config{RootCAs: pool}, nil }
}

// Some registries let /v2/ in anonymously and challenge only the
// repositories: the client learns the challenge on the first 401 and sends
// its credentials from then on.
func TestAChallengeAfterAnAnonymousPingIsAnswered(t *testing.T) {
	t.Parallel()
	ctx := guard(t)
	up := regtest.StartInProcess(t)
	digest, _ := image(t, up.Host, "ns/app")
	guarded := basicAuth(proxyTo(t, "http://"+up.Host), "migrator", "s3cret-pass")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			w.WriteHeader(http.StatusOK)
			return
		}
		guarded.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	c := registry.New(registry.Options{Insecure: anyHost, Keychain: withCreds(host).Keychain()})
	for range 2 {
		d, err := c.HeadManifest(ctx, host, "ns/app", "v1")
		if err != nil || d.Digest != digest {
			t.Fatalf("HEAD behind a late challenge: %q %v", d.Digest, err)
		}
	}
	anon := registry.New(registry.Options{Insecure: anyHost})
	if _, err := anon.HeadManifest(ctx, host, "ns/app", "v1"); !errors.Is(err, registry.ErrDenied) {
		t.Fatalf("without credentials: %v, want ErrDenied", err)
	}
}

// sha512 is a digest algorithm the OCI spec registers: a blob addressed by
// it is copied and checked like a sha256 one (distribution v3 stores it).
func TestSHA512BlobsAreCopiedAndChecked(t *testing.T) {
	t.Parallel()
	ctx := guard(t)
	src := regtest.StartDistribution(t, regtest.Options{Version: regtest.DistributionV3Version})
	dst := regtest.StartDistribution(t, regtest.Options{Version: regtest.DistributionV3Version})
	content := bytes.Repeat([]byte("sha512 "), 10000)
	sum := sha512.Sum512(content)
	digest := fmt.Sprintf("sha512:%x", sum)
	// Upload it by hand, monolithically, as a client of sha512 would.
	resp, err := http.Post(src.URL()+"/v2/ns/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	q := loc.Query()
	q.Set("digest", digest)
	loc.RawQuery = q.Encode()
	req, _ := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(content))
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("the registry did not take a sha512 blob: %v %v", err, resp.Status)
	}
	resp.Body.Close()

	c := registry.New(registry.Options{Insecure: anyHost, RetryBase: time.Millisecond})
	d := registry.Descriptor{Digest: digest, Size: int64(len(content))}
	if n, err := c.CopyBlob(ctx, src.Host, "ns/app", dst.Host, "ns/app", d); err != nil || n != d.Size {
		t.Fatalf("copy of a sha512 blob: %d %v", n, err)
	}
	if ok, err := c.HeadBlob(ctx, dst.Host, "ns/app", digest); !ok || err != nil {
		t.Fatalf("the sha512 blob is not on the target: %v", err)
	}
	// The same blob through a proxy that flips a byte: refused, not stored.
	px := faultproxy.New(t, "http://"+src.Host, faultproxy.Fault{Method: "GET", PathRegex: regexp.MustCompile(`/blobs/sha512:`), Kind: faultproxy.AlteredBody, Times: -1})
	if _, err := c.CopyBlob(ctx, px.Host, "ns/app", dst.Host, "ns/other", d); !errors.Is(err, registry.ErrInvalidDigest) {
		t.Fatalf("altered sha512 blob: %v, want ErrInvalidDigest", err)
	}
	if ok, _ := c.HeadBlob(ctx, dst.Host, "ns/other", digest); ok {
		t.Fatal("an altered sha512 blob was stored")
	}
}

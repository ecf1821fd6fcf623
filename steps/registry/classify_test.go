package registry_test

// Which failures a rerun may fix (retryable: exit 75) and which it will
// not (final: exit 1), the same on the source and the target and in every
// operation (the copy's reads and writes, the verification's reads, the
// preflight's login): each condition is produced by a real registry
// process, or by the fault proxy in front of one.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// closedPort is a loopback address nothing listens on: connection refused.
func closedPort(t *testing.T) string {
	t.Helper()
	port, err := regtest.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// blobFile is where a filesystem distribution registry keeps a blob's bytes.
func blobFile(r *regtest.Registry, digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(r.DataDir, "docker/registry/v2/blobs/sha256", hex[:2], hex, "data")
}

func TestFailuresAreClassifiedTheSameInEveryOperation(t *testing.T) {
	t.Parallel()
	up := regtest.StartDistribution(t, regtest.Options{})
	digest, layer := image(t, up.Host, "ns/app")
	secured := regtest.StartDistribution(t, regtest.Options{TLS: true, Auth: true})

	type op struct {
		name string
		run  func(ctx context.Context, c *registry.Client, host string) error
	}
	headManifest := op{"HEAD manifest", func(ctx context.Context, c *registry.Client, host string) error {
		_, err := c.HeadManifest(ctx, host, "ns/app", "v1")
		return err
	}}
	getManifest := op{"GET manifest", func(ctx context.Context, c *registry.Client, host string) error {
		_, _, err := c.GetManifest(ctx, host, "ns/app", digest)
		return err
	}}
	headBlob := op{"HEAD blob", func(ctx context.Context, c *registry.Client, host string) error {
		ok, err := c.HeadBlob(ctx, host, "ns/app", layer.Digest)
		if err == nil && !ok {
			return errors.New("blob reported missing")
		}
		return err
	}}
	readBlob := op{"read blob", func(ctx context.Context, c *registry.Client, host string) error {
		_, err := c.CheckBlob(ctx, host, "ns/app", layer)
		return err
	}}
	upload := op{"upload blob (target)", func(ctx context.Context, c *registry.Client, host string) error {
		_, err := c.CopyBlob(ctx, up.Host, "ns/app", host, "ns/copy", layer)
		return err
	}}
	login := op{"login", func(ctx context.Context, c *registry.Client, host string) error { return c.Login(ctx, host, "ns") }}
	every := []op{headManifest, getManifest, headBlob, readBlob, upload, login}
	reads := []op{getManifest, readBlob}

	for _, tc := range []struct {
		name      string
		host      func(t *testing.T) string
		opts      func(host string) registry.Options
		ops       []op
		retryable bool
		want      string // in the error
	}{
		{
			name: "connection refused", host: closedPort, ops: every, retryable: true, want: "connection refused",
		},
		{
			name: "connection reset", ops: every, retryable: true,
			host: func(t *testing.T) string {
				return faultproxy.New(t, "http://"+up.Host, faultproxy.Fault{Kind: faultproxy.Reset, Times: -1}).Host
			},
		},
		{
			// The client tries a registry marked insecure over HTTPS first:
			// that attempt's TLS error does not make the 503 final.
			name: "503 for good", ops: every, retryable: true, want: "503",
			host: func(t *testing.T) string {
				return faultproxy.New(t, "http://"+up.Host, faultproxy.Fault{Kind: faultproxy.Status503, Times: -1}).Host
			},
		},
		{
			name: "429 for good", ops: every, retryable: true, want: "429",
			host: func(t *testing.T) string {
				return faultproxy.New(t, "http://"+up.Host, faultproxy.Fault{Kind: faultproxy.Status429, Times: -1}).Host
			},
		},
		{
			name: "no answer within the idle timeout", ops: every, retryable: true, want: "stalled",
			host: func(t *testing.T) string {
				return faultproxy.New(t, "http://"+up.Host, faultproxy.Fault{Kind: faultproxy.StallHeaders, Times: -1}).Host
			},
		},
		{
			name: "a 503 whose error message mentions TLS", ops: reads, retryable: true, want: "503",
			host: func(t *testing.T) string {
				next := proxyTo(t, "http://"+up.Host)
				s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/v2/" {
						next.ServeHTTP(w, r)
						return
					}
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusServiceUnavailable)
					fmt.Fprint(w, `{"errors":[{"code":"UNAVAILABLE","message":"storage backend: remote error: tls: handshake failure"}]}`)
				}))
				t.Cleanup(s.Close)
				return strings.TrimPrefix(s.URL, "http://")
			},
		},
		{
			name: "manifest content with another digest", ops: []op{getManifest}, retryable: false, want: "digest mismatch",
			host: func(t *testing.T) string {
				return faultproxy.New(t, "http://"+up.Host, faultproxy.Fault{Method: "GET", PathRegex: manifestPath, Kind: faultproxy.AlteredBody, Times: -1}).Host
			},
		},
		{
			name: "blob content with another digest", ops: []op{readBlob}, retryable: false, want: "digest mismatch",
			host: func(t *testing.T) string {
				return faultproxy.New(t, "http://"+up.Host, faultproxy.Fault{Method: "GET", PathRegex: blobPath, Kind: faultproxy.AlteredBody, Times: -1}).Host
			},
		},
		{
			name: "blob body cut short on every attempt", ops: []op{readBlob}, retryable: false, want: "blob served incomplete",
			host: func(t *testing.T) string {
				return faultproxy.New(t, "http://"+up.Host, faultproxy.Fault{Method: "GET", PathRegex: blobPath, Kind: faultproxy.TruncateBody, Times: -1}).Host
			},
		},
		{
			name: "not found", retryable: false, want: "404",
			ops:  []op{headManifest, getManifest},
			host: func(t *testing.T) string { return regtest.StartDistribution(t, regtest.Options{}).Host },
		},
		{
			name: "an untrusted certificate", ops: every, retryable: false, want: "certificate",
			host: func(t *testing.T) string { return secured.Host },
			opts: func(string) registry.Options { return registry.Options{} },
		},
		{
			name: "TLS to a plain-HTTP registry not marked insecure", ops: every, retryable: false, want: "speaks plain HTTP",
			host: func(t *testing.T) string { return up.Host },
			opts: func(string) registry.Options { return registry.Options{} },
		},
		{
			name: "wrong password", ops: every, retryable: false, want: "401",
			host: func(t *testing.T) string { return secured.Host },
			opts: func(host string) registry.Options {
				wrong := &regtest.Registry{Host: secured.Host, Username: secured.Username, Password: "not-the-password"}
				// the copy's source (plain HTTP) is marked insecure
				return registry.Options{TLSConfig: caOf(t, secured), Keychain: wrong.Keychain(), Insecure: registry.InsecureHosts(up.Host)}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := guard(t)
			host := tc.host(t)
			o := registry.Options{Insecure: anyHost}
			if tc.opts != nil {
				o = tc.opts(host)
			}
			o.RetryAttempts, o.RetryBase, o.IdleTimeout = 2, time.Millisecond, 300*time.Millisecond
			for _, op := range tc.ops {
				c := registry.New(o)
				err := op.run(ctx, c, host)
				if err == nil {
					t.Errorf("%s: no error", op.name)
					continue
				}
				if registry.IsRetryable(err) != tc.retryable {
					t.Errorf("%s: retryable %v, want %v: %v", op.name, !tc.retryable, tc.retryable, err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: %v, want it to say %q", op.name, err, tc.want)
				}
			}
		})
	}
}

// CheckBlob reads a blob whole and hashes it: a blob corrupted in place in
// the registry's storage (same size, one byte changed) is a final
// ErrDigestMismatch naming the blob; HEAD still says it is there. What the
// distribution registry does with it, which the verification's advice
// relies on: an upload of the right content is accepted and changes
// nothing, nor does one after the blob was deleted through the API; once
// its data file is gone, an upload stores it again.
func TestCheckBlobReadsAndHashesWhatTheRegistryStores(t *testing.T) {
	t.Parallel()
	ctx := guard(t)
	src := regtest.StartInProcess(t)
	_, layer := image(t, src.Host, "ns/app")
	for _, version := range []string{"", regtest.DistributionV3Version} {
		t.Run("distribution "+version, func(t *testing.T) {
			t.Parallel()
			reg := regtest.StartDistribution(t, regtest.Options{Version: version})
			c := registry.New(registry.Options{Insecure: anyHost})
			reupload := func() {
				t.Helper()
				if _, err := c.CopyBlob(ctx, src.Host, "ns/app", reg.Host, "ns/app", layer); err != nil {
					t.Fatalf("upload: %v", err)
				}
			}
			reupload()
			if n, err := c.CheckBlob(ctx, reg.Host, "ns/app", layer); err != nil || n != layer.Size {
				t.Fatalf("intact blob: %d bytes, %v; want %d and no error", n, err, layer.Size)
			}
			if _, err := c.CheckBlob(ctx, reg.Host, "ns/other", layer); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("a blob the repository does not link: %v, want ErrNotFound", err)
			}

			b, err := os.ReadFile(blobFile(reg, layer.Digest))
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0xff
			if err := os.WriteFile(blobFile(reg, layer.Digest), b, 0o644); err != nil {
				t.Fatal(err)
			}
			if ok, err := c.HeadBlob(ctx, reg.Host, "ns/app", layer.Digest); !ok || err != nil {
				t.Fatalf("HEAD of the corrupt blob: %v %v; the registry should still say it has it", ok, err)
			}
			corrupt := func(when string) {
				t.Helper()
				_, err := c.CheckBlob(ctx, reg.Host, "ns/app", layer)
				if !errors.Is(err, registry.ErrDigestMismatch) || !errors.Is(err, registry.ErrInvalidDigest) || registry.IsRetryable(err) {
					t.Fatalf("%s: %v, want a final ErrDigestMismatch", when, err)
				}
				if !strings.Contains(err.Error(), layer.Digest) || !strings.Contains(err.Error(), "ns/app") {
					t.Errorf("%s: %v does not name the blob and its repository", when, err)
				}
			}
			corrupt("corrupt in place")
			reupload()
			corrupt("uploaded again")
			req, _ := http.NewRequest(http.MethodDelete, "http://"+reg.Host+"/v2/ns/app/blobs/"+layer.Digest, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusAccepted {
				t.Fatalf("DELETE through the API: %v %v", resp, err)
			}
			resp.Body.Close()
			reupload()
			corrupt("deleted through the API and uploaded again")
			if err := os.Remove(blobFile(reg, layer.Digest)); err != nil {
				t.Fatal(err)
			}
			reupload()
			if _, err := c.CheckBlob(ctx, reg.Host, "ns/app", layer); err != nil {
				t.Fatalf("data file deleted and uploaded again: %v", err)
			}

			// Stored shorter than its descriptor says: final as well, not
			// a truncated read to retry.
			b, _ = os.ReadFile(blobFile(reg, layer.Digest))
			if err := os.WriteFile(blobFile(reg, layer.Digest), b[:len(b)-10], 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := c.CheckBlob(ctx, reg.Host, "ns/app", layer); !errors.Is(err, registry.ErrDigestMismatch) || registry.IsRetryable(err) {
				t.Fatalf("short blob: %v, want a final ErrDigestMismatch", err)
			}
		})
	}
}

// Login checks a registry and its credentials once, as docker login does.
func TestLoginReachesAndAuthenticates(t *testing.T) {
	t.Parallel()
	ctx := guard(t)
	htpasswd := regtest.StartDistribution(t, regtest.Options{TLS: true, Auth: true})
	issuer := regtest.StartTokenIssuer(t, regtest.TokenOptions{})
	token := regtest.StartDistribution(t, regtest.Options{TLS: true, Version: regtest.DistributionV3Version, Token: issuer})
	open := regtest.StartDistribution(t, regtest.Options{})
	wrong := func(r *regtest.Registry) *regtest.Registry {
		return &regtest.Registry{Host: r.Host, Username: r.Username, Password: "not-the-password"}
	}
	anonymous := func(r *regtest.Registry) *regtest.Registry { return &regtest.Registry{Host: r.Host} }
	for _, tc := range []struct {
		name      string
		reg       *regtest.Registry
		creds     *regtest.Registry
		denied    bool
		anonymous bool
	}{
		{"an open registry", open, anonymous(open), false, false},
		{"htpasswd, right credentials", htpasswd, htpasswd, false, false},
		{"htpasswd, wrong password", htpasswd, wrong(htpasswd), true, false},
		{"htpasswd, no credentials", htpasswd, anonymous(htpasswd), true, true},
		{"token server, right credentials", token, token, false, false},
		{"token server, wrong password", token, wrong(token), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := registry.Options{Keychain: tc.creds.Keychain(), RetryAttempts: 2, RetryBase: time.Millisecond}
			if tc.reg.CAFile != "" {
				o.TLSConfig = caOf(t, tc.reg)
			} else {
				o.Insecure = anyHost
			}
			err := registry.New(o).Login(ctx, tc.reg.Host, "ns")
			if !tc.denied {
				if err != nil {
					t.Fatalf("login: %v", err)
				}
				return
			}
			var le *registry.LoginError
			if !errors.As(err, &le) || !le.Denied || le.Anonymous != tc.anonymous || registry.IsRetryable(err) {
				t.Fatalf("login: %#v (%v), want a final LoginError, denied, anonymous %v", le, err, tc.anonymous)
			}
			if !strings.Contains(err.Error(), tc.reg.Host) || (!tc.anonymous && !strings.Contains(err.Error(), tc.creds.Username)) {
				t.Errorf("%v: does not name the registry and the account", err)
			}
			if tc.creds.Password != "" && strings.Contains(err.Error(), tc.creds.Password) {
				t.Errorf("the password is in the error: %v", err)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		host := closedPort(t)
		err := registry.New(registry.Options{RetryAttempts: 2, RetryBase: time.Millisecond}).Login(ctx, host, "")
		var le *registry.LoginError
		if !errors.As(err, &le) || le.Denied || !registry.IsRetryable(err) || !strings.Contains(err.Error(), "cannot be reached") {
			t.Fatalf("login: %v, want a retryable LoginError saying the registry cannot be reached", err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		err := registry.New(registry.Options{RetryAttempts: 2}).Login(ctx, htpasswd.Host, "")
		if registry.IsRetryable(err) || !strings.Contains(err.Error(), "failed TLS verification") || !strings.Contains(err.Error(), "--certs-dir") {
			t.Fatalf("login: %v, want a final TLS failure that says how to trust the registry", err)
		}
	})
}

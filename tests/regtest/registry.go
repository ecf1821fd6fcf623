// Package regtest starts real container registries for tests and demos and
// seeds them with a corpus of images.
//
// These registries are available; each is described by a Registry (Host,
// Scheme, CAFile, CertsDir, Username, Password, RemoteOptions...), so a
// test builds its client the same way for all of them:
//
//   - StartDistribution runs the CNCF distribution registry as a child
//     process on a free loopback port: Debian's docker-registry 2.8
//     (/usr/bin/docker-registry) by default, or distribution v3.0.0 with
//     Options.Version = DistributionV3Version (or any Options.Binary).
//     Options add TLS, htpasswd authentication (Auth), token
//     authentication (Token), read-only mode, a filesystem storage root
//     that two registries may share (DataDir), or S3 storage (S3).
//   - DistributionV3Binary builds distribution v3.0.0 from the Go module
//     proxy, once, into <CacheDir>/distribution-v3.0.0/bin/registry
//     (`make deps` runs cmd/build-registries to do it up front).
//   - StartTokenIssuer serves a token server for the Docker registry token
//     flow (GET with Basic credentials, the OAuth2 POST form with password
//     and refresh_token grants) that signs ES256 JWTs both 2.8 and v3
//     accept, with a TTL as short as a second that the registry really
//     enforces (TokenOptions.Leeway); Issued counts the tokens handed out.
//     Pass it as Options.Token; registry and token server then share one
//     CA and one set of credentials.
//   - Options.S3 stores blobs in gofakes3 (tests/cluster/fakes3, built into
//     the cache by FakeS3Binary; StartFakeS3 alone) reached as S3Host, a
//     different host from the registry's, with redirects on: blob GETs and
//     HEADs answer 307 to presigned URLs there. Registry.S3.Requests lists
//     what fakes3 received, LeakedCredentials the requests that carried
//     Basic or Bearer credentials a client should not have sent there.
//   - StartInProcess serves go-containerregistry's in-memory registry
//     (pkg/registry) from an httptest server.
//   - StartOlareg serves olareg, an independent OCI 1.1 registry with the
//     referrers API, in memory from an httptest server.
//
// Distribution 2.8 and v3.0.0 take the same configuration file; neither
// has the referrers API. go-containerregistry (v0.22.1, as go.mod
// requires) refuses, as SSRF protection, token realms and cross-host
// redirects on loopback or private IP literals, which is why the token
// server and fakes3 are named "localhost" while registries are 127.0.0.1.
//
// StartDistributionProcess is the test-independent core of
// StartDistribution, usable by commands (e.g. the demo); NewTokenIssuer and
// StartFakeS3Process likewise. Seed pushes a deterministic-layout corpus
// (shared base layers, Docker and OCI media types, multi-arch and nested
// indexes, a cosign-style signature, a Helm chart, an OCI 1.1 referrer) to
// any registry.
package regtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Username is the htpasswd user of registries started with Auth.
const Username = "regmigrate"

// Registry describes a running registry.
type Registry struct {
	Host   string // host:port as a reference uses it, e.g. 127.0.0.1:41234
	Scheme string // http or https
	// CAFile is the PEM of the CA that signed the server certificate (TLS
	// registries) and, for token authentication, the token server's; else "".
	CAFile string
	// CertsDir is a docker certs.d-style directory, <CertsDir>/<Host>/ca.crt
	// (TLS registries; also for the token server's host), else "".
	CertsDir string

	// Username and Password are the htpasswd credentials (Auth registries),
	// or those the token issuer accepts (token authentication), else "".
	Username, Password string

	DataDir string // the filesystem storage root (distribution registries), else ""
	LogFile string // the registry's stdout and stderr (distribution registries), else ""

	// S3 is the fakes3 server a distribution registry stores blobs in
	// (Options.S3), else nil.
	S3 *FakeS3

	once sync.Once
	rt   http.RoundTripper
}

// URL returns the registry's base URL, e.g. https://127.0.0.1:41234.
func (r *Registry) URL() string { return r.Scheme + "://" + r.Host }

// Keychain returns a keychain that answers this registry's credentials for
// this registry when it has any, and anonymous otherwise.
func (r *Registry) Keychain() authn.Keychain { return keychain{r} }

type keychain struct{ r *Registry }

func (k keychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if k.r.Username == "" || res.RegistryStr() != k.r.Host {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: k.r.Username, Password: k.r.Password}), nil
}

// Transport returns an HTTP transport for the registry: a clone of
// http.DefaultTransport that, for TLS registries, trusts only the
// registry's CA. The same transport is returned on every call, so
// connections are pooled.
func (r *Registry) Transport() http.RoundTripper {
	r.once.Do(func() {
		t := http.DefaultTransport.(*http.Transport).Clone()
		if r.CAFile != "" {
			pool := x509.NewCertPool()
			if pem, err := os.ReadFile(r.CAFile); err == nil {
				pool.AppendCertsFromPEM(pem)
			}
			// An unreadable CA leaves the pool empty: TLS then fails with a
			// certificate error that names the problem.
			t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		r.rt = t
	})
	return r.rt
}

// RemoteOptions returns the go-containerregistry options to talk to this
// registry: its keychain and its transport.
func (r *Registry) RemoteOptions() []remote.Option {
	return []remote.Option{remote.WithAuthFromKeychain(r.Keychain()), remote.WithTransport(r.Transport())}
}

// Options configures StartDistribution.
type Options struct {
	TLS  bool // serve HTTPS with a certificate from a fresh CA (Registry.CAFile)
	Auth bool // htpasswd authentication, user Username and a random password

	// DataDir is the filesystem storage root; give two registries the same
	// one to share storage. Default: a fresh t.TempDir().
	DataDir string

	ReadOnly bool // storage.maintenance.readonly.enabled: pushes are refused

	Host string // IP address to listen on (and in the TLS certificate); default 127.0.0.1

	// Version is "" for Debian's docker-registry (2.8) or
	// DistributionV3Version for distribution v3.0.0, built once from the
	// Go module proxy (DistributionV3Binary). Binary, if set, wins.
	Version string
	Binary  string

	// Token authenticates with this issuer's tokens instead of htpasswd
	// (StartTokenIssuer); with TLS, the registry's certificate comes from
	// the issuer's CA. Registry.Username and Password are the issuer's.
	Token *TokenIssuer

	// S3 stores blobs in a fresh gofakes3 bucket on S3Host (another host
	// name for loopback) instead of DataDir, with redirects to presigned
	// URLs; S3Server uses an existing one instead (two registries then
	// share storage). Registry.S3 describes it.
	S3       bool
	S3Server *FakeS3

	// BlobDescriptorCache turns on the registry's in-memory blob
	// descriptor cache (ProcOptions.BlobDescriptorCache).
	BlobDescriptorCache bool
}

// StartDistribution starts the CNCF distribution registry
// (/usr/bin/docker-registry, or v3 per Options.Version) on a free loopback
// port and waits until /v2/ answers. The registry (and its fakes3, with
// Options.S3) is stopped in t.Cleanup (SIGTERM, then SIGKILL after a grace
// period); its log is kept in a t.TempDir() and printed with t.Logf when
// the test failed. A missing docker-registry or htpasswd binary, or a v3
// that cannot be built, fails the test with instructions: these tests are
// never skipped.
func StartDistribution(t testing.TB, o Options) *Registry {
	t.Helper()
	dir := t.TempDir()
	s3 := o.S3Server
	if s3 == nil && o.S3 {
		s3 = StartFakeS3(t, "")
	}
	if o.DataDir == "" && s3 == nil {
		o.DataDir = t.TempDir()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, cmd, err := StartDistributionProcess(ctx, ProcOptions{
		Dir: dir, TLS: o.TLS, Auth: o.Auth, DataDir: o.DataDir, ReadOnly: o.ReadOnly, Host: o.Host,
		Version: o.Version, Binary: o.Binary, Token: o.Token, S3: s3, BlobDescriptorCache: o.BlobDescriptorCache,
	})
	name := "docker-registry"
	if o.Binary != "" || o.Version != "" {
		name = "registry " + o.Version + o.Binary
	}
	if err != nil {
		cancel()
		if errors.Is(err, ErrMissingTool) {
			t.Fatalf("regtest: %v", err)
		}
		t.Fatalf("regtest: start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait() // "signal: terminated" is the normal outcome
		if t.Failed() {
			t.Logf("%s %s log (%s):\n%s", name, r.Host, r.LogFile, logTail(r.LogFile, 64<<10))
		}
	})
	return r
}

// StartInProcess serves go-containerregistry's in-memory registry
// (pkg/registry) over plain HTTP on a loopback port until the test ends.
// Request logging is discarded unless opts sets registry.Logger; pass
// registry.WithReferrersSupport(true) for the OCI 1.1 referrers API.
func StartInProcess(t testing.TB, opts ...registry.Option) *Registry {
	t.Helper()
	opts = append([]registry.Option{registry.Logger(log.New(io.Discard, "", 0))}, opts...)
	s := httptest.NewServer(registry.New(opts...))
	t.Cleanup(s.Close)
	return &Registry{Host: strings.TrimPrefix(s.URL, "http://"), Scheme: "http"}
}

// logTail returns at most the last max bytes of a file, or a note why it
// cannot.
func logTail(path string, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > max {
		if _, err := f.Seek(-max, io.SeekEnd); err == nil {
			b, _ := io.ReadAll(f)
			return "...\n" + string(b)
		}
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

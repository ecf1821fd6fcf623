// Package regtest starts real container registries for tests and demos and
// seeds them with a corpus of images.
//
// Two kinds of registry are available:
//
//   - StartDistribution runs the CNCF distribution registry
//     (/usr/bin/docker-registry from Debian's docker-registry package) as a
//     child process on a free loopback port, optionally with TLS and
//     htpasswd authentication, on a filesystem storage root that two
//     registries may share.
//   - StartInProcess serves go-containerregistry's in-memory registry
//     (pkg/registry) from an httptest server.
//
// StartDistributionProcess is the test-independent core of
// StartDistribution, usable by commands (e.g. the demo). Seed pushes a
// deterministic-layout corpus (shared base layers, Docker and OCI media types,
// multi-arch and nested indexes, a cosign-style signature, a Helm chart, an
// OCI 1.1 referrer) to any registry.
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
	Host     string // host:port as a reference uses it, e.g. 127.0.0.1:41234
	Scheme   string // http or https
	CAFile   string // PEM of the CA that signed the server certificate (TLS registries), else ""
	CertsDir string // a docker certs.d-style directory: <CertsDir>/<Host>/ca.crt (TLS registries), else ""

	// Username and Password are the htpasswd credentials (Auth registries),
	// else "".
	Username, Password string

	DataDir string // the filesystem storage root (distribution registries), else ""
	LogFile string // the registry's stdout and stderr (distribution registries), else ""

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
}

// StartDistribution starts the CNCF distribution registry
// (/usr/bin/docker-registry) on a free loopback port and waits until /v2/
// answers. The registry is stopped in t.Cleanup (SIGTERM, then SIGKILL after
// a grace period); its log is kept in a t.TempDir() and printed with t.Logf
// when the test failed. A missing docker-registry or htpasswd binary fails
// the test with installation instructions: these tests are never skipped.
func StartDistribution(t testing.TB, o Options) *Registry {
	t.Helper()
	dir := t.TempDir()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, cmd, err := StartDistributionProcess(ctx, ProcOptions{
		Dir: dir, TLS: o.TLS, Auth: o.Auth, DataDir: o.DataDir, ReadOnly: o.ReadOnly, Host: o.Host,
	})
	if err != nil {
		cancel()
		if errors.Is(err, ErrMissingTool) {
			t.Fatalf("regtest: %v", err)
		}
		t.Fatalf("regtest: start docker-registry: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait() // "signal: terminated" is the normal outcome
		if t.Failed() {
			t.Logf("docker-registry %s log (%s):\n%s", r.Host, r.LogFile, logTail(r.LogFile, 64<<10))
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

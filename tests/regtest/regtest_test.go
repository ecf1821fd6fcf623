package regtest

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// pushPull pushes a random image to r and pulls it back whole.
func pushPull(t *testing.T, r *Registry, repo string) {
	t.Helper()
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.Host + "/" + repo + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, r.RemoteOptions()...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	got, err := remote.Image(ref, r.RemoteOptions()...)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	if err := readAll(got); err != nil {
		t.Errorf("pulled %s: %v", ref, err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Errorf("pulled %s: digest %s, pushed %s", ref, d, want)
	}
}

// readAll reads an image's config and every layer; go-containerregistry
// checks the digests of what it reads from a registry.
func readAll(img v1.Image) error {
	if _, err := img.RawConfigFile(); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// get does GET <registry>/v2/ with the registry's transport and optional
// basic auth, and returns the status.
func get(t *testing.T, r *Registry, user, password string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.URL()+"/v2/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := (&http.Client{Transport: r.Transport()}).Do(req)
	if err != nil {
		t.Fatalf("GET %s/v2/: %v", r.URL(), err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestDistributionPlain(t *testing.T) {
	t.Parallel()
	r := StartDistribution(t, Options{})
	if r.Scheme != "http" || r.CAFile != "" || r.Username != "" || !strings.HasPrefix(r.Host, "127.0.0.1:") {
		t.Errorf("unexpected registry %+v", r)
	}
	if st, err := os.Stat(r.DataDir); err != nil || !st.IsDir() {
		t.Errorf("DataDir %q: %v", r.DataDir, err)
	}
	if code := get(t, r, "", ""); code != http.StatusOK {
		t.Errorf("GET /v2/: %d, want 200", code)
	}
	pushPull(t, r, "plain/app")
}

func TestDistributionTLSAuth(t *testing.T) {
	t.Parallel()
	r := StartDistribution(t, Options{TLS: true, Auth: true})
	if r.Scheme != "https" || r.Username != Username || len(r.Password) < 16 {
		t.Errorf("unexpected registry %+v", r)
	}
	ca, err := os.ReadFile(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if certsd, err := os.ReadFile(filepath.Join(r.CertsDir, r.Host, "ca.crt")); err != nil || string(certsd) != string(ca) {
		t.Errorf("certs.d CA: %v (equal to CAFile: %v)", err, string(certsd) == string(ca))
	}

	if code := get(t, r, "", ""); code != http.StatusUnauthorized {
		t.Errorf("anonymous GET /v2/: %d, want 401", code)
	}
	if code := get(t, r, r.Username, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("GET /v2/ with a wrong password: %d, want 401", code)
	}
	if code := get(t, r, r.Username, r.Password); code != http.StatusOK {
		t.Errorf("GET /v2/ with the credentials: %d, want 200", code)
	}

	// Without the CA the certificate is not trusted.
	untrusted := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}
	if resp, err := untrusted.Get(r.URL() + "/v2/"); err == nil {
		resp.Body.Close()
		t.Error("a client without the CA trusted the registry")
	}

	// Anonymous go-containerregistry access is refused.
	ref, _ := name.ParseReference(r.Host + "/none/such:latest")
	_, err = remote.Head(ref, remote.WithTransport(r.Transport()))
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous HEAD: %v, want 401", err)
	}

	pushPull(t, r, "secure/app")
}

// TestDistributionOnAnotherAddress: a registry for pods listens on the
// node's address, and its certificate names that address.
func TestDistributionOnAnotherAddress(t *testing.T) {
	t.Parallel()
	r := StartDistribution(t, Options{TLS: true, Host: "127.0.0.2"})
	if !strings.HasPrefix(r.Host, "127.0.0.2:") {
		t.Fatalf("Host %s, want 127.0.0.2:PORT", r.Host)
	}
	pushPull(t, r, "elsewhere/app") // verifies the certificate for 127.0.0.2
	if _, _, err := StartDistributionProcess(context.Background(), ProcOptions{Dir: t.TempDir(), Host: "not-an-ip"}); err == nil {
		t.Error("Host not-an-ip accepted")
	}
}

func TestKeychainOnlyAnswersItsRegistry(t *testing.T) {
	r := &Registry{Host: "127.0.0.1:5000", Username: "u", Password: "p"}
	for host, want := range map[string]string{"127.0.0.1:5000": "u", "127.0.0.1:5001": "", "index.docker.io": ""} {
		reg, err := name.NewRegistry(host)
		if err != nil {
			t.Fatal(err)
		}
		a, err := r.Keychain().Resolve(reg)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Username != want {
			t.Errorf("%s: user %q, want %q", host, cfg.Username, want)
		}
	}
	anon := &Registry{Host: "127.0.0.1:5000"}
	if a, _ := anon.Keychain().Resolve(name.MustParseReference("127.0.0.1:5000/x").Context()); a != authn.Anonymous {
		t.Errorf("registry without credentials: %v, want anonymous", a)
	}
}

func TestDistributionSharedStorageReadOnly(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	rw := StartDistribution(t, Options{DataDir: data})
	ro := StartDistribution(t, Options{DataDir: data, ReadOnly: true})
	if rw.DataDir != data || ro.DataDir != data {
		t.Fatalf("DataDir %q and %q, want %q", rw.DataDir, ro.DataDir, data)
	}
	pushPull(t, rw, "shared/app")

	ref, _ := name.ParseReference(ro.Host + "/shared/app:latest")
	img, err := remote.Image(ref, ro.RemoteOptions()...)
	if err != nil {
		t.Fatalf("read-only registry does not serve the shared storage: %v", err)
	}
	if err := readAll(img); err != nil {
		t.Error(err)
	}

	other, _ := random.Image(1024, 1)
	ref2, _ := name.ParseReference(ro.Host + "/shared/other:latest")
	if err := remote.Write(ref2, other, ro.RemoteOptions()...); err == nil {
		t.Error("push to the read-only registry succeeded")
	}
}

func TestStartDistributionProcessStopsWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, cmd, err := StartDistributionProcess(ctx, ProcOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.LogFile); err != nil {
		t.Errorf("log file: %v", err)
	}
	if code := get(t, r, "", ""); code != http.StatusOK {
		t.Errorf("GET /v2/: %d", code)
	}

	cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(StopGrace + 5*time.Second):
		t.Fatal("the registry did not stop after its context ended")
	}
	client := &http.Client{Timeout: 2 * time.Second}
	if resp, err := client.Get(r.URL() + "/v2/"); err == nil {
		resp.Body.Close()
		t.Error("the registry still answers after it was stopped")
	}
}

func TestStartDistributionProcessMissingBinary(t *testing.T) {
	_, _, err := StartDistributionProcess(context.Background(), ProcOptions{Dir: t.TempDir(), Binary: "/nonexistent/docker-registry"})
	if !errors.Is(err, ErrMissingTool) || !strings.Contains(err.Error(), "make test-deps") {
		t.Errorf("error %v: want ErrMissingTool with installation instructions", err)
	}
}

func TestStartDistributionProcessRefusesAPortInUse(t *testing.T) {
	t.Parallel()
	blocker := StartInProcess(t)
	_, port, _ := strings.Cut(blocker.Host, ":")
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	_, cmd, err := StartDistributionProcess(context.Background(), ProcOptions{Dir: t.TempDir(), Port: p})
	if err == nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("started on a port in use")
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error %v, want address already in use", err)
	}
}

func TestStartDistributionProcessReportsAnEarlyExit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake-registry")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'configuration error: boom' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err := StartDistributionProcess(context.Background(), ProcOptions{Dir: filepath.Join(dir, "reg"), Binary: fake})
	if err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "configuration error: boom") {
		t.Errorf("error %v: want the exit and the end of the log", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v to notice the registry exited", d)
	}
}

func TestRegistryBinaryIsInstalled(t *testing.T) {
	// The tests of this repository need the real registry: say how to get it.
	if _, err := registryBinary(""); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("htpasswd"); err != nil {
		t.Fatalf("htpasswd: %v; %s", err, InstallHint)
	}
}

package regtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultBinary is where Debian's docker-registry package installs the CNCF
// distribution registry.
const DefaultBinary = "/usr/bin/docker-registry"

// InstallHint tells how to install the programs the registries need.
const InstallHint = "run `make test-deps` (apt-get install docker-registry apache2-utils)"

// ErrMissingTool is wrapped by the error StartDistributionProcess returns
// when docker-registry or htpasswd is not installed.
var ErrMissingTool = errors.New("missing tool")

// StopGrace is how long a distribution registry has to exit after SIGTERM
// before it is killed.
const StopGrace = 5 * time.Second

// ProcOptions configures StartDistributionProcess.
type ProcOptions struct {
	// Dir receives config.yml, the TLS material (tls/, certs.d/), htpasswd
	// and registry.log. Required; created if missing.
	Dir string

	// Host is the IP address to listen on; default 127.0.0.1. The TLS
	// certificate names it (e.g. a node's bridge address, for pods).
	Host     string
	Port     int  // port; 0 picks a free one
	TLS      bool // serve HTTPS with a certificate from a fresh CA
	Auth     bool // htpasswd authentication, user Username, random password
	ReadOnly bool // storage.maintenance.readonly.enabled

	DataDir string // filesystem storage root; default <Dir>/data

	// Binary is the registry program; default DefaultBinary, else
	// docker-registry on $PATH, unless Version says otherwise.
	Binary string

	// Version selects the registry when Binary is empty: "" for Debian's
	// docker-registry (2.8), DistributionV3Version for distribution v3
	// built from the Go module proxy (DistributionV3Binary). Both take the
	// same configuration.
	Version string

	// Token, if set, replaces htpasswd with token authentication by this
	// issuer (auth.token: realm, service, issuer, rootcertbundle); the
	// registry's TLS certificate (TLS) then comes from the issuer's CA and
	// Registry.CAFile, CertsDir, Username and Password cover both. Auth
	// must be false.
	Token *TokenIssuer

	// S3, if set, replaces the filesystem storage (DataDir) with the S3
	// driver on this fakes3 bucket, redirects to presigned URLs enabled
	// (Registry.S3). Two registries given the same FakeS3 share storage.
	S3 *FakeS3

	// BlobDescriptorCache turns on storage.cache.blobdescriptor: inmemory,
	// the cache production configurations (and ../shared/bench) use: the
	// registry then answers some HEADs from memory, not from its storage.
	BlobDescriptorCache bool

	LogLevel     string        // registry log level; default "info"
	StartTimeout time.Duration // how long to wait for /v2/; default 30s
}

// StartDistributionProcess starts the CNCF distribution registry and waits
// until GET /v2/ answers 200 or 401.
//
// The process lives as long as ctx: when ctx is done it gets SIGTERM, and
// SIGKILL StopGrace later; the caller cancels ctx and then calls cmd.Wait to
// stop it. It is also killed if the calling process dies (Pdeathsig), so an
// interrupted test run leaves no registry behind. REGISTRY_* variables of the
// environment, which docker-registry would take as configuration overrides,
// are not passed on.
//
// If ctx ends or the registry fails to start, the process is stopped and the
// error includes the end of its log.
func StartDistributionProcess(ctx context.Context, o ProcOptions) (*Registry, *exec.Cmd, error) {
	if o.Dir == "" {
		return nil, nil, errors.New("regtest: ProcOptions.Dir is required")
	}
	if o.Auth && o.Token != nil {
		return nil, nil, errors.New("regtest: ProcOptions.Auth (htpasswd) and Token exclude each other")
	}
	if o.S3 != nil && o.DataDir != "" {
		return nil, nil, errors.New("regtest: ProcOptions.DataDir and S3 exclude each other")
	}
	var bin string
	var err error
	switch {
	case o.Binary != "" || o.Version == "":
		bin, err = registryBinary(o.Binary)
	case o.Version == DistributionV3Version:
		bin, err = DistributionV3Binary(ctx)
	default:
		err = fmt.Errorf("regtest: ProcOptions.Version %q: want \"\" (Debian's 2.8) or %q", o.Version, DistributionV3Version)
	}
	if err != nil {
		return nil, nil, err
	}
	if o.DataDir == "" && o.S3 == nil {
		o.DataDir = filepath.Join(o.Dir, "data")
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	ip := net.ParseIP(o.Host)
	if ip == nil {
		return nil, nil, fmt.Errorf("regtest: ProcOptions.Host %q is not an IP address", o.Host)
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 30 * time.Second
	}
	for _, d := range []string{o.Dir, o.DataDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, nil, err
		}
	}

	r := &Registry{
		Scheme:  "http",
		DataDir: o.DataDir,
		LogFile: filepath.Join(o.Dir, "registry.log"),
		S3:      o.S3,
	}
	c := conf{token: o.Token}
	if o.Token != nil {
		r.Username, r.Password = o.Token.Username, o.Token.Password
		r.CAFile = o.Token.CAFile // the issuer's CA, if it serves HTTPS
	}
	if o.Auth {
		r.Username, r.Password = Username, randomHex(16)
		c.htpasswd = filepath.Join(o.Dir, "htpasswd")
		if err := writeHtpasswd(c.htpasswd, r.Username, r.Password); err != nil {
			return nil, nil, err
		}
	}
	if o.TLS {
		r.Scheme = "https"
		if o.Token != nil {
			// One CA for the registry and its token issuer.
			r.CAFile, c.cert, c.key, err = o.Token.ca.writeServer(filepath.Join(o.Dir, "tls"), ip)
		} else {
			r.CAFile, c.cert, c.key, err = writeTLS(filepath.Join(o.Dir, "tls"), ip)
		}
		if err != nil {
			return nil, nil, err
		}
	}

	// A free port found by listening may be taken by someone else before
	// the registry binds it: try a few ports.
	attempts := 1
	if o.Port == 0 {
		attempts = 5
	}
	for i := 0; ; i++ {
		port := o.Port
		if port == 0 {
			if port, err = FreePort(o.Host); err != nil {
				return nil, nil, err
			}
		}
		r.Host = net.JoinHostPort(o.Host, strconv.Itoa(port))
		var cmd *exec.Cmd
		if err = portFree(r.Host); err == nil {
			cmd, err = startProcess(ctx, bin, o, r, c)
		}
		if err == nil {
			if r.CAFile != "" {
				r.CertsDir = filepath.Join(o.Dir, "certs.d")
				hosts := []string{r.Host}
				if o.Token != nil && o.Token.CAFile != "" {
					hosts = append(hosts, o.Token.Host)
				}
				for _, h := range hosts {
					if err := copyFile(r.CAFile, filepath.Join(r.CertsDir, h, "ca.crt")); err != nil {
						stopNow(cmd)
						return nil, nil, err
					}
				}
			}
			return r, cmd, nil
		}
		if !errors.Is(err, errAddrInUse) || i+1 >= attempts {
			return nil, nil, err
		}
	}
}

// conf holds the paths the registry configuration refers to.
type conf struct {
	cert, key string // TLS server certificate (with chain) and key
	htpasswd  string
	token     *TokenIssuer
}

var errAddrInUse = errors.New("address already in use")

// startProcess writes the configuration for r.Host, starts the registry and
// waits until it answers; on failure the process is gone when it returns.
func startProcess(ctx context.Context, bin string, o ProcOptions, r *Registry, c conf) (*exec.Cmd, error) {
	cfgPath := filepath.Join(o.Dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(configYAML(o, r, c)), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(r.LogFile)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor

	cmd := exec.CommandContext(ctx, bin, "serve", cfgPath)
	cmd.Dir = o.Dir
	cmd.Env = registryEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = StopGrace
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}

	if err := waitReady(ctx, cmd, r, o.StartTimeout); err != nil {
		stopNow(cmd)
		tail := logTail(r.LogFile, 4<<10)
		if strings.Contains(tail, "address already in use") {
			err = fmt.Errorf("%w: %s", errAddrInUse, r.Host)
		}
		return nil, fmt.Errorf("%s on %s: %w\n--- %s:\n%s", filepath.Base(bin), r.Host, err, r.LogFile, tail)
	}
	return cmd, nil
}

// waitReady polls GET /v2/ until it answers 200 or 401.
func waitReady(ctx context.Context, cmd *exec.Cmd, r *Registry, timeout time.Duration) error {
	client := &http.Client{Transport: r.Transport(), Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL()+"/v2/", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				if exited(cmd.Process.Pid) {
					return errors.New("the registry exited")
				}
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		last = err
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case exited(cmd.Process.Pid):
			return errors.New("the registry exited")
		case time.Now().After(deadline):
			return fmt.Errorf("not ready after %v: %v", timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exited reports whether the (unreaped) child pid has terminated, without
// reaping it: cmd.Wait stays the caller's.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return os.IsNotExist(err)
	}
	// "pid (comm) state ...": comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

// stopNow kills a registry that failed to start and reaps it.
func stopNow(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// configYAML renders the distribution configuration; 2.8 and v3.0.0 both
// accept it.
func configYAML(o ProcOptions, r *Registry, c conf) string {
	var b strings.Builder
	fmt.Fprintf(&b, `version: 0.1
log:
  level: %s
  formatter: text
  accesslog:
    disabled: true
storage:
`, o.LogLevel)
	if s3 := o.S3; s3 != nil {
		// Redirects (storage.redirect.disable: false, the default) send
		// blob GETs and HEADs to presigned URLs on the fakes3 host.
		// Distribution 2.8 forces path-style URLs when regionendpoint is
		// set and ignores forcepathstyle.
		fmt.Fprintf(&b, `  s3:
    region: %s
    regionendpoint: %s
    forcepathstyle: true
    bucket: %s
    accesskey: %s
    secretkey: %s
    secure: false
    v4auth: true
  redirect:
    disable: false
`, s3.Region, s3.Endpoint, s3.Bucket, s3.AccessKey, s3.SecretKey)
	} else {
		fmt.Fprintf(&b, "  filesystem:\n    rootdirectory: %q\n", o.DataDir)
	}
	if o.BlobDescriptorCache {
		b.WriteString("  cache:\n    blobdescriptor: inmemory\n")
	}
	fmt.Fprintf(&b, `  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
    readonly:
      enabled: %t
http:
  addr: %s
  secret: %s
  headers:
    X-Content-Type-Options: [nosniff]
`, o.ReadOnly, r.Host, randomHex(16))
	if c.cert != "" {
		fmt.Fprintf(&b, "  tls:\n    certificate: %q\n    key: %q\n", c.cert, c.key)
	}
	if c.htpasswd != "" {
		fmt.Fprintf(&b, "auth:\n  htpasswd:\n    realm: regtest\n    path: %q\n", c.htpasswd)
	}
	if t := c.token; t != nil {
		fmt.Fprintf(&b, "auth:\n  token:\n    realm: %q\n    service: %q\n    issuer: %q\n    rootcertbundle: %q\n",
			t.Realm, t.Service, t.Issuer, t.RootCertBundle)
	}
	return b.String()
}

// registryEnv is the environment without REGISTRY_* variables, which
// docker-registry reads as configuration overrides, nor AWS_* ones, which
// the S3 driver's AWS SDK reads (AWS_CA_BUNDLE makes 2.8 panic at start).
func registryEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return env
}

// registryBinary resolves the registry program.
func registryBinary(bin string) (string, error) {
	if bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%w: registry binary %s: %v; %s", ErrMissingTool, bin, err, InstallHint)
		}
		return bin, nil
	}
	if _, err := os.Stat(DefaultBinary); err == nil {
		return DefaultBinary, nil
	}
	if p, err := exec.LookPath("docker-registry"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: %s not found (the CNCF distribution registry); %s", ErrMissingTool, DefaultBinary, InstallHint)
}

// writeHtpasswd writes a bcrypt htpasswd file with one user, using
// apache2-utils' htpasswd.
func writeHtpasswd(path, user, password string) error {
	bin, err := exec.LookPath("htpasswd")
	if err != nil {
		return fmt.Errorf("%w: htpasswd not found (apache2-utils); %s", ErrMissingTool, InstallHint)
	}
	// -C 4: the lowest bcrypt cost; the registry checks it on every request.
	out, err := exec.Command(bin, "-Bbn", "-C", "4", user, password).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("htpasswd: %v: %s", err, ee.Stderr)
		}
		return fmt.Errorf("htpasswd: %w", err)
	}
	return os.WriteFile(path, append(bytes.TrimSpace(out), '\n'), 0o600)
}

// portFree checks that nobody listens on addr, so that the readiness probe
// cannot be answered by another server.
func portFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%w: %s", errAddrInUse, addr)
		}
		return err
	}
	return l.Close()
}

// FreePort returns a TCP port of host that was free a moment ago.
func FreePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

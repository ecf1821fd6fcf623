// Package kubeapi runs a real kube-apiserver (v1.33.13, built once from the
// Go module proxy) on a real etcd (Debian's etcd-server) on loopback, for
// tests that need real authentication, RBAC and API aggregation.
//
//	c := kubeapi.Start(t)                            // fresh cluster, stopped at t.Cleanup
//	cfg := c.RESTConfig()                            // system:masters
//	d := kubeapi.RegisterImageAPI(t, c, "image.alauda.io")  // aggregated Image API test double
//	bob := c.UserKubeconfig(t, "bob", "team-a")      // an arbitrary user, for RBAC denials
//
// Each Start is a separate cluster (about 5-10 s to start on 2 busy cores,
// ~300 MB): share one per package by starting it in the first test and
// using namespaces, or use `cluster-api up` for a long-lived one.
//
// The kube-apiserver binary is built on first use into
// <CacheDir>/k8s-v1.33.13/bin (CacheDir: $REGMIGRATE_CACHE, else
// ~/.cache/regmigrate); a cold build takes ~15 min on 2 cores, so CI should
// run `go run ./tests/kubeapi/cmd/cluster-api build` before `go test`.
package kubeapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// Options configures StartCluster.
type Options struct {
	// Dir holds pki/, etcd-data/, logs, PID files and kubeconfigs. Required.
	Dir string
	// Detach starts etcd and kube-apiserver in their own sessions so they
	// outlive the calling process (cluster-api up); otherwise they die with it.
	Detach bool
	// Logf receives progress lines; may be nil.
	Logf func(format string, args ...any)
	// APIServerArgs are extra kube-apiserver flags (--name=value).
	APIServerArgs []string
	// StartTimeout bounds waiting for etcd and /readyz; default 2 min.
	StartTimeout time.Duration

	// Address is the IP kube-apiserver binds, advertises and is reached
	// at (its serving certificate names it); default 127.0.0.1. A
	// single-node cluster gives its node's bridge address, so that pods
	// reach it too.
	Address string
	// Port is kube-apiserver's port; 0 picks a free one.
	Port int
	// APIServerBinary is the kube-apiserver to run; default APIServerBinary().
	APIServerBinary string
}

// Cluster is a running etcd + kube-apiserver.
type Cluster struct {
	Dir             string // state folder
	Host            string // https://127.0.0.1:<port>
	AdminKubeconfig string // kubeconfig of CN=admin, O=system:masters
	EtcdURL         string // http://127.0.0.1:<port>
	StartupTime     time.Duration

	etcd, apiserver *proc
	caPEM           []byte
	admin           *keyPair
}

// Start starts a fresh cluster in a temporary folder and stops it when the
// test ends (also when it fails). It fails the test, saying what to
// install or run, when etcd is missing or kube-apiserver cannot be built.
func Start(t testing.TB) *Cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "kubeapi-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	// A first build takes long: say so on stderr too, t.Logf shows only at the end.
	if _, err := APIServerBinary(ctx, func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "kubeapi: "+format+"\n", args...)
		t.Logf(format, args...)
	}); err != nil {
		t.Fatalf("kubeapi: %v", err)
	}
	c, err := StartCluster(ctx, Options{Dir: dir, Logf: t.Logf})
	if err != nil {
		os.RemoveAll(filepath.Join(dir, "etcd-data"))
		t.Fatalf("kubeapi: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("kubeapi: stop: %v", err)
		}
		if t.Failed() { // keep the logs, not the data (etcd preallocates 64 MB)
			os.RemoveAll(filepath.Join(dir, "etcd-data"))
			t.Logf("kubeapi: logs kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return c
}

// StartCluster generates certificates, starts etcd and kube-apiserver on
// free loopback ports and waits for /readyz.
func StartCluster(ctx context.Context, o Options) (*Cluster, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("Options.Dir is required")
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 2 * time.Minute
	}
	etcdBin, err := EtcdBinary()
	if err != nil {
		return nil, err
	}
	apiBin := o.APIServerBinary
	if apiBin == "" {
		if apiBin, err = APIServerBinary(ctx, o.Logf); err != nil {
			return nil, err
		}
	}
	if o.Address == "" {
		o.Address = "127.0.0.1"
	}
	addr := net.ParseIP(o.Address)
	if addr == nil {
		return nil, fmt.Errorf("Options.Address %q is not an IP address", o.Address)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	pki := filepath.Join(dir, "pki")
	if err := writePKI(pki, addr); err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, AdminKubeconfig: filepath.Join(dir, "admin.kubeconfig")}
	if c.caPEM, err = os.ReadFile(filepath.Join(pki, "ca.crt")); err != nil {
		return nil, err
	}
	if c.admin, err = readKeyPair(pki, "admin"); err != nil {
		return nil, err
	}

	start := time.Now()
	if err := c.startEtcd(ctx, o, etcdBin); err != nil {
		return nil, err
	}
	if err := c.startAPIServer(ctx, o, apiBin, pki); err != nil {
		c.Stop()
		return nil, err
	}
	c.StartupTime = time.Since(start)
	if err := writeKubeconfig(c.AdminKubeconfig, c.Host, c.caPEM, c.admin, "admin"); err == nil {
		err = c.saveState()
	}
	if err != nil {
		c.Stop()
		return nil, err
	}
	o.Logf("kubeapi: kube-apiserver %s ready at %s in %s (etcd %s); admin kubeconfig %s",
		K8sVersion, c.Host, c.StartupTime.Round(10*time.Millisecond), c.EtcdURL, c.AdminKubeconfig)
	return c, nil
}

// startEtcd starts a single-member etcd with its data in <Dir>/etcd-data.
func (c *Cluster) startEtcd(ctx context.Context, o Options, bin string) error {
	for attempt := 0; ; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return err
		}
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		data := filepath.Join(c.Dir, "etcd-data")
		os.RemoveAll(data)
		p, err := startProc(c.Dir, "etcd", o.Detach, bin, "--name=kubeapi", "--data-dir="+data,
			"--listen-client-urls="+client, "--advertise-client-urls="+client,
			"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
			"--initial-cluster=kubeapi="+peer, "--initial-cluster-state=new",
			"--log-level=warn", "--logger=zap", "--quota-backend-bytes=2147483648")
		if err != nil {
			return err
		}
		err = waitFor(ctx, p, o.StartTimeout, func() error { return httpOK(http.DefaultClient, client+"/health") })
		if err == nil {
			c.etcd, c.EtcdURL = p, client
			return nil
		}
		p.stop()
		if !strings.Contains(p.logTail(4096), "address already in use") || attempt >= 3 {
			return fmt.Errorf("etcd: %w\n--- %s:\n%s", err, p.log, p.logTail(4096))
		}
	}
}

// startAPIServer starts kube-apiserver on a free loopback port and waits for /readyz.
func (c *Cluster) startAPIServer(ctx context.Context, o Options, bin, pki string) error {
	f := func(name string) string { return filepath.Join(pki, name) }
	client, err := c.httpClient()
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		port := o.Port
		if port == 0 {
			ports, err := freePorts(1)
			if err != nil {
				return err
			}
			port = ports[0]
		}
		host := "https://" + net.JoinHostPort(o.Address, strconv.Itoa(port))
		args := []string{
			"--etcd-servers=" + c.EtcdURL,
			"--bind-address=" + o.Address, "--advertise-address=" + o.Address, "--secure-port=" + strconv.Itoa(port),
			"--tls-cert-file=" + f("apiserver.crt"), "--tls-private-key-file=" + f("apiserver.key"),
			"--client-ca-file=" + f("ca.crt"),
			"--authorization-mode=Node,RBAC",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + f("sa.pub"), "--service-account-signing-key-file=" + f("sa.key"),
			"--service-cluster-ip-range=10.0.0.0/24",
			// Aggregation: the apiserver authenticates to aggregated servers
			// with the front-proxy client cert and passes the user in headers.
			"--requestheader-client-ca-file=" + f("front-proxy-ca.crt"),
			"--requestheader-allowed-names=front-proxy-client",
			"--requestheader-username-headers=X-Remote-User",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--proxy-client-cert-file=" + f("front-proxy-client.crt"), "--proxy-client-key-file=" + f("front-proxy-client.key"),
			// Route aggregated APIs by Service (ExternalName allowed), not by
			// Endpoints: Endpoints may not hold loopback addresses.
			"--enable-aggregator-routing=false",
			// Nothing may write 127.0.0.1 into the kubernetes Endpoints either.
			"--endpoint-reconciler-type=none",
			"--cert-dir=" + filepath.Join(c.Dir, "apiserver-certs"),
			// kubectl logs/exec: the apiserver's client certificate at kubelets.
			"--kubelet-client-certificate=" + f("kubelet-client.crt"), "--kubelet-client-key=" + f("kubelet-client.key"),
			"--profiling=false",
		}
		p, err := startProc(c.Dir, "kube-apiserver", o.Detach, bin, append(args, o.APIServerArgs...)...)
		if err != nil {
			return err
		}
		err = waitFor(ctx, p, o.StartTimeout, func() error { return httpOK(client, host+"/readyz") })
		if err == nil {
			c.apiserver, c.Host = p, host
			return nil
		}
		p.stop()
		if !strings.Contains(p.logTail(8192), "address already in use") || attempt >= 3 || o.Port != 0 {
			return fmt.Errorf("kube-apiserver: %w\n--- %s:\n%s", err, p.log, p.logTail(8192))
		}
	}
}

// waitFor polls check until it succeeds, the process exits or time runs out.
func waitFor(ctx context.Context, p *proc, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		if !p.alive() {
			return fmt.Errorf("%s exited (last check: %v)", p.name, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v", p.name, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func httpOK(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// httpClient is an admin HTTPS client for the apiserver.
func (c *Cluster) httpClient() (*http.Client, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.caPEM)
	cert, err := tls.X509KeyPair(c.admin.certPEM(), c.admin.keyPEM())
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}, nil
}

// Stop stops kube-apiserver, then etcd (SIGTERM to each process group,
// SIGKILL after StopGrace).
func (c *Cluster) Stop() error {
	for _, p := range []*proc{c.apiserver, c.etcd} {
		if p != nil {
			p.stop()
			os.Remove(filepath.Join(c.Dir, p.name+".pid"))
		}
	}
	return nil
}

// state is what Reattach needs, in <Dir>/state.json.
type state struct {
	Host, EtcdURL, EtcdBinary, APIServerBinary string
}

func (c *Cluster) saveState() error {
	b, err := json.MarshalIndent(state{c.Host, c.EtcdURL, c.etcd.bin, c.apiserver.bin}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.Dir, "state.json"), b, 0o644)
}

// Reattach returns the cluster a detached StartCluster left in dir (see
// cluster-api up), found by its state.json and PID files; Running says
// whether it is still up, Stop stops it.
func Reattach(dir string) (*Cluster, error) {
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s/state.json: %w", dir, err)
	}
	c := &Cluster{Dir: dir, Host: st.Host, EtcdURL: st.EtcdURL, AdminKubeconfig: filepath.Join(dir, "admin.kubeconfig")}
	if c.caPEM, err = os.ReadFile(filepath.Join(dir, "pki", "ca.crt")); err != nil {
		return nil, err
	}
	if c.admin, err = readKeyPair(filepath.Join(dir, "pki"), "admin"); err != nil {
		return nil, err
	}
	c.etcd, _ = procFromPIDFile(dir, "etcd", st.EtcdBinary)
	c.apiserver, _ = procFromPIDFile(dir, "kube-apiserver", st.APIServerBinary)
	return c, nil
}

// Running reports whether etcd and kube-apiserver both still run.
func (c *Cluster) Running() bool {
	return c.etcd != nil && c.apiserver != nil && c.etcd.alive() && c.apiserver.alive()
}

// RESTConfig returns a client config for the admin (system:masters). It
// asks for JSON (ContentType and AcceptContentTypes) because aggregated
// Image API doubles speak nothing else; QPS limits are raised for tests.
func (c *Cluster) RESTConfig() *rest.Config {
	return &rest.Config{
		Host: c.Host, QPS: 200, Burst: 400, Timeout: time.Minute,
		ContentConfig:   rest.ContentConfig{ContentType: "application/json", AcceptContentTypes: "application/json"},
		TLSClientConfig: rest.TLSClientConfig{CAData: c.caPEM, CertData: c.admin.certPEM(), KeyData: c.admin.keyPEM()},
	}
}

// UserKubeconfig writes a kubeconfig for a client certificate of user in
// groups (signed by the cluster CA, so the apiserver authenticates it;
// RBAC grants it nothing) and returns its path, in a test temp folder.
func (c *Cluster) UserKubeconfig(t testing.TB, user string, groups ...string) string {
	t.Helper()
	path, err := c.WriteUserKubeconfig(filepath.Join(t.TempDir(), "kubeconfig"), user, groups...)
	if err != nil {
		t.Fatalf("kubeapi: %v", err)
	}
	return path
}

// WriteUserKubeconfig is UserKubeconfig writing to path.
func (c *Cluster) WriteUserKubeconfig(path, user string, groups ...string) (string, error) {
	ca, err := readKeyPair(filepath.Join(c.Dir, "pki"), "ca")
	if err != nil {
		return "", err
	}
	kp, err := newClientCert(ca, user, groups)
	if err != nil {
		return "", err
	}
	return path, writeKubeconfig(path, c.Host, c.caPEM, kp, user)
}

// RSS returns the resident memory of etcd and kube-apiserver, in bytes.
func (c *Cluster) RSS() (etcd, apiserver int64) {
	if c.etcd != nil {
		etcd = c.etcd.rss()
	}
	if c.apiserver != nil {
		apiserver = c.apiserver.rss()
	}
	return etcd, apiserver
}

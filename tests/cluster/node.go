// Package cluster runs a real single-node Kubernetes with the real Argo
// Workflows controller, for end-to-end tests of the Workflows regmigrate
// generates: etcd and kube-apiserver (tests/kubeapi), kube-controller-manager,
// kube-scheduler, kubelet with containerd, runc and the CNI bridge (real pods),
// Argo's workflow-controller with an S3 artifact repository (gofakes3, kept in
// a file) and its workflow archive on PostgreSQL.
//
//	bin, _ := cluster.Build(ctx, logf)               // k8s v1.33.13 + Argo v3.7.3, cached outside the repo
//	n, err := cluster.Up(ctx, cluster.Options{Logf: logf})
//	defer n.Down()
//	n.ImportImage(ctx, "localhost/regmigrate/export:e2e", img)   // pods pull nothing
//
// Everything runs as processes with PID files in the state folder; Down
// stops them by PID, kills the pods' containers, unmounts what they mounted
// and undoes the network changes (see network.go), also after a crash
// (`go run ./tests/cluster/cmd/node down`). Up fails, saying why, when the
// machine cannot run a node (not root, no iptables, no containerd...).
// Traffic stays on the machine: pods reach the node's addresses only.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/regmigrate/regmigrate/tests/buildcache"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
)

// Fixed names: the node's, the runtime folder's (sockets want short paths).
const (
	NodeName   = "e2e-node"
	RuntimeDir = "/run/regmigrate-e2e"
	S3Bucket   = "argo-artifacts"
	S3Key      = "e2e"
	S3Secret   = "e2e-secret-key"
	// ArgoNamespace holds the controller's ConfigMap and secrets.
	ArgoNamespace = "argo"
	// PauseImage and ExecutorImage are imported at Up; pods pull nothing.
	PauseImage    = "localhost/e2e/pause:1"
	ExecutorImage = "localhost/e2e/argoexec:" + ArgoVersion
)

// Options configures Up.
type Options struct {
	// Dir is the state folder (PID files, logs, certificates, data);
	// default <CacheDir>/e2e-node. Up empties it first (after stopping
	// whatever a previous Up left there).
	Dir string
	// Detach starts the processes in sessions of their own so that they
	// outlive the caller (node up); otherwise they die with it.
	Detach bool
	Logf   func(format string, args ...any)
}

// Node is a running single-node cluster.
type Node struct {
	Dir        string // state folder
	Bin        string // Kubernetes and Argo binaries (BinDir)
	API        *kubeapi.Cluster
	Kubeconfig string // admin (system:masters), for host-side clients
	S3         string // http://host:port of the artifact repository
	Postgres   Postgres
	Timings    []Timing // what Up took, part by part

	detach bool
	logf   func(string, ...any)
	host   hostState
}

// Timing is how long a part of Up took.
type Timing struct {
	What string
	Took time.Duration
}

// DefaultDir is the default state folder.
func DefaultDir() (string, error) {
	cache, err := buildcache.Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "e2e-node"), nil
}

// Preflight says why this machine cannot run a node, or nil.
func Preflight() error {
	var errs []error
	if os.Geteuid() != 0 {
		errs = append(errs, errors.New("not root: a node needs root (network namespaces, iptables, mounts, cgroups)"))
	}
	for _, t := range []struct{ bin, pkg string }{
		{"containerd", "containerd"}, {"runc", "runc"}, {"ctr", "containerd"}, {"iptables", "iptables"},
		{"ip", "iproute2"}, {"etcd", "etcd-server"}, {"kubectl", "kubectl"}, {"psql", "postgresql"},
	} {
		if _, err := exec.LookPath(t.bin); err != nil {
			errs = append(errs, fmt.Errorf("%s not found: apt-get install -y %s", t.bin, t.pkg))
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		errs = append(errs, errors.New("CNI plugins not found in /usr/lib/cni: apt-get install -y containernetworking-plugins"))
	}
	if _, err := postgresBin("postgres"); err != nil {
		errs = append(errs, err)
	}
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		errs = append(errs, errors.New("no /sys/fs/cgroup: kubelet needs cgroups"))
	}
	return errors.Join(errs...)
}

// Up builds (or finds) the binaries and starts the node: network, etcd,
// kube-apiserver, containerd (pause and Argo executor images imported),
// controller-manager, scheduler, kubelet, S3, PostgreSQL and the Argo
// controller, and waits until the node is Ready and the default
// ServiceAccount exists. On failure everything started is stopped again.
func Up(ctx context.Context, o Options) (*Node, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if err := Preflight(); err != nil {
		return nil, fmt.Errorf("this machine cannot run the e2e node:\n%w", err)
	}
	if o.Dir == "" {
		d, err := DefaultDir()
		if err != nil {
			return nil, err
		}
		o.Dir = d
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	bin, err := Build(ctx, o.Logf)
	if err != nil {
		return nil, err
	}
	if err := Down(dir, o.Logf); err != nil { // what a crashed run left
		return nil, fmt.Errorf("cleaning up a previous node: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	n := &Node{Dir: dir, Bin: bin, detach: o.Detach, logf: o.Logf}
	if err := n.up(ctx); err != nil {
		if derr := Down(dir, o.Logf); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, fmt.Errorf("node up: %w (logs in %s)", err, dir)
	}
	return n, nil
}

func (n *Node) up(ctx context.Context) error {
	t0 := time.Now()
	step := func(what string, f func() error) error {
		start := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		n.Timings = append(n.Timings, Timing{what, time.Since(start)})
		n.logf("node: %s (%s)", what, time.Since(start).Round(10*time.Millisecond))
		return nil
	}
	steps := []struct {
		what string
		f    func() error
	}{
		{"bridge " + Bridge + " " + NodeIP, func() error { return n.setupBridge(ctx) }},
		{"etcd and kube-apiserver", func() error { return n.startAPI(ctx) }},
		{"iptables rules", func() error { return n.setupRules(ctx, n.apiPort()) }},
		{"containerd, pause and executor images", func() error { return n.startContainerd(ctx) }},
		{"controller-manager, scheduler, kubelet", func() error { return n.startKube(ctx) }},
		{"S3 and PostgreSQL", func() error { return n.startStores(ctx) }},
		{"Argo controller", func() error { return n.startArgo(ctx) }},
		{"node Ready, default ServiceAccount", func() error { return n.waitReady(ctx) }},
	}
	for _, s := range steps {
		if err := step(s.what, s.f); err != nil {
			return err
		}
	}
	n.Timings = append(n.Timings, Timing{"up", time.Since(t0)})
	return nil
}

// processes in the order Down stops them, with their stop signal.
var processes = []struct {
	name string
	sig  syscall.Signal
}{
	{"argo-server", syscall.SIGTERM},
	{"workflow-controller", syscall.SIGTERM},
	{"kube-scheduler", syscall.SIGTERM},
	{"kube-controller-manager", syscall.SIGTERM},
	{"kubelet", syscall.SIGTERM},
	{"containerd", syscall.SIGTERM},
	{"fakes3", syscall.SIGTERM},
	{"postgres", syscall.SIGINT}, // fast shutdown
	{"kube-apiserver", syscall.SIGTERM},
	{"etcd", syscall.SIGTERM},
}

// Down stops the node whose state folder is dir (by PID files), kills the
// pods' containers, unmounts what they left mounted under the node's
// folders and undoes the network changes. Its data stays (logs, S3's file,
// certificates) until the next Up. Nothing there is not an error.
func (n *Node) Down() error { return Down(n.Dir, n.logf) }

// Down is Node.Down for a state folder.
func Down(dir string, logf func(string, ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if _, err := os.Stat(filepath.Join(dir, "host.json")); os.IsNotExist(err) {
		return nil // no node was started here (Up writes host.json first)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	var errs []error
	for _, p := range processes {
		if p.name == "containerd" {
			killContainers(ctx, dir)
		}
		if err := stopByPIDFile(dir, p.name, p.sig); err != nil {
			errs = append(errs, err)
		}
	}
	killShims(dir)
	removeArgoServerRules(ctx)
	errs = append(errs, unmountUnder(dir, RuntimeDir)...)
	h, err := loadHost(dir)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	errs = append(errs, teardownNetwork(ctx, h)...)
	for _, d := range h.CreatedDirs {
		os.RemoveAll(d)
	}
	removeCgroups()
	if err := os.RemoveAll(RuntimeDir); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []string{"kubelet", "containerd", "etcd-data"} {
		os.RemoveAll(filepath.Join(dir, d))
	}
	if len(errs) == 0 {
		os.Remove(filepath.Join(dir, "host.json"))
		logf("node: down (%s)", time.Since(start).Round(10*time.Millisecond))
	}
	return errors.Join(errs...)
}

// unmountUnder unmounts every mount point under the given folders,
// deepest first (pod volumes, container root filesystems, network
// namespaces, shm).
func unmountUnder(dirs ...string) []error {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return []error{err}
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		p := strings.ReplaceAll(f[1], `\040`, " ")
		for _, d := range dirs {
			if strings.HasPrefix(p, d+"/") {
				points = append(points, p)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errs
}

// removeCgroups removes the (empty, once the pods are gone) cgroups kubelet
// created: kubepods in every cgroup v1 hierarchy.
func removeCgroups() {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	for _, root := range roots {
		var dirs []string
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
		for _, d := range dirs {
			syscall.Rmdir(d)
		}
	}
}

// get does an HTTP GET and wants 200.
func get(url string) error {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

package cluster

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/regmigrate/regmigrate/tests/kubeapi"
)

// startAPI starts etcd and kube-apiserver (tests/kubeapi) on the node's
// address, so that host processes and pods (through the Service DNAT) reach it.
func (n *Node) startAPI(ctx context.Context) error {
	c, err := kubeapi.StartCluster(ctx, kubeapi.Options{
		Dir: n.Dir, Detach: n.detach, Logf: n.logf, Address: NodeIP,
		APIServerBinary: filepath.Join(n.Bin, "kube-apiserver"),
		APIServerArgs: []string{
			"--kubelet-preferred-address-types=InternalIP",
			"--allow-privileged=false",
		},
	})
	if err != nil {
		return err
	}
	n.API, n.Kubeconfig = c, c.AdminKubeconfig
	return nil
}

func (n *Node) apiPort() int {
	u, _ := url.Parse(n.API.Host)
	p, _ := strconv.Atoi(u.Port())
	return p
}

// ctr runs containerd's CLI against the node's containerd, in the CRI's namespace.
func ctr(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "ctr", append([]string{"--address", RuntimeDir + "/containerd.sock", "--namespace", "k8s.io"}, args...)...)
}

// startContainerd writes containerd's and the CNI's configuration, starts
// containerd and imports the sandbox (pause) and Argo executor images.
func (n *Node) startContainerd(ctx context.Context) error {
	conf := filepath.Join(n.Dir, "conf")
	if err := os.MkdirAll(filepath.Join(conf, "cni"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(RuntimeDir, 0o755); err != nil {
		return err
	}
	// No registry host configuration left by an earlier run.
	if err := os.RemoveAll(n.RegistryHostsDir()); err != nil {
		return err
	}
	if err := os.MkdirAll(n.RegistryHostsDir(), 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"containerd.toml": fmt.Sprintf(containerdTOML, filepath.Join(n.Dir, "containerd"), RuntimeDir, PauseImage, conf, n.RegistryHostsDir()),
		"cni/10-bridge.conflist": fmt.Sprintf(cniConflist, cniName, Bridge, PodCIDR, NodeIP,
			filepath.Join(RuntimeDir, "cni-ipam")),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(conf, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	cmd := exec.Command("containerd", "--config", filepath.Join(conf, "containerd.toml"))
	if err := n.start("containerd", cmd); err != nil {
		return err
	}
	if err := waitUntil(ctx, "containerd", time.Minute, func() error {
		_, err := ctr(ctx, "version")
		return err
	}); err != nil {
		return err
	}
	return n.importBaseImages(ctx)
}

// containerd 1.6: the sandbox image is ours; restrict_oom_score_adj because
// machines without CAP_SYS_RESOURCE fail every sandbox otherwise ("can't
// get final child's PID from pipe"); network namespaces under the runtime
// folder, so that Down finds them; cgroupfs, as kubelet; registry hosts
// (hosts.toml) read from RegistryHostsDir, as a node that takes
// regmigrate's node mirror is configured.
const containerdTOML = `version = 2
root = "%[1]s/root"
state = "%[2]s/containerd"
[grpc]
  address = "%[2]s/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "%[3]s"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "%[4]s/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "%[5]s"
`

// RegistryHostsDir is containerd's registry config_path on the node:
// <host>/hosts.toml there configures pulls of that host (it starts empty).
func (n *Node) RegistryHostsDir() string { return filepath.Join(n.Dir, "certs.d") }

// The pod network: the bridge plugin on the node's bridge (its address is
// the pods' gateway), host-local addresses, no masquerading.
const cniConflist = `{
  "cniVersion": "0.4.0",
  "name": "%s",
  "plugins": [{
    "type": "bridge", "bridge": "%s", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "%s", "gateway": "%s"}]],
             "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "%s"}
  }]
}
`

// killContainers kills and removes every container of the node's
// containerd (the pods' and their sandboxes), while containerd still runs.
func killContainers(ctx context.Context, dir string) {
	if _, err := os.Stat(filepath.Join(dir, "containerd.pid")); err != nil {
		return
	}
	out, err := ctr(ctx, "tasks", "ls", "-q")
	if err != nil {
		return
	}
	tasks := strings.Fields(out)
	for _, t := range tasks {
		ctr(ctx, "tasks", "kill", "-a", "-s", "SIGKILL", t)
	}
	for _, t := range tasks {
		for i := 0; i < 20; i++ {
			if _, err := ctr(ctx, "tasks", "rm", "-f", t); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if out, err := ctr(ctx, "containers", "ls", "-q"); err == nil {
		for _, c := range strings.Fields(out) {
			ctr(ctx, "containers", "rm", c)
		}
	}
}

// killShims kills containerd shims of the node's containerd that outlived
// it (a crash), and the containers they ran, found by the node's socket in
// their command line.
func killShims(dir string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "containerd-shim") || !strings.Contains(string(b), RuntimeDir+"/containerd.sock") {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if pid > 1 {
			killTree(pid)
		}
	}
}

// killTree SIGKILLs pid and its descendants.
func killTree(pid int) {
	children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, c := range strings.Fields(string(children)) {
		if cp, err := strconv.Atoi(c); err == nil {
			killTree(cp)
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// startKube writes the components' kubeconfigs (client certificates of the
// cluster CA) and starts controller-manager, scheduler and kubelet.
func (n *Node) startKube(ctx context.Context) error {
	pki := filepath.Join(n.Dir, "pki")
	kc := map[string]string{}
	for name, id := range map[string][]string{
		"kube-controller-manager": {"system:kube-controller-manager"},
		"kube-scheduler":          {"system:kube-scheduler"},
		"kubelet":                 {"system:node:" + NodeName, "system:nodes"},
	} {
		p, err := n.API.WriteUserKubeconfig(filepath.Join(n.Dir, name+".kubeconfig"), id[0], id[1:]...)
		if err != nil {
			return err
		}
		kc[name] = p
	}
	kcm := exec.Command(filepath.Join(n.Bin, "kube-controller-manager"),
		"--kubeconfig="+kc["kube-controller-manager"],
		"--authentication-kubeconfig="+kc["kube-controller-manager"], "--authorization-kubeconfig="+kc["kube-controller-manager"],
		"--service-account-private-key-file="+filepath.Join(pki, "sa.key"), "--root-ca-file="+filepath.Join(pki, "ca.crt"),
		"--use-service-account-credentials=true", "--service-cluster-ip-range=10.0.0.0/24",
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0")
	sched := exec.Command(filepath.Join(n.Bin, "kube-scheduler"),
		"--kubeconfig="+kc["kube-scheduler"],
		"--authentication-kubeconfig="+kc["kube-scheduler"], "--authorization-kubeconfig="+kc["kube-scheduler"],
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0")
	// kubelet's fixed symlink folder, the CNI plugins' result cache
	for _, d := range []string{"/var/log/containers", "/var/lib/cni"} {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			n.host.CreatedDirs = append(n.host.CreatedDirs, d)
		}
	}
	if err := n.saveHost(); err != nil {
		return err
	}
	cfg := filepath.Join(n.Dir, "conf", "kubelet.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(kubeletConfig, RuntimeDir, NodeIP, filepath.Join(pki, "ca.crt"),
		filepath.Join(n.Dir, "pod-logs"))), 0o644); err != nil {
		return err
	}
	kubelet := exec.Command(filepath.Join(n.Bin, "kubelet"), "--config="+cfg, "--kubeconfig="+kc["kubelet"],
		"--node-ip="+NodeIP, "--hostname-override="+NodeName, "--root-dir="+filepath.Join(n.Dir, "kubelet"))
	for name, cmd := range map[string]*exec.Cmd{"kube-controller-manager": kcm, "kube-scheduler": sched, "kubelet": kubelet} {
		if err := n.start(name, cmd); err != nil {
			return err
		}
	}
	return nil
}

// kubelet on cgroup v1 with cgroupfs (as containerd); no image garbage
// collection (the imported images cannot be pulled again); eviction only
// when nearly full; logs under the state folder.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://%[1]s/containerd.sock
address: %[2]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[3]s}
authorization: {mode: Webhook}
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
podLogsDir: %[4]s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", imagefs.available: "1%%"}
serializeImagePulls: false
`

// waitReady waits for the node to be Ready and for the controller-manager
// to have made the default ServiceAccount and the root CA ConfigMap, which
// every pod needs.
func (n *Node) waitReady(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(n.API.RESTConfig())
	if err != nil {
		return err
	}
	if err := waitUntil(ctx, "node "+NodeName+" Ready", 2*time.Minute, func() error {
		node, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("conditions %v", node.Status.Conditions)
	}); err != nil {
		return err
	}
	return waitUntil(ctx, "default ServiceAccount and kube-root-ca.crt", 2*time.Minute, func() error {
		if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return err
		}
		_, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err
	})
}

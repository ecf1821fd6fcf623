package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The node's network: a bridge with the node's address, pods in PodCIDR on
// it (the CNI bridge plugin), the in-cluster `kubernetes` Service address
// DNAT-ed to kube-apiserver (no kube-proxy), and nothing routed off the
// bridge: the bridge plugin turns on ip_forward, so FORWARD drops
// everything that enters or leaves the bridge from or to another
// interface. Pods reach the node's addresses (apiserver, registries, S3)
// and each other, nothing else.
const (
	NodeIP    = "10.88.0.1"
	PodCIDR   = "10.88.0.0/16"
	Bridge    = "regmigrate0"
	BridgeMAC = "02:72:6d:0a:58:01"
	ServiceIP = "10.0.0.1" // the `kubernetes` Service (first address of 10.0.0.0/24)
	cniName   = "regmigrate-e2e"
)

// hostState is what the node changed on the host, kept in
// <Dir>/host.json so that Down can undo it after a crash too.
type hostState struct {
	IPForward   string   // net.ipv4.ip_forward before up
	APIPort     int      // the DNAT rule's target port
	CreatedDirs []string // host folders that did not exist before (kubelet's /var/log/containers)
	BridgeAdded bool
	RulesAdded  bool
}

func (n *Node) saveHost() error {
	b, err := json.MarshalIndent(n.host, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(n.Dir, "host.json"), b, 0o644)
}

func loadHost(dir string) (hostState, error) {
	var h hostState
	b, err := os.ReadFile(filepath.Join(dir, "host.json"))
	if err != nil {
		return h, err
	}
	return h, json.Unmarshal(b, &h)
}

// iptables rules the node adds: [table, chain, rule...].
func rules(apiPort int) [][]string {
	c := []string{"-m", "comment", "--comment", cniName}
	return [][]string{
		append([]string{"nat", "PREROUTING", "-d", ServiceIP + "/32", "-p", "tcp", "--dport", "443"}, append(c,
			"-j", "DNAT", "--to-destination", fmt.Sprintf("%s:%d", NodeIP, apiPort))...),
		append([]string{"filter", "FORWARD", "-i", Bridge, "!", "-o", Bridge}, append(c, "-j", "DROP")...),
		append([]string{"filter", "FORWARD", "-o", Bridge, "!", "-i", Bridge}, append(c, "-j", "DROP")...),
	}
}

// setupBridge creates the bridge with the node's address, before anything
// binds that address.
func (n *Node) setupBridge(ctx context.Context) error {
	fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		return err
	}
	n.host.IPForward = strings.TrimSpace(string(fwd))
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("iptables not found: apt-get install -y iptables")
	}
	if _, err := run(ctx, "ip", "link", "show", Bridge); err == nil {
		return fmt.Errorf("the bridge %s exists already: another node runs, or run `go run ./tests/cluster/cmd/node down`", Bridge)
	}
	n.host.BridgeAdded = true
	if err := n.saveHost(); err != nil {
		return err
	}
	for _, args := range [][]string{
		// A fixed MAC address: otherwise the bridge takes the lowest of its
		// ports', and changes it as pods come and go, and a pod whose ARP
		// cache holds the old one cannot reach the node for ~30 s (seen as
		// "dial tcp 10.88.0.1:...: i/o timeout" in Argo's wait container).
		{"link", "add", Bridge, "address", BridgeMAC, "type", "bridge"},
		{"addr", "add", NodeIP + "/16", "dev", Bridge},
		{"link", "set", Bridge, "up"},
	} {
		if _, err := run(ctx, "ip", args...); err != nil {
			return fmt.Errorf("network setup (needs root and CAP_NET_ADMIN): %w", err)
		}
	}
	return nil
}

// setupRules adds the DNAT and FORWARD rules once kube-apiserver's port is known.
func (n *Node) setupRules(ctx context.Context, apiPort int) error {
	n.host.APIPort, n.host.RulesAdded = apiPort, true
	if err := n.saveHost(); err != nil {
		return err
	}
	for _, r := range rules(apiPort) {
		verb := "-A"
		if r[1] == "FORWARD" {
			verb = "-I" // before anything that accepts
		}
		if _, err := run(ctx, "iptables", append([]string{"-w", "-t", r[0], verb, r[1]}, r[2:]...)...); err != nil {
			return fmt.Errorf("iptables (needs root and CAP_NET_ADMIN): %w", err)
		}
	}
	return nil
}

// teardownNetwork undoes setupBridge and setupRules: rules deleted, the
// bridge deleted, ip_forward set back. Each part is tried; errors are joined.
func teardownNetwork(ctx context.Context, h hostState) []error {
	var errs []error
	if h.RulesAdded {
		for _, r := range rules(h.APIPort) {
			// Delete every copy (a crashed run may have left one).
			for i := 0; i < 5; i++ {
				if _, err := run(ctx, "iptables", append([]string{"-w", "-t", r[0], "-D", r[1]}, r[2:]...)...); err != nil {
					break
				}
			}
		}
	}
	if h.BridgeAdded {
		if _, err := run(ctx, "ip", "link", "show", Bridge); err == nil {
			if _, err := run(ctx, "ip", "link", "del", Bridge); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if h.IPForward != "" {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte(h.IPForward+"\n"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore ip_forward=%s: %w", h.IPForward, err))
		}
	}
	return errs
}

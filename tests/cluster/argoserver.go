package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ArgoServer is the Argo Server (the API the UI and `argo --argo-server`
// use, and the UI) of the node: `argo server` of the argo command Build
// makes from the pinned module (cmd/argo, v3.7.3), run as a host process.
// The UI's compiled assets are not in the module zip (buildArgo embeds a
// blank page in their place); every API the UI calls is there.
type ArgoServer struct {
	// URL is where it answers, http://127.0.0.1:PORT.
	URL  string
	port int
}

// argoServerComment marks the iptables rules that keep the server on
// loopback; Down removes every rule that carries it.
const argoServerComment = "regmigrate-e2e-argo-server"

// StartArgoServer starts the Argo Server against the node: plain HTTP
// (--secure=false) and --auth-mode=server, so a request carries no token
// and acts with the server's own credentials (the node's admin
// kubeconfig). That is fine only where nothing else reaches it: Argo
// v3.7.3 listens on ":PORT" (every address; no flag binds one), so before
// it starts, iptables drops every packet to its port that does not come
// through the loopback interface (pods on the bridge and other machines
// are refused; this machine's own clients, whichever local address they
// dial, come through loopback). Down stops it (argo-server.pid) and
// removes the rules.
func (n *Node) StartArgoServer(ctx context.Context) (*ArgoServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	for _, ipt := range []string{"iptables", "ip6tables"} {
		if _, err := run(ctx, ipt, "-w", "-I", "INPUT", "-p", "tcp", "--dport", strconv.Itoa(port), "!", "-i", "lo",
			"-m", "comment", "--comment", argoServerComment, "-j", "DROP"); err != nil {
			return nil, fmt.Errorf("keeping the Argo Server on loopback: %w", err)
		}
	}
	cmd := exec.Command(filepath.Join(n.Bin, "argo"), "server",
		"--kubeconfig="+n.Kubeconfig, "--namespace="+ArgoNamespace, "--configmap=workflow-controller-configmap",
		"--port="+strconv.Itoa(port), "--secure=false", "--auth-mode=server", "--loglevel=info")
	if err := n.start("argo-server", cmd); err != nil {
		return nil, err
	}
	s := &ArgoServer{URL: "http://127.0.0.1:" + strconv.Itoa(port), port: port}
	log := filepath.Join(n.Dir, "argo-server.log")
	err = waitUntil(ctx, "argo server", 2*time.Minute, func() error {
		resp, err := http.Get(s.URL + "/api/v1/version")
		if err != nil {
			return fmt.Errorf("%v (see %s)", err, log)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /api/v1/version: %s (see %s)", resp.Status, log)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// StopArgoServer stops the Argo Server and removes its iptables rules.
func (n *Node) StopArgoServer() error {
	err := stopByPIDFile(n.Dir, "argo-server", syscall.SIGTERM)
	removeArgoServerRules(context.Background())
	return err
}

// removeArgoServerRules deletes every INPUT rule StartArgoServer added
// (one left by a crashed run included).
func removeArgoServerRules(ctx context.Context) {
	for _, ipt := range []string{"iptables", "ip6tables"} {
		out, err := run(ctx, ipt, "-w", "-S", "INPUT")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(out, "\n") {
			if !strings.Contains(line, argoServerComment) || !strings.HasPrefix(line, "-A INPUT ") {
				continue
			}
			args := append([]string{"-w", "-D", "INPUT"}, strings.Fields(strings.TrimPrefix(line, "-A INPUT "))...)
			run(ctx, ipt, args...)
		}
	}
}

//go:build e2e

package argoe2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/decommission"
	"github.com/regmigrate/regmigrate/steps/nodemirror"
	"github.com/regmigrate/regmigrate/tests/cluster"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// scenarioNodeMirror is issue 17's proof on the node. A legacy registry of
// its own (TLS, htpasswd) holds a runnable image that a Deployment names.
// The decommission gate (`cutover --check`) is red; the image is migrated
// (`regmigrate run`) and the Deployment switched (`cutover --confirm`):
// the gate is green. Then the legacy registry is stopped: a pod that still
// names it cannot pull; with the containerd node mirror rolled out
// (`cutover --node-mirror containerd --confirm`: the ConfigMap and the
// DaemonSet, whose pod writes hosts.toml into the node's config_path) the
// same pod starts, pulled by kubelet and containerd from the target; the
// gate is red again, naming that pod. Rollback removes the configuration
// from the node, and the legacy name no longer pulls.
func scenarioNodeMirror(t *testing.T, e *env) {
	ctx := context.Background()
	const ns = "mirror-shop"

	lctx, stopLegacy := context.WithCancel(ctx)
	defer stopLegacy()
	legacy, legacyCmd, err := regtest.StartDistributionProcess(lctx, regtest.ProcOptions{
		Dir: filepath.Join(e.dir, "legacy-node"), Host: cluster.NodeIP, TLS: true, Auth: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	// A runnable image (the node's pause binary: it runs until stopped).
	img, err := cluster.BinaryImage("/usr/local/bin/pause", filepath.Join(e.node.Dir, "bin", "pause"))
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	legacyRef := legacy.Host + "/shop/tool:v1"
	ref, _ := name.ParseReference(legacyRef)
	if err := remote.Write(ref, img, legacy.RemoteOptions()...); err != nil {
		t.Fatal(err)
	}

	// The platform: a Deployment naming the legacy image (no replicas:
	// its spec is what the cutover changes).
	e.kubectlApply(t, ctx, "shop", fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: tool, namespace: %[1]s}
spec:
  replicas: 0
  selector: {matchLabels: {app: tool}}
  template:
    metadata: {labels: {app: tool}}
    spec:
      containers:
      - {name: tool, image: %[2]s}
`, ns, legacyRef))

	// Credentials and CAs of both registries, as a user has them.
	auths := map[string]any{}
	certs := filepath.Join(e.dir, "node-certs.d")
	for _, r := range []*regtest.Registry{legacy, e.dst} {
		auths[r.Host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(r.Username + ":" + r.Password))}
		ca, err := os.ReadFile(r.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		e.writeFiles(t, certs, map[string]string{r.Host + "/ca.crt": string(ca)})
	}
	authFile := filepath.Join(e.dir, "node-auth.json")
	b, _ := json.Marshal(map[string]any{"auths": auths})
	if err := os.WriteFile(authFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	creds := []string{"--authfile", authFile, "--certs-dir", certs}

	gate := func(want bool, why string) decommission.Result {
		t.Helper()
		out := filepath.Join(e.dir, "gate-"+strings.ReplaceAll(why, " ", "-"))
		code, _ := regmigrate(t, ctx, "cutover", "--kubeconfig", e.node.Kubeconfig, "--check", "--from", legacy.Host, "--out", out)
		var res decommission.Result
		b, err := os.ReadFile(filepath.Join(out, decommission.ResultFile))
		if err == nil {
			err = json.Unmarshal(b, &res)
		}
		if err != nil {
			t.Fatalf("the gate %s: %v", why, err)
		}
		if (code == 0) != want || res.Clean != want {
			t.Errorf("the gate %s: exit %d, clean %v, %d left; want clean %v", why, code, res.Clean, res.Remaining, want)
		}
		return res
	}
	found := func(res decommission.Result, what, kind, name string) bool {
		for _, c := range res.Clusters {
			for _, f := range c.Findings {
				if f.What == what && strings.EqualFold(f.Kind, kind) && f.Namespace == ns && f.Name == name {
					return true
				}
			}
		}
		return false
	}

	// Red before the cutover: the Deployment names the legacy registry.
	if res := gate(false, "before the cutover"); !found(res, decommission.WhatWorkload, "Deployment", "tool") {
		t.Errorf("the gate before the cutover does not name Deployment %s/tool: %+v", ns, res.Clusters)
	}

	// The migration and the cutover; green after.
	run := filepath.Join(e.dir, "node-run")
	if code, _ := regmigrate(t, ctx, append([]string{"run", "--from", legacy.Host, "--to", e.dst.Host, "--out", run, "--progress", "none"}, creds...)...); code != 0 {
		t.Fatalf("regmigrate run from the legacy registry: exit %d", code)
	}
	if code, _ := regmigrate(t, ctx, "cutover", "--kubeconfig", e.node.Kubeconfig, "--verify-report", filepath.Join(run, "report.json"), "-n", ns, "--confirm"); code != 0 {
		t.Fatalf("cutover of %s: exit %d", ns, code)
	}
	if got, _ := e.node.Kubectl(ctx, "-n", ns, "get", "deployment", "tool", "-o", "jsonpath={.spec.template.spec.containers[0].image}"); got != e.dst.Host+"/shop/tool:v1" {
		t.Errorf("after the cutover Deployment tool runs %q, want %s", got, e.dst.Host+"/shop/tool:v1")
	}
	gate(true, "after the cutover")

	// The legacy registry is switched off. A pod that still names it, with
	// a pull secret for the legacy host holding credentials the target
	// accepts (containerd hands the mirror the credentials kubelet found
	// for the host the image names), cannot pull: nothing answers there.
	stopLegacy()
	legacyCmd.Wait()
	cfg := map[string]any{"auths": map[string]any{legacy.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(e.dst.Username + ":" + e.dst.Password))}}}
	cfgFile := filepath.Join(e.dir, "legacy-pull.json")
	b, _ = json.Marshal(cfg)
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := e.node.Kubectl(ctx, "-n", ns, "create", "secret", "docker-registry", "legacy-pull", "--from-file=.dockerconfigjson="+cfgFile); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	pod := func(name string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  imagePullSecrets: [{name: legacy-pull}]
  containers:
  - {name: tool, image: %s, imagePullPolicy: Always}
`, name, ns, legacyRef)
	}
	e.kubectlApply(t, ctx, "pod-before", pod("before-mirror"))
	e.waitPullFailure(t, ctx, ns, "before-mirror", "before the node mirror")

	// The node mirror: the DaemonSet's pod writes hosts.toml (and the CA)
	// into the node's config_path; the same pod spec now starts.
	hostDir := filepath.Join(e.node.RegistryHostsDir(), legacy.Host)
	mirrorArgs := []string{"cutover", "--kubeconfig", e.node.Kubeconfig, "--node-mirror", "containerd",
		"--from", legacy.Host, "--to", e.dst.Host, "--node-mirror-ca", e.dst.CAFile,
		"--node-mirror-image", imagePrefix + "/switch-mode:" + imageTag,
		"--containerd-config-path", e.node.RegistryHostsDir(), "--out", filepath.Join(e.dir, "node-mirror"), "--confirm"}
	if code, _ := regmigrate(t, ctx, mirrorArgs...); code != 0 {
		t.Fatalf("cutover --node-mirror containerd --confirm: exit %d", code)
	}
	waitFile(t, filepath.Join(hostDir, nodemirror.HostsFile), true, "the DaemonSet's pod writes hosts.toml")
	if _, err := os.Stat(filepath.Join(hostDir, nodemirror.CAFile)); err != nil {
		t.Errorf("the target's CA on the node: %v", err)
	}
	e.kubectlApply(t, ctx, "pod-with", pod("with-mirror"))
	e.waitPodRunning(t, ctx, ns, "with-mirror")
	if id, _ := e.node.Kubectl(ctx, "-n", ns, "get", "pod", "with-mirror", "-o", "jsonpath={.status.containerStatuses[0].imageID}"); !strings.HasSuffix(id, digest.String()) {
		t.Errorf("the pod runs image %q, want the migrated %s", id, digest)
	}

	// The gate sees what the fallback keeps alive: the pod naming the
	// legacy registry, and the pull secret for it.
	res := gate(false, "with a pod on the node mirror")
	if !found(res, decommission.WhatPod, "Pod", "with-mirror") && !found(res, decommission.WhatUnowned, "Pod", "with-mirror") {
		t.Errorf("the gate does not name pod %s/with-mirror: %+v", ns, res.Clusters)
	}
	if !found(res, decommission.WhatPullSecret, "Secret", "legacy-pull") {
		t.Errorf("the gate does not name secret %s/legacy-pull: %+v", ns, res.Clusters)
	}

	// Rollback takes the configuration off the node; the legacy name no
	// longer pulls.
	if out, err := e.node.Kubectl(ctx, "-n", ns, "delete", "pod", "with-mirror", "before-mirror", "--wait=true"); err != nil {
		t.Errorf("%v\n%s", err, out)
	}
	if code, _ := regmigrate(t, ctx, append(mirrorArgs, "--rollback")...); code != 0 {
		t.Fatalf("cutover --node-mirror containerd --rollback --confirm: exit %d", code)
	}
	waitFile(t, hostDir, false, "the DaemonSet's pod removes what it wrote when it stops")
	for _, kind := range []string{"daemonset", "configmap"} {
		if out, _ := e.node.Kubectl(ctx, "-n", nodemirror.DefaultNamespace, "get", kind, nodemirror.Name, "--ignore-not-found", "-o", "name"); strings.TrimSpace(out) != "" {
			t.Errorf("after the rollback: %s", out)
		}
	}
	e.kubectlApply(t, ctx, "pod-after", pod("after-rollback"))
	e.waitPullFailure(t, ctx, ns, "after-rollback", "after the rollback")
	if out, err := e.node.Kubectl(ctx, "delete", "namespace", ns, "--wait=false"); err != nil {
		t.Errorf("%v\n%s", err, out)
	}
}

// kubectlApply applies one YAML document set.
func (e *env) kubectlApply(t *testing.T, ctx context.Context, name, yaml string) {
	t.Helper()
	f := filepath.Join(e.dir, name+".yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := e.node.Kubectl(ctx, "apply", "-f", f); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// waitPodRunning waits (at most two minutes) for a pod's container to run.
func (e *env) waitPodRunning(t *testing.T, ctx context.Context, ns, pod string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		last, _ = e.node.Kubectl(ctx, "-n", ns, "get", "pod", pod, "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].state}")
		if strings.HasPrefix(last, "Running ") && strings.Contains(last, "running") {
			return
		}
	}
	events, _ := e.node.Kubectl(ctx, "-n", ns, "get", "events", "--field-selector", "involvedObject.name="+pod)
	t.Fatalf("pod %s/%s does not run: %s\n%s", ns, pod, last, events)
}

// waitPullFailure waits (at most two minutes) for kubelet to report that
// a pod's image cannot be pulled, and fails if the container runs.
func (e *env) waitPullFailure(t *testing.T, ctx context.Context, ns, pod, when string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		last, _ = e.node.Kubectl(ctx, "-n", ns, "get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[0].state}")
		if strings.Contains(last, "ErrImagePull") || strings.Contains(last, "ImagePullBackOff") {
			return
		}
		if strings.Contains(last, "running") {
			t.Fatalf("%s: pod %s/%s runs an image named by the stopped legacy registry: the scenario proves nothing", when, ns, pod)
		}
	}
	t.Fatalf("%s: pod %s/%s: %s, want an image pull failure", when, ns, pod, last)
}

// waitFile waits (at most two minutes) for a path on the node to exist or
// to be gone.
func waitFile(t *testing.T, path string, exist bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if _, err := os.Stat(path); (err == nil) == exist {
			return
		}
	}
	t.Fatalf("%s: %s exists = %v after two minutes", what, path, !exist)
}

package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// startArgo installs Argo's CRDs (the minimal ones of the module built:
// the full ones cost the apiserver ~500 MB more), the controller's
// ConfigMap (executor image, default artifact repository, workflow archive
// on PostgreSQL, Prometheus metrics on MetricsPort) and starts workflow-controller as a host process.
func (n *Node) startArgo(ctx context.Context) error {
	crds := filepath.Join(filepath.Dir(n.Bin), "argo-src", "manifests", "base", "crds", "minimal")
	if _, err := n.Kubectl(ctx, "apply", "--server-side", "-k", crds); err != nil {
		return err
	}
	cfg := fmt.Sprintf(argoConfig, ArgoNamespace, ExecutorImage, S3Bucket, strings.TrimPrefix(n.S3, "http://"),
		n.Postgres.Host, n.Postgres.Port, n.Postgres.Database, S3Key, S3Secret, n.Postgres.User, n.Postgres.Password, MetricsPort)
	path := filepath.Join(n.Dir, "conf", "argo.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	if _, err := n.Kubectl(ctx, "apply", "-f", path); err != nil {
		return err
	}
	if err := waitUntil(ctx, "Argo CRDs served", time.Minute, func() error {
		_, err := n.Kubectl(ctx, "get", "workflows,cronworkflows,workflowtaskresults", "-A")
		return err
	}); err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(n.Bin, "workflow-controller"), "--kubeconfig="+n.Kubeconfig,
		"--namespace="+ArgoNamespace, "--configmap=workflow-controller-configmap",
		"--executor-image="+ExecutorImage, "--executor-image-pull-policy=Never",
		"--workflow-workers=4", "--pod-cleanup-workers=2", "--loglevel=info")
	// As Argo's own e2e tests: a finished pod is noticed in ~1s, not 10s.
	cmd.Env = append(os.Environ(), "LEADER_ELECTION_DISABLE=true", "DEFAULT_REQUEUE_TIME=1s")
	if err := n.start("workflow-controller", cmd); err != nil {
		return err
	}
	return waitUntil(ctx, "workflow-controller", time.Minute, func() error {
		b, _ := os.ReadFile(filepath.Join(n.Dir, "workflow-controller.log"))
		if strings.Contains(string(b), "Starting Workflow Controller") {
			return nil
		}
		return fmt.Errorf("not started yet (see %s)", filepath.Join(n.Dir, "workflow-controller.log"))
	})
}

// MetricsPort is where the controller serves its Prometheus metrics
// (plain HTTP, on every address of the host): MetricsURL.
const MetricsPort = 9090

// MetricsURL is the controller's /metrics, custom metrics included.
var MetricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", MetricsPort)

// Kubectl runs kubectl as the admin.
func (n *Node) Kubectl(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "kubectl", append([]string{"--kubeconfig", n.Kubeconfig}, args...)...)
}

// The controller's namespace and configuration: the executor image (never
// pulled), the default artifact repository (the node's S3) and the
// workflow archive (PostgreSQL; its tables are created by the controller).
const argoConfig = `apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: workflow-controller-configmap, namespace: %[1]s}
data:
  executor: |
    image: %[2]s
    imagePullPolicy: Never
  artifactRepository: |
    s3:
      bucket: %[3]s
      endpoint: %[4]s
      insecure: true
      accessKeySecret: {name: argo-s3, key: accessKey}
      secretKeySecret: {name: argo-s3, key: secretKey}
  persistence: |
    archive: true
    postgresql:
      host: %[5]s
      port: %[6]d
      database: %[7]s
      tableName: argo_workflows
      userNameSecret: {name: argo-postgres, key: username}
      passwordSecret: {name: argo-postgres, key: password}
  metricsConfig: |
    enabled: true
    secure: false
    port: %[12]d
---
apiVersion: v1
kind: Secret
metadata: {name: argo-s3, namespace: %[1]s}
stringData: {accessKey: %[8]s, secretKey: %[9]s}
---
apiVersion: v1
kind: Secret
metadata: {name: argo-postgres, namespace: %[1]s}
stringData: {username: %[10]s, password: %[11]s}
`

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/tests/kubeapi"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

func TestUpDown(t *testing.T) {
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "state")
	cmd := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(ctx, append(args, "--state", state), &out, &errOut); err != nil {
			t.Fatalf("cluster-api %v: %v\n%s", args, err, errOut.String())
		}
		return strings.TrimSpace(out.String())
	}
	t.Cleanup(func() { run(ctx, []string{"down", "--state", state}, &bytes.Buffer{}, &bytes.Buffer{}) })

	kubeconfig := cmd("up")
	if kubeconfig != filepath.Join(state, "admin.kubeconfig") {
		t.Fatalf("up printed %q", kubeconfig)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list namespaces: %v", err)
	}
	if again := cmd("up"); again != kubeconfig {
		t.Errorf("second up printed %q", again)
	}

	c, err := kubeapi.Reattach(state)
	if err != nil || !c.Running() {
		t.Fatalf("reattach: %v running=%v", err, c != nil && c.Running())
	}
	cmd("down")
	if c.Running() {
		t.Error("still running after down")
	}
	for _, f := range []string{"etcd.pid", "kube-apiserver.pid", "etcd-data"} {
		if _, err := os.Stat(filepath.Join(state, f)); !os.IsNotExist(err) {
			t.Errorf("%s left after down (%v)", f, err)
		}
	}
	cmd("down") // idempotent
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"sideways"}, {"up", "--bogus"}} {
		if err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

package kubeapi

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/tests/buildcache"
)

func TestStagingModules(t *testing.T) {
	gomod := filepath.Join(t.TempDir(), "go.mod")
	os.WriteFile(gomod, []byte(`module k8s.io/kubernetes

require k8s.io/api v0.0.0

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/apiserver => ./staging/src/k8s.io/apiserver
	k8s.io/sample-apiserver => ./staging/src/k8s.io/sample-apiserver
	github.com/x/y => github.com/x/y v1.0.0
)

replace k8s.io/kubectl => ./staging/src/k8s.io/kubectl
`), 0o644)
	mods, err := stagingModules(gomod)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(mods, " "); got != "k8s.io/api k8s.io/apiserver k8s.io/kubectl" {
		t.Errorf("staging modules: %s", got)
	}
}

func TestBuildLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build.lock")
	unlock, err := buildcache.Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := buildcache.Lock(ctx, path); err == nil {
		t.Fatal("second lock taken while the first is held")
	}
	unlock()
	unlock2, err := buildcache.Lock(context.Background(), path)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestMissingEtcdSaysWhatToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := EtcdBinary()
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y etcd-server") {
		t.Errorf("EtcdBinary without etcd: %v", err)
	}
}

func TestCacheDir(t *testing.T) {
	t.Setenv("REGMIGRATE_CACHE", "/somewhere/else")
	if d, _ := buildcache.Dir(); d != "/somewhere/else" {
		t.Errorf("buildcache.Dir = %s", d)
	}
}

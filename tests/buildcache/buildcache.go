// Package buildcache is where the test harnesses keep what they build
// once from the Go module proxy (kube-apiserver, Kubernetes and Argo,
// distribution v3, fakes3): the cache folder outside the repository, the
// environment of the go command that builds them, and a lock so that
// parallel test packages wait for one build instead of starting their own.
package buildcache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Dir is the folder, outside the repository, that keeps built binaries
// and the state of `cluster-api up`: $REGMIGRATE_CACHE, else
// $HOME/.cache/regmigrate (os.UserCacheDir()/regmigrate).
func Dir() (string, error) {
	if d := os.Getenv("REGMIGRATE_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder: set REGMIGRATE_CACHE or HOME: %w", err)
	}
	return filepath.Join(d, "regmigrate"), nil
}

// GoEnv is the environment for the go command building something that
// is not regmigrate: no workspace, no inherited GOFLAGS or GOBIN, no cgo, no
// toolchain switching, no cross compiling.
func GoEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOFLAGS", "GOWORK", "CGO_ENABLED", "GOTOOLCHAIN", "GOOS", "GOARCH", "GOBIN":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0", "GOTOOLCHAIN=local")
}

// Lock takes an exclusive flock on path, waiting for it as long as ctx
// allows.
func Lock(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for %s (another build running?): %w", path, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

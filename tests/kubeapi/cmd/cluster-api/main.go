// Command cluster-api runs the tests/kubeapi cluster (etcd + kube-apiserver
// v1.33.13 on loopback) outside of tests.
//
//	cluster-api build              build kube-apiserver into the cache (once; ~15 min cold)
//	cluster-api up   [--state DIR] start etcd + kube-apiserver detached; prints the admin kubeconfig path
//	cluster-api down [--state DIR] stop them (by PID file) and remove their data
//
// The state folder defaults to <cache>/cluster-api (cache: $REGMIGRATE_CACHE,
// else ~/.cache/regmigrate). `up` on a running cluster prints its kubeconfig
// again; progress goes to stderr, the path alone to stdout:
//
//	export KUBECONFIG=$(go run ./tests/kubeapi/cmd/cluster-api up)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/regmigrate/regmigrate/tests/buildcache"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cluster-api:", err)
		os.Exit(1)
	}
}

const usage = "usage: cluster-api build | up [--state DIR] | down [--state DIR]"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	fs := flag.NewFlagSet("cluster-api "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state", "", "state folder (default <cache>/cluster-api)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *stateDir == "" {
		cache, err := buildcache.Dir()
		if err != nil {
			return err
		}
		*stateDir = filepath.Join(cache, "cluster-api")
	}
	switch args[0] {
	case "build":
		bin, err := kubeapi.APIServerBinary(ctx, logf)
		if err == nil {
			fmt.Fprintln(stdout, bin)
		}
		return err
	case "up":
		return up(ctx, *stateDir, stdout, logf)
	case "down":
		return down(*stateDir, logf)
	}
	return errors.New(usage)
}

func up(ctx context.Context, dir string, stdout io.Writer, logf func(string, ...any)) error {
	if c, err := kubeapi.Reattach(dir); err == nil && c.Running() {
		logf("already up at %s", c.Host)
		fmt.Fprintln(stdout, c.AdminKubeconfig)
		return nil
	} else if err == nil {
		c.Stop() // half of it may still run
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c, err := kubeapi.StartCluster(ctx, kubeapi.Options{Dir: dir, Detach: true, Logf: logf})
	if err != nil {
		return err
	}
	etcd, api := c.RSS()
	logf("up in %s (RSS etcd %d MiB, kube-apiserver %d MiB); logs and PID files in %s; stop with `cluster-api down`",
		c.StartupTime.Round(10e6), etcd>>20, api>>20, dir)
	fmt.Fprintln(stdout, c.AdminKubeconfig)
	return nil
}

func down(dir string, logf func(string, ...any)) error {
	c, err := kubeapi.Reattach(dir)
	if errors.Is(err, os.ErrNotExist) {
		logf("nothing to stop in %s", dir)
		return nil
	}
	if err != nil {
		return err
	}
	if err := c.Stop(); err != nil {
		return err
	}
	logf("stopped the cluster in %s", dir)
	return os.RemoveAll(filepath.Join(dir, "etcd-data"))
}

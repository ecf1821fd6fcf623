// Command node runs the single-node cluster of tests/cluster (Kubernetes
// v1.33.13 with containerd, the Argo v3.7.3 controller, S3 and PostgreSQL)
// outside of tests.
//
//	node build              build (or find) the Kubernetes and Argo binaries; prints their folder
//	node up   [--state DIR] start the node, detached; prints the admin kubeconfig path
//	node down [--state DIR] stop it (by PID files) and undo its network changes
//
// The state folder defaults to <cache>/e2e-node (cache: $REGMIGRATE_CACHE,
// else ~/.cache/regmigrate). It needs root. Progress goes to stderr:
//
//	export KUBECONFIG=$(go run ./tests/cluster/cmd/node up)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/regmigrate/regmigrate/tests/cluster"
)

const usage = "usage: node build | up [--state DIR] | down [--state DIR]"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	fs := flag.NewFlagSet("node "+args[0], flag.ContinueOnError)
	state := fs.String("state", "", "state folder (default <cache>/e2e-node)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *state == "" {
		d, err := cluster.DefaultDir()
		if err != nil {
			return err
		}
		*state = d
	}
	switch args[0] {
	case "build":
		bin, err := cluster.Build(ctx, logf)
		if err == nil {
			fmt.Println(bin)
		}
		return err
	case "up":
		n, err := cluster.Up(ctx, cluster.Options{Dir: *state, Detach: true, Logf: logf})
		if err != nil {
			return err
		}
		logf("node up in %s: S3 %s (bucket %s), PostgreSQL 127.0.0.1:%d; logs and PID files in %s; stop with `node down`",
			n.Timings[len(n.Timings)-1].Took.Round(1e7), n.S3, cluster.S3Bucket, n.Postgres.Port, n.Dir)
		fmt.Println(n.Kubeconfig)
		return nil
	case "down":
		return cluster.Down(*state, logf)
	}
	return errors.New(usage)
}

// Command regmigrate migrates every image of a platform from one registry
// to another: on this machine (run) or as an Argo Workflow (generate, submit).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/regmigrate/regmigrate/generator/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, cli.OSEnv(), os.Args[1:])
	stop()
	os.Exit(code)
}

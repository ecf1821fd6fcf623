// Command regmigrate migrates every image of a platform from one registry
// to another: on this machine (run) or as an Argo Workflow (generate, submit).
package main

import (
	"context"
	"os"

	"github.com/regmigrate/regmigrate/generator/cli"
	"github.com/regmigrate/regmigrate/steps/contract"
)

func main() {
	ctx, stop := contract.SignalContext(context.Background())
	code := cli.Main(ctx, cli.OSEnv(), os.Args[1:])
	stop()
	os.Exit(code)
}

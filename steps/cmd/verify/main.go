// Command verify is regmigrate's verify step, as it runs in an Argo pod.
package main

import (
	"context"
	"os"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/stepcli"
	"github.com/regmigrate/regmigrate/steps/stepcli/verifycmd"
)

func main() {
	ctx, stop := contract.SignalContext(context.Background())
	code := stepcli.Main(ctx, stepcli.OSEnv(), "verify", verifycmd.Run, os.Args[1:])
	stop()
	os.Exit(code)
}

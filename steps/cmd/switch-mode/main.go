// Command switch-mode is regmigrate's switch-mode step (the cutover), as it runs in an Argo pod.
package main

import (
	"context"
	"os"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/stepcli"
	"github.com/regmigrate/regmigrate/steps/stepcli/switchmodecmd"
)

func main() {
	ctx, stop := contract.SignalContext(context.Background())
	code := stepcli.Main(ctx, stepcli.OSEnv(), "switch-mode", switchmodecmd.Run, os.Args[1:])
	stop()
	os.Exit(code)
}

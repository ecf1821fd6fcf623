// Command mirror-shard is regmigrate's mirror-shard step, as it runs in an Argo pod.
package main

import (
	"context"
	"os"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/stepcli"
	"github.com/regmigrate/regmigrate/steps/stepcli/mirrorcmd"
)

func main() {
	ctx, stop := contract.SignalContext(context.Background())
	code := stepcli.Main(ctx, stepcli.OSEnv(), "mirror-shard", mirrorcmd.Run, os.Args[1:])
	stop()
	os.Exit(code)
}

// Command build-images builds regmigrate's step images (an OCI index per
// step, linux/amd64 and linux/arm64) without a Docker daemon, into OCI
// layouts (--out DIR) or a registry (--push REGISTRY/PREFIX). See
// images/README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/regmigrate/regmigrate/images/builder"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := builder.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

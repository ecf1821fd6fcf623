// Command build-registries builds, once, the registries tests/regtest
// builds from source rather than installs: distribution v3
// (regtest.DistributionV3Binary) and fakes3 (regtest.FakeS3Binary), into
// versioned folders of regtest.CacheDir. `make deps` runs it so that
// tests do not pay for the build; a second run does nothing.
//
//	go run ./tests/regtest/cmd/build-registries
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/regmigrate/regmigrate/tests/regtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, b := range []struct {
		name  string
		build func(context.Context) (string, error)
	}{
		{"distribution " + regtest.DistributionV3Version, regtest.DistributionV3Binary},
		{"fakes3", regtest.FakeS3Binary},
	} {
		start := time.Now()
		bin, err := b.build(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "build-registries: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("%s: %s (%s)\n", b.name, bin, time.Since(start).Round(100*time.Millisecond))
	}
}

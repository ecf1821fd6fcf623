package registry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// HeadManifestUnlessDigest answers the same on every registry, whether it
// honours If-None-Match (distribution 2.8 and v3 answer 304 without
// reading the manifest) or ignores it (go-containerregistry's, olareg).
func TestHeadManifestUnlessDigest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *regtest.Registry
		// notModified: the registry answers a matching conditional HEAD
		// with 304 (checked through a proxy that counts it).
		notModified bool
	}{
		{"distribution 2.8", func(t *testing.T) *regtest.Registry { return regtest.StartDistribution(t, regtest.Options{}) }, true},
		{"distribution v3", func(t *testing.T) *regtest.Registry {
			return regtest.StartDistribution(t, regtest.Options{Version: regtest.DistributionV3Version})
		}, true},
		{"go-containerregistry", func(t *testing.T) *regtest.Registry { return regtest.StartInProcess(t) }, false},
		{"olareg", func(t *testing.T) *regtest.Registry { return regtest.StartOlareg(t) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := tc.start(t)
			digest := pushRandom(t, reg.Host+"/ns/app:v1")
			other := pushRandom(t, reg.Host+"/ns/app:v2")
			p := faultproxy.New(t, "http://"+reg.Host)
			c := registry.New(registry.Options{Insecure: anyHost})
			ctx := context.Background()

			d, same, err := c.HeadManifestUnlessDigest(ctx, p.Host, "ns/app", "v1", digest)
			if err != nil || !same || d.Digest != digest {
				t.Fatalf("v1 against its own digest: %+v same=%v err=%v; want %s, same", d, same, err, digest)
			}
			d, same, err = c.HeadManifestUnlessDigest(ctx, p.Host, "ns/app", "v1", other)
			if err != nil || same || d.Digest != digest || d.MediaType == "" {
				t.Fatalf("v1 against another digest: %+v same=%v err=%v; want %s with its media type, not same", d, same, err, digest)
			}
			if _, _, err = c.HeadManifestUnlessDigest(ctx, p.Host, "ns/app", "gone", digest); !errors.Is(err, registry.ErrNotFound) {
				t.Fatalf("a missing tag: %v, want not found", err)
			}
			if _, _, err = c.HeadManifestUnlessDigest(ctx, p.Host, "ns/app", "v1", "latest"); err == nil {
				t.Fatal("a known digest that is not a digest was accepted")
			}
			got := p.Stats().NotModified[faultproxy.KindManifestHead]
			if tc.notModified && got != 1 {
				t.Errorf("%s answered %d conditional HEADs 304, want 1 (the matching one)", tc.name, got)
			}
			if !tc.notModified && got != 0 {
				t.Errorf("%s answered %d conditional HEADs 304; this test says it ignores If-None-Match: update it", tc.name, got)
			}

			body, mt, got2, err := c.GetManifestDigest(ctx, p.Host, "ns/app", "v2")
			if err != nil || got2 != other || !registry.Matches(other, body) || mt == "" {
				t.Fatalf("GetManifestDigest v2: %s %q err=%v; want %s and its bytes", got2, mt, err, other)
			}
		})
	}
}

package regtest

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
)

// StartOlareg serves olareg (github.com/olareg/olareg), an OCI 1.1 registry
// with the referrers API, backed by memory, over plain HTTP on a loopback
// port until the test ends. Push and delete are enabled; garbage
// collection keeps anything younger than an hour, so nothing a test pushed
// disappears.
func StartOlareg(t testing.TB) *Registry {
	t.Helper()
	yes := true
	h := olareg.New(config.Config{
		Storage: config.ConfigStorage{StoreType: config.StoreMem},
		API: config.ConfigAPI{
			DeleteEnabled: &yes,
			Blob:          config.ConfigAPIBlob{DeleteEnabled: &yes},
		},
	})
	s := httptest.NewServer(h)
	t.Cleanup(func() {
		s.Close()
		_ = h.Close()
	})
	return &Registry{Host: strings.TrimPrefix(s.URL, "http://"), Scheme: "http"}
}

package credentials_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/credentials"
	"github.com/regmigrate/regmigrate/steps/registry"
)

// A credential helper's answer lapses (docker-credential-ecr-login's after
// 12 h): when the registry refuses it, the helper is asked again and the
// request goes on with its new answer, instead of failing for the rest of
// the run.
func TestHelperIsAskedAgainWhenTheRegistryRefusesItsAnswer(t *testing.T) {
	bin := t.TempDir()
	current := filepath.Join(bin, "current")
	calls := filepath.Join(bin, "calls.log")
	script := "#!/bin/sh\nread -r server\necho \"$server\" >> '" + calls + "'\nprintf '{\"Username\":\"AWS\",\"Secret\":\"%s\"}' \"$(cat '" + current + "')\"\n"
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-rotating"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	rotate := func(pass string) {
		if err := os.WriteFile(current, []byte(pass), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rotate("token-1")
	// A Basic registry taking only the helper's current answer.
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want, _ := os.ReadFile(current)
		if u, p, ok := r.BasicAuth(); !ok || u != "AWS" || p != string(want) {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	cfgDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"credHelpers":{"`+host+`":"rotating"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	kc, err := credentials.NewKeychain(credentials.Options{DockerConfig: cfgDir})
	if err != nil {
		t.Fatal(err)
	}
	c := registry.New(registry.Options{Keychain: kc, Insecure: registry.InsecureHosts(host)})
	ctx := context.Background()
	if err := c.Login(ctx, host, "team/app"); err != nil {
		t.Fatalf("first login: %v", err)
	}
	rotate("token-2") // the first answer has lapsed
	if err := c.Login(ctx, host, "team/app"); err != nil {
		t.Fatalf("after the helper's answer lapsed: %v", err)
	}
	b, _ := os.ReadFile(calls)
	if n := strings.Count(string(b), "\n"); n != 2 {
		t.Errorf("helper asked %d times, want 2 (once, then again after the 401)", n)
	}
}

package credentials

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
)

// helperSecret is what the fake helper prints when it fails; no error may
// show it.
const helperSecret = "helper-Secret-0f-the-store"

// fakeHelper writes docker-credential-x into a folder put first on PATH.
// It logs each server it is asked about to calls.log and answers by server.
func fakeHelper(t *testing.T) (logPath string) {
	t.Helper()
	bin := t.TempDir()
	logPath = filepath.Join(bin, "calls.log")
	script := `#!/bin/sh
[ "$1" = get ] || { echo "unexpected action $1" >&2; exit 2; }
read -r server
echo "$server" >> '` + logPath + `'
case "$server" in
  helper.example.com) echo '{"ServerURL":"helper.example.com","Username":"helper-user","Secret":"helper-pass"}' ;;
  token.example.com) echo '{"ServerURL":"token.example.com","Username":"<token>","Secret":"refresh-token"}' ;;
  https://index.docker.io/v1/) echo '{"Username":"hub-user","Secret":"hub-pass"}' ;;
  store.example.com:5000) echo '{"Username":"store-user","Secret":"store-pass"}' ;;
  blank.example.com) echo '{"Username":"","Secret":""}' ;;
  broken.example.com) echo '` + helperSecret + `'; echo '` + helperSecret + `' >&2; exit 1 ;;
  garbage.example.com) echo 'not json ` + helperSecret + `' ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-x"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return logPath
}

// TestKeychainCredentialHelpers sets PATH, so it cannot run in parallel.
func TestKeychainCredentialHelpers(t *testing.T) {
	logPath := fakeHelper(t)
	dockerDir := t.TempDir()
	writeFile(t, dockerDir, "config.json", `{
  "auths": {
    "notfound.example.com": {"auth": "`+basicAuth("file-user", "file-pass")+`"},
    "helper.example.com": {"auth": "`+basicAuth("shadowed", "by-helper")+`"},
    "inline.example.com": {"username": "inline-user", "password": "inline-pass"},
    "https://index.docker.io/v1/": {}
  },
  "credHelpers": {
    "helper.example.com": "x",
    "https://token.example.com": "x",
    "notfound.example.com": "x",
    "broken.example.com": "x",
    "garbage.example.com": "x",
    "blank.example.com": "x",
    "absent.example.com": "absent"
  },
  "credsStore": "x"
}`)
	kc, err := NewKeychain(Options{DockerConfig: dockerDir})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		target string
		want   authn.AuthConfig
	}{
		{"credHelper for the host", "helper.example.com/ns/app", basic("helper-user", "helper-pass")},
		{"credHelper asked again is cached", "helper.example.com/other/app", basic("helper-user", "helper-pass")},
		{"<token> user is an identity token", "token.example.com/ns/app", authn.AuthConfig{IdentityToken: "refresh-token"}},
		{"helper without credentials falls back to auths", "notfound.example.com/ns/app", basic("file-user", "file-pass")},
		{"blank helper answer falls back to the store, which has none", "blank.example.com/ns/app", authn.AuthConfig{}},
		{"auths entry before credsStore", "inline.example.com/ns/app", basic("inline-user", "inline-pass")},
		{"credsStore with Docker Hub's server URL", "library/busybox", basic("hub-user", "hub-pass")},
		{"credsStore with host and port", "store.example.com:5000/ns/app", basic("store-user", "store-pass")},
		{"credsStore without credentials is anonymous", "unknown.example.com/ns/app", authn.AuthConfig{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resolve(t, kc, tt.target); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("resolve(%s) = %+v, want %+v", tt.target, got, tt.want)
			}
		})
	}

	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "helper.example.com\n"); n != 1 {
		t.Errorf("helper asked %d times about helper.example.com, want 1 (cached):\n%s", n, data)
	}

	errTests := []struct {
		name   string
		target string
		want   string
	}{
		{"failing helper", "broken.example.com/ns/app", "running docker-credential-x get for broken.example.com: exit status 1"},
		{"helper printing garbage", "garbage.example.com/ns/app", "docker-credential-x get for garbage.example.com printed"},
		{"helper not installed", "absent.example.com/ns/app", "docker-credential-absent"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := kc.Resolve(resource(t, tt.target))
			if err == nil {
				t.Fatal("Resolve succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), helperSecret) {
				t.Errorf("error %q shows what the helper printed", err)
			}
		})
	}
}

func TestKeychainHelperStopsWithContext(t *testing.T) {
	fakeHelper(t)
	dockerDir := t.TempDir()
	writeFile(t, dockerDir, "config.json", `{"credsStore": "x"}`)
	kc, err := NewKeychain(Options{DockerConfig: dockerDir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := authn.Resolve(ctx, kc, resource(t, "helper.example.com/ns/app")); err == nil {
		t.Error("ResolveContext with a cancelled context succeeded, want an error")
	}
}

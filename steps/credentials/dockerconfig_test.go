package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestDockerConfigResolvesAsTheFiles: the config.json NewDockerConfig
// writes, read alone (as a pod reads the Secret), gives every repository the
// credentials the files give it here; ${ENV} is resolved now, from the
// Getenv passed in.
func TestDockerConfigResolvesAsTheFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dockerDir := filepath.Join(dir, "docker")
	writeFile(t, dockerDir, "config.json", `{
  "auths": {
    "https://index.docker.io/v1/": {"auth": "`+basicAuth("hubuser", "hub:pass")+`"},
    "target.example.com": {"username": "docker-target", "password": "from-docker-config"},
    "token.example.com": {"identitytoken": "id-token"},
    "bearer.example.com": {"registrytoken": "reg-token"},
    "empty.example.com": {}
  }
}`)
	authFile := writeFile(t, dir, "auth/config.json", `{
  "auths": {
    "target.example.com": {"auth": "`+basicAuth("authfile-target", "from-authfile")+`"},
    "podman.example.com/team": {"username": "podman-team", "password": "pt"},
    "podman.example.com": {"username": "podman", "password": "p"}
  }
}`)
	authJSON := writeFile(t, dir, "auth.json", `{
  "target.example.com/migrator": {"username": "migrator", "password": "${MIGRATOR_PASSWORD}"},
  "legacy.example.com:5000": {"username": "${LEGACY_USER}", "password": "$LEGACY_PASSWORD", "insecure": true}
}`)
	env := map[string]string{"MIGRATOR_PASSWORD": "m-from-env", "LEGACY_USER": "legacy", "LEGACY_PASSWORD": "l-from-env"}
	o := Options{DockerConfig: dockerDir, AuthFile: authFile, AuthJSON: authJSON, Getenv: func(k string) string { return env[k] }}
	here, err := NewKeychain(o)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := NewDockerConfig(context.Background(), o, []string{"legacy.example.com:5000", "new.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"bearer.example.com", "docker.io", "legacy.example.com:5000", "podman.example.com", "podman.example.com/team",
		"target.example.com", "target.example.com/migrator", "token.example.com"}
	if !reflect.DeepEqual(dc.Keys, wantKeys) {
		t.Errorf("keys %v, want %v (empty entries and registries without credentials left out)", dc.Keys, wantKeys)
	}
	if strings.Contains(string(dc.JSON), "${") || strings.Contains(string(dc.JSON), "$LEGACY") {
		t.Errorf("an environment reference was carried instead of its value: %s", dc.JSON)
	}
	var parsed struct{ Auths map[string]map[string]string }
	if err := json.Unmarshal(dc.JSON, &parsed); err != nil || len(parsed.Auths) != len(wantKeys) {
		t.Fatalf("config.json %v: %v", parsed, err)
	}
	pod := filepath.Join(dir, "pod")
	writeFile(t, pod, "config.json", string(dc.JSON))
	there, err := NewKeychain(Options{DockerConfig: pod})
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{
		"target.example.com/migrator/app", "target.example.com/other/app", "podman.example.com/team/app",
		"podman.example.com/other/app", "library/busybox", "registry-1.docker.io/team/app",
		"legacy.example.com:5000/ns/app", "token.example.com/ns/app", "bearer.example.com/ns/app",
		"empty.example.com/ns/app", "new.example.com/ns/app", "ghcr.io/x/y",
	} {
		if got, want := resolve(t, there, target), resolve(t, here, target); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the Secret's config.json gives %+v, the files give %+v", target, got, want)
		}
	}
	if got := resolve(t, there, "legacy.example.com:5000/ns/app"); got != basic("legacy", "l-from-env") {
		t.Errorf("${ENV} in auth.json: %+v", got)
	}
}

// TestDockerConfigAsksHelpersOnlyForTheRegistriesNamed: credential
// helpers and stores cannot run in a pod, so their answers are resolved
// here, for the migration's registries only; other hosts the config names
// a helper for are not asked. Sets PATH: not parallel.
func TestDockerConfigAsksHelpersOnlyForTheRegistriesNamed(t *testing.T) {
	logPath := fakeHelper(t)
	dockerDir := t.TempDir()
	writeFile(t, dockerDir, "config.json", `{
  "credHelpers": {"helper.example.com": "x", "token.example.com": "x"},
  "credsStore": "x"
}`)
	dc, err := NewDockerConfig(context.Background(), Options{DockerConfig: dockerDir}, []string{"helper.example.com", "store.example.com:5000", "elsewhere.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"helper.example.com", "store.example.com:5000"}; !reflect.DeepEqual(dc.Keys, want) {
		t.Errorf("keys %v, want %v", dc.Keys, want)
	}
	pod := t.TempDir()
	writeFile(t, pod, "config.json", string(dc.JSON))
	there, err := NewKeychain(Options{DockerConfig: pod})
	if err != nil {
		t.Fatal(err)
	}
	if got := resolve(t, there, "helper.example.com/ns/app"); got != basic("helper-user", "helper-pass") {
		t.Errorf("helper.example.com: %+v", got)
	}
	if got := resolve(t, there, "store.example.com:5000/ns/app"); got != basic("store-user", "store-pass") {
		t.Errorf("store.example.com:5000: %+v", got)
	}
	calls, _ := os.ReadFile(logPath)
	if strings.Contains(string(calls), "token.example.com") {
		t.Errorf("a helper was asked about a registry the migration does not use:\n%s", calls)
	}
}

func TestDockerConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	authJSON := writeFile(t, dir, "auth.json", `{"legacy.example.com": {"username": "u", "password": "${NOT_SET}"}}`)
	_, err := NewDockerConfig(context.Background(), Options{AuthJSON: authJSON, Getenv: func(string) string { return "" }}, nil)
	if err == nil || !strings.Contains(err.Error(), "NOT_SET") {
		t.Errorf("unset variable: %v, want an error naming it", err)
	}
	empty := writeFile(t, dir, "config.json", `{"auths": {"legacy.example.com": {}}}`)
	_, err = NewDockerConfig(context.Background(), Options{AuthFile: empty}, []string{"legacy.example.com"})
	if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), empty) {
		t.Errorf("no credentials: %v, want ErrNoCredentials naming %s", err, empty)
	}
	broken := writeFile(t, dir, "broken.json", `{"auths": {"legacy.example.com": {"auth": "`+secret+`"}}}`)
	_, err = NewDockerConfig(context.Background(), Options{AuthFile: broken}, nil)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("malformed file: %v, want an error without the secret", err)
	}
}

package credentials

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// resource parses a repository ("host/ns/repo") or, without a slash, a
// registry.
func resource(t *testing.T, s string) authn.Resource {
	t.Helper()
	if !strings.Contains(s, "/") {
		r, err := name.NewRegistry(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r, err := name.NewRepository(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// resolve returns the credentials the keychain gives for s (empty for
// anonymous).
func resolve(t *testing.T, kc authn.Keychain, s string) authn.AuthConfig {
	t.Helper()
	a, err := authn.Resolve(context.Background(), kc, resource(t, s))
	if err != nil {
		t.Fatalf("resolving %s: %v", s, err)
	}
	cfg, err := authn.Authorization(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	return authn.AuthConfig{Username: cfg.Username, Password: cfg.Password, IdentityToken: cfg.IdentityToken, RegistryToken: cfg.RegistryToken}
}

func basic(user, pass string) authn.AuthConfig {
	return authn.AuthConfig{Username: user, Password: pass}
}

func TestKeychainAuthJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	authJSON := writeFile(t, dir, "auth.json", `{
  "quay.io/coreos": { },
  "swr.example.com": {"username": "reg-user", "password": "reg-pass", "insecure": true},
  "swr.example.com/team": {"username": "${TEAM_USER}", "password": "$TEAM_PASS"},
  "swr.example.com/team/special": {"username": "special", "password": "sp"},
  "https://registry.example.com:5000/": {"username": "u5000", "password": "p$ss${word}"},
  "docker.io": {"username": "hub", "password": "hubpass"},
  "literal.example.com": {"username": "user$1", "password": "pa$$word"}
}`)
	env := map[string]string{"TEAM_USER": "team-user", "TEAM_PASS": "team-pass", "word": "unused"}
	kc, err := NewKeychain(Options{AuthJSON: authJSON, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	noEnv, err := NewKeychain(Options{AuthJSON: authJSON})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		keychain authn.Keychain
		target   string
		want     authn.AuthConfig
	}{
		{"registry key", kc, "swr.example.com/other/app", basic("reg-user", "reg-pass")},
		{"registry resource", kc, "swr.example.com", basic("reg-user", "reg-pass")},
		{"namespace key wins, expanded from the environment", kc, "swr.example.com/team/app", basic("team-user", "team-pass")},
		{"deeper key wins", kc, "swr.example.com/team/special/app", basic("special", "sp")},
		{"namespace prefix is a path prefix", kc, "swr.example.com/teamx/app", basic("reg-user", "reg-pass")},
		{"empty entry is anonymous", kc, "quay.io/coreos/etcd", authn.AuthConfig{}},
		{"unknown registry is anonymous", kc, "ghcr.io/x/y", authn.AuthConfig{}},
		{"scheme in key; a $ inside a value stays literal", kc, "registry.example.com:5000/ns/app", basic("u5000", "p$ss${word}")},
		{"docker.io key for Docker Hub", kc, "library/busybox", basic("hub", "hubpass")},
		{"docker.io key for index.docker.io", kc, "index.docker.io/library/busybox", basic("hub", "hubpass")},
		{"nil Getenv leaves references as written", noEnv, "swr.example.com/team/app", basic("${TEAM_USER}", "$TEAM_PASS")},
		{"values that are not one reference stay literal", kc, "literal.example.com/a/b", basic("user$1", "pa$$word")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := resolve(t, tt.keychain, tt.target); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("resolve(%s) = %+v, want %+v", tt.target, got, tt.want)
			}
		})
	}
}

func TestKeychainConfigFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dockerDir := filepath.Join(dir, "docker")
	writeFile(t, dockerDir, "config.json", `{
  "auths": {
    "https://index.docker.io/v1/": {"auth": "`+basicAuth("hubuser", "hub:pass")+`"},
    "legacy.example.com": {"auth": "`+base64.RawStdEncoding.EncodeToString([]byte("legacy:unpadded"))+`"},
    "target.example.com": {"username": "docker-target", "password": "from-docker-config"},
    "http://plain.example.com:5000": {"username": "plain", "password": "pp"},
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
	authJSON := writeFile(t, dir, "auth.json", `{"target.example.com/migrator": {"username": "migrator", "password": "m"}}`)

	all, err := NewKeychain(Options{DockerConfig: dockerDir, AuthFile: authFile, AuthJSON: authJSON})
	if err != nil {
		t.Fatal(err)
	}
	dockerOnly, err := NewKeychain(Options{DockerConfig: dockerDir})
	if err != nil {
		t.Fatal(err)
	}
	noConfig, err := NewKeychain(Options{DockerConfig: filepath.Join(dir, "no-such-folder")})
	if err != nil {
		t.Fatal(err)
	}
	none, err := NewKeychain(Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		keychain authn.Keychain
		target   string
		want     authn.AuthConfig
	}{
		{"auth.json before the auth file", all, "target.example.com/migrator/app", basic("migrator", "m")},
		{"auth file before DOCKER_CONFIG", all, "target.example.com/other/app", basic("authfile-target", "from-authfile")},
		{"DOCKER_CONFIG alone", dockerOnly, "target.example.com/other/app", basic("docker-target", "from-docker-config")},
		{"podman namespace key", all, "podman.example.com/team/app", basic("podman-team", "pt")},
		{"podman registry key", all, "podman.example.com/other/app", basic("podman", "p")},
		{"Docker Hub's v1 URL key, password with a colon", all, "library/busybox", basic("hubuser", "hub:pass")},
		{"Docker Hub alias", all, "registry-1.docker.io/team/app", basic("hubuser", "hub:pass")},
		{"unpadded base64 auth", all, "legacy.example.com/ns/app", basic("legacy", "unpadded")},
		{"scheme and port in key", all, "plain.example.com:5000/ns/app", basic("plain", "pp")},
		{"identity token", all, "token.example.com/ns/app", authn.AuthConfig{IdentityToken: "id-token"}},
		{"registry token", all, "bearer.example.com/ns/app", authn.AuthConfig{RegistryToken: "reg-token"}},
		{"empty entry is anonymous", all, "empty.example.com/ns/app", authn.AuthConfig{}},
		{"unknown registry is anonymous", all, "ghcr.io/x/y", authn.AuthConfig{}},
		{"folder without config.json is anonymous", noConfig, "target.example.com/a/b", authn.AuthConfig{}},
		{"no sources is anonymous", none, "target.example.com/a/b", authn.AuthConfig{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := resolve(t, tt.keychain, tt.target); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("resolve(%s) = %+v, want %+v", tt.target, got, tt.want)
			}
		})
	}
}

// secret is the password of the malformed files below; no error may show it.
const secret = "S3cr3t-Pa55w0rd"

func TestNewKeychainErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, content string) string { return writeFile(t, dir, name, content) }
	tests := []struct {
		name string
		opts Options
		want string // part of the error
	}{
		{
			name: "auth.json syntax error",
			opts: Options{AuthJSON: file("syntax.json", "{\n  \"h.io\": {\"username\": \"u\", \"password\": \""+secret+"\" \"insecure\": true}\n}")},
			want: "invalid JSON at line 2",
		},
		{
			name: "auth.json unquoted password",
			opts: Options{AuthJSON: file("unquoted.json", `{"h.io": {"password": `+secret+`}}`)},
			want: "invalid JSON at line 1",
		},
		{
			name: "auth.json numeric password",
			opts: Options{AuthJSON: file("number.json", `{"h.io": {"username": "u", "password": 31415926535}}`)},
			want: `entry "h.io": field "password" must be a string`,
		},
		{
			name: "auth.json entry not an object",
			opts: Options{AuthJSON: file("entry.json", `{"h.io": "`+secret+`"}`)},
			want: `entry "h.io": want an object`,
		},
		{
			name: "auth.json insecure not a boolean",
			opts: Options{AuthJSON: file("insecure.json", `{"h.io": {"password": "`+secret+`", "insecure": "yes"}}`)},
			want: `field "insecure" must be true or false`,
		},
		{
			name: "auth.json not an object",
			opts: Options{AuthJSON: file("array.json", `["`+secret+`"]`)},
			want: "want an object",
		},
		{
			name: "auth.json missing",
			opts: Options{AuthJSON: filepath.Join(dir, "missing.json")},
			want: "missing.json: no such file",
		},
		{
			name: "auth.json variable not set",
			opts: Options{AuthJSON: file("env.json", `{"h.io": {"username": "u", "password": "${REGISTRY_PASSWORD}"}}`), Getenv: func(string) string { return "" }},
			want: `password of "h.io" refers to environment variable REGISTRY_PASSWORD, which is empty or not set`,
		},
		{
			name: "auth file missing",
			opts: Options{AuthFile: filepath.Join(dir, "nope", "config.json")},
			want: "no such file",
		},
		{
			name: "config.json syntax error",
			opts: Options{AuthFile: file("bad-config.json", `{"auths": {"h.io": {"password": "`+secret+`",}}}`)},
			want: "invalid JSON at line 1",
		},
		{
			name: "config.json auth not base64",
			opts: Options{AuthFile: file("bad-auth.json", `{"auths": {"h.io": {"auth": "`+secret+`!"}}}`)},
			want: `auths "h.io": field "auth" is not base64 of username:password`,
		},
		{
			name: "config.json auth without colon",
			opts: Options{AuthFile: file("no-colon.json", `{"auths": {"h.io": {"auth": "`+base64.StdEncoding.EncodeToString([]byte(secret))+`"}}}`)},
			want: `field "auth" is not base64 of username:password`,
		},
		{
			name: "config.json helper with a path",
			opts: Options{DockerConfig: filepath.Dir(file("helper/config.json", `{"credHelpers": {"h.io": "../../bin/sh"}}`))},
			want: `credHelpers "h.io": invalid credential helper name`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewKeychain(tt.opts)
			if err == nil {
				t.Fatal("NewKeychain succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			for _, leak := range []string{secret, "31415926535"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q shows the secret", err)
				}
			}
		})
	}
}

func TestReadAuthJSONInsecure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "auth.json", `{
  "quay.io/coreos": { },
  "http://legacy.example.com:5000/": {"insecure": true},
  "swr.example.com/team": {"username": "u", "password": "p", "insecure": true},
  "swr.example.com": {"insecure": false}
}`)
	tests := []struct {
		name    string
		path    string
		want    map[string]bool
		wantErr string
	}{
		{
			name: "flags per key",
			path: path,
			want: map[string]bool{
				"quay.io/coreos":          false,
				"legacy.example.com:5000": true,
				"swr.example.com/team":    true,
				"swr.example.com":         false,
			},
		},
		{name: "missing file", path: filepath.Join(dir, "nope.json"), wantErr: "nope.json"},
		{name: "malformed file", path: writeFile(t, dir, "bad.json", `{"h.io": {"insecure": 1}}`), wantErr: `field "insecure" must be true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ReadAuthJSONInsecure(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNormalizeKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ key, want string }{
		{"registry.example.com", "registry.example.com"},
		{"Registry.Example.com:5000/", "registry.example.com:5000"},
		{"https://index.docker.io/v1/", "docker.io"},
		{"index.docker.io/v1", "docker.io"},
		{"registry-1.docker.io", "docker.io"},
		{"docker.io/library", "docker.io/library"},
		{"https://quay.io/some/path", "quay.io"},
		{"quay.io/coreos/", "quay.io/coreos"},
		{"  http://legacy:5000  ", "legacy:5000"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			if got := normalizeKey(tt.key); got != tt.want {
				t.Errorf("normalizeKey(%q) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}

// WithDefaults finds credentials where docker, podman and skopeo look:
// explicit paths win, then $REGISTRY_AUTH_FILE, $DOCKER_CONFIG and
// $HOME/.docker.
func TestWithDefaultsResolvesLikeDockerAndPodman(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	got := WithDefaults(Options{Getenv: env(map[string]string{"REGISTRY_AUTH_FILE": "/run/auth.json", "DOCKER_CONFIG": "/cfg", "HOME": "/home/u"})})
	if got.AuthFile != "/run/auth.json" || got.DockerConfig != "/cfg" {
		t.Errorf("from the environment: %+v", got)
	}
	got = WithDefaults(Options{Getenv: env(map[string]string{"HOME": "/home/u"})})
	if got.AuthFile != "" || got.DockerConfig != "/home/u/.docker" {
		t.Errorf("HOME only: %+v", got)
	}
	got = WithDefaults(Options{AuthFile: "/a", DockerConfig: "/d", Getenv: env(map[string]string{"REGISTRY_AUTH_FILE": "/x", "DOCKER_CONFIG": "/y"})})
	if got.AuthFile != "/a" || got.DockerConfig != "/d" {
		t.Errorf("explicit paths must win: %+v", got)
	}
	if got := WithDefaults(Options{}); got.DockerConfig != "" || got.AuthFile != "" {
		t.Errorf("no Getenv, no defaults: %+v", got)
	}
}

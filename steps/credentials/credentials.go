// Package credentials resolves registry credentials and TLS settings from
// the files the seeds use: image-migrator's auth.json, a docker/podman
// config.json (REGISTRY_AUTH_FILE, DOCKER_CONFIG) with its credential
// helpers, and docker's certs.d folders.
//
// Nothing here reads the environment or prints: paths and the Getenv
// function are passed in by the caller. No error carries a username,
// password or token.
package credentials

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Options say where credentials come from.
type Options struct {
	// DockerConfig is a folder holding config.json, as DOCKER_CONFIG. Empty
	// means none (the caller passes $HOME/.docker to get docker's default);
	// a folder without config.json holds no credentials.
	DockerConfig string
	// AuthFile is a config.json path, as REGISTRY_AUTH_FILE (docker or
	// podman format; podman's registry/namespace keys work). It must exist
	// when named.
	AuthFile string
	// AuthJSON is image-migrator's auth.json path. It must exist when named.
	AuthJSON string
	// Getenv expands a username or password written as ${NAME} or $NAME in
	// auth.json; nil leaves them as written.
	Getenv func(string) string
}

// WithDefaults fills what o leaves empty the way docker, podman and skopeo
// do, from o.Getenv: AuthFile from $REGISTRY_AUTH_FILE, DockerConfig from
// $DOCKER_CONFIG, else $HOME/.docker. It is the one place the step
// binaries and the regmigrate CLI resolve where credentials are.
func WithDefaults(o Options) Options {
	if o.Getenv == nil {
		return o
	}
	if o.AuthFile == "" {
		o.AuthFile = o.Getenv("REGISTRY_AUTH_FILE")
	}
	if o.DockerConfig == "" {
		o.DockerConfig = o.Getenv("DOCKER_CONFIG")
	}
	if o.DockerConfig == "" {
		if home := o.Getenv("HOME"); home != "" {
			o.DockerConfig = filepath.Join(home, ".docker")
		}
	}
	return o
}

// NewKeychain reads the credential files once and returns a keychain that
// resolves, for a registry or repository, the first match of:
//
//  1. image-migrator's auth.json: the most specific key among "registry"
//     and "registry/namespace[/...]" (an entry without username and
//     password gives no credentials and resolution goes on);
//  2. AuthFile, then 3. DockerConfig's config.json, each as docker reads
//     it: credHelpers for the host, then the most specific auths entry
//     (auth in base64, username/password, identitytoken, registrytoken),
//     then credsStore. Helpers run as `docker-credential-<name> get`.
//
// Anything else is anonymous. Keys may carry a scheme ("https://host") and
// docker.io's aliases (index.docker.io, registry-1.docker.io,
// "https://index.docker.io/v1/") are one registry.
//
// The returned keychain also implements authn.ContextKeychain, so helpers
// stop with the caller's context; helper answers are cached.
func NewKeychain(o Options) (authn.Keychain, error) {
	k := &keychain{helpers: &helperRunner{cache: map[string]helperResult{}}}
	if o.AuthJSON != "" {
		entries, err := readAuthJSON(o.AuthJSON)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			c := credential{key: normalizeKey(e.key)}
			if c.cfg.Username, err = expand(e.Username, "username", e.key, o.Getenv); err != nil {
				return nil, fmt.Errorf("image-migrator auth file %s: %w", o.AuthJSON, err)
			}
			if c.cfg.Password, err = expand(e.Password, "password", e.key, o.Getenv); err != nil {
				return nil, fmt.Errorf("image-migrator auth file %s: %w", o.AuthJSON, err)
			}
			k.authJSON = append(k.authJSON, c)
		}
		sortSpecificFirst(k.authJSON)
	}
	var paths []string
	if o.AuthFile != "" {
		paths = append(paths, filepath.Clean(o.AuthFile))
	}
	if o.DockerConfig != "" {
		if p := filepath.Join(o.DockerConfig, "config.json"); len(paths) == 0 || paths[0] != p {
			paths = append(paths, p)
		}
	}
	for i, p := range paths {
		cf, err := readConfigFile(p)
		if errors.Is(err, fs.ErrNotExist) && (i > 0 || o.AuthFile == "") {
			continue // DOCKER_CONFIG without config.json: no credentials
		}
		if err != nil {
			return nil, err
		}
		k.files = append(k.files, cf)
	}
	return k, nil
}

// credential is one entry of a credential file.
type credential struct {
	key string // normalized: host or host/path
	cfg authn.AuthConfig
}

func (c credential) empty() bool {
	return c.cfg.Username == "" && c.cfg.Password == "" && c.cfg.Auth == "" &&
		c.cfg.IdentityToken == "" && c.cfg.RegistryToken == ""
}

// sortSpecificFirst orders credentials so the first match is the most
// specific one.
func sortSpecificFirst(cs []credential) {
	sort.SliceStable(cs, func(i, j int) bool { return len(cs[i].key) > len(cs[j].key) })
}

// match returns the most specific credential whose key is the target or a
// path prefix of it.
func match(cs []credential, target string) (credential, bool) {
	for _, c := range cs {
		if c.key == target || strings.HasPrefix(target, c.key+"/") {
			return c, true
		}
	}
	return credential{}, false
}

type keychain struct {
	authJSON []credential
	files    []*configFile
	helpers  *helperRunner
}

// Resolve implements authn.Keychain.
func (k *keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), r)
}

// ResolveContext implements authn.ContextKeychain.
func (k *keychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	host := canonicalHost(r.RegistryStr())
	target := host
	if rest, ok := strings.CutPrefix(r.String(), r.RegistryStr()); ok && strings.HasPrefix(rest, "/") {
		target += rest
	}
	serverURL := r.RegistryStr()
	if host == dockerHub {
		serverURL = authn.DefaultAuthKey
	}
	cfg, ok, err := k.lookup(ctx, host, target, serverURL)
	if err != nil {
		return nil, err
	}
	if !ok {
		return authn.Anonymous, nil
	}
	if a := k.helpers.answered(k.files, host, serverURL, cfg); a != nil {
		return a, nil
	}
	return authn.FromConfig(cfg), nil
}

// lookup resolves a target (host or host/path; host canonical) in the
// keychain's order; serverURL is what credential helpers are asked about.
func (k *keychain) lookup(ctx context.Context, host, target, serverURL string) (authn.AuthConfig, bool, error) {
	if c, ok := match(k.authJSON, target); ok && !c.empty() {
		return c.cfg, true, nil
	}
	for _, f := range k.files {
		cfg, ok, err := f.lookup(ctx, k.helpers, host, target, serverURL)
		if err != nil || ok {
			return cfg, ok, err
		}
	}
	return authn.AuthConfig{}, false, nil
}

// dockerHub is the canonical name of Docker Hub's registry in keys.
const dockerHub = "docker.io"

// canonicalHost lowercases a host and folds Docker Hub's aliases.
func canonicalHost(h string) string {
	h = strings.ToLower(h)
	switch h {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return dockerHub
	}
	return h
}

// trimScheme drops an http:// or https:// prefix and trailing slashes.
func trimScheme(k string) (rest string, hadScheme bool) {
	k = strings.TrimSpace(k)
	for _, p := range []string{"https://", "http://"} {
		if after, ok := strings.CutPrefix(k, p); ok {
			k, hadScheme = after, true
			break
		}
	}
	return strings.TrimRight(k, "/"), hadScheme
}

// normalizeKey turns a credential key into host[/path]: a URL key
// ("https://index.docker.io/v1/") keeps only its host, as docker does; a
// plain key keeps its path, as podman's registry/namespace keys.
func normalizeKey(k string) string {
	k, hadScheme := trimScheme(k)
	host, path, _ := strings.Cut(k, "/")
	if hadScheme || path == "v1" || path == "v2" {
		path = ""
	}
	host = canonicalHost(host)
	if path == "" {
		return host
	}
	return host + "/" + path
}

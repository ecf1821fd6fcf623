package credentials

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// ErrNoCredentials: the files named hold no credentials for anything.
var ErrNoCredentials = errors.New("no credentials")

// DockerConfig is a docker config.json that carries credentials resolved
// on this machine to a place that has neither this machine's environment
// nor its credential helpers (a pod): the content of a
// kubernetes.io/dockerconfigjson Secret.
type DockerConfig struct {
	// JSON is the config.json: {"auths": {KEY: {"auth": ...}}}. It holds
	// secrets: never print or log it.
	JSON []byte
	// Keys are its auths keys (host or host/path), sorted; they hold no
	// secret and say what the file covers.
	Keys []string
}

// dockerAuth is an auths entry as docker writes it.
type dockerAuth struct {
	Auth          string `json:"auth,omitempty"` // base64 of username:password
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// NewDockerConfig resolves the credentials o names into one config.json:
// an entry for every key of image-migrator's auth.json (${ENV} expanded
// with o.Getenv, now), for every auths key of AuthFile and DockerConfig's
// config.json, and for each of hosts (registries as HOST[:PORT]) what a
// credential helper or store gives it. Each entry holds what
// NewKeychain(o) resolves for its key, so that a keychain reading the
// result alone gives a repository the credentials this machine gives it:
// both take the most specific key that matches, and the files' order
// decides each key's value. (One case differs: an empty auth.json entry
// that no file covers either is left out, so under it the pod uses a less
// specific key where this machine goes anonymous.) Keys that resolve to no
// credentials are left out; none at all is ErrNoCredentials. Errors carry
// no secret.
func NewDockerConfig(ctx context.Context, o Options, hosts []string) (DockerConfig, error) {
	kc, err := NewKeychain(o)
	if err != nil {
		return DockerConfig{}, err
	}
	k := kc.(*keychain)
	keys := map[string]bool{}
	for _, c := range k.authJSON {
		keys[c.key] = true
	}
	for _, f := range k.files {
		for _, c := range f.auths {
			keys[c.key] = true
		}
	}
	for _, h := range hosts {
		if h = strings.TrimSpace(h); h != "" {
			keys[normalizeKey(h)] = true
		}
	}
	auths := map[string]dockerAuth{}
	var covered []string
	for _, key := range sortedKeys(keys) {
		host, _, _ := strings.Cut(key, "/")
		serverURL := host
		if host == dockerHub {
			serverURL = authn.DefaultAuthKey
		}
		cfg, ok, err := k.lookup(ctx, host, key, serverURL)
		if err != nil {
			return DockerConfig{}, err
		}
		a := dockerAuth{IdentityToken: cfg.IdentityToken, RegistryToken: cfg.RegistryToken}
		if cfg.Username != "" || cfg.Password != "" {
			a.Auth = base64.StdEncoding.EncodeToString([]byte(cfg.Username + ":" + cfg.Password))
		} else if cfg.Auth != "" {
			a.Auth = cfg.Auth
		}
		if !ok || a == (dockerAuth{}) {
			continue
		}
		auths[key] = a
		covered = append(covered, key)
	}
	if len(auths) == 0 {
		return DockerConfig{}, fmt.Errorf("%w in %s", ErrNoCredentials, strings.Join(o.files(), ", "))
	}
	sort.Strings(covered)
	b, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		return DockerConfig{}, err
	}
	return DockerConfig{JSON: b, Keys: covered}, nil
}

// files names the credential files o reads, for messages.
func (o Options) files() []string {
	var fs []string
	for _, f := range []string{o.AuthJSON, o.AuthFile} {
		if f != "" {
			fs = append(fs, f)
		}
	}
	if o.DockerConfig != "" {
		fs = append(fs, o.DockerConfig+"/config.json")
	}
	if len(fs) == 0 {
		return []string{"no file"}
	}
	return fs
}

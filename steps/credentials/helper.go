package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// HelperMaxAge is how long a credential helper's answer is used before
// the helper is asked again. Helpers say nothing of a lifetime, and the
// tokens some hand out lapse (docker-credential-ecr-login's after 12 h,
// gcr's and acr's after an hour); a registry refusing an answer also has
// the helper asked again (helperAuth.Invalidate).
const HelperMaxAge = 30 * time.Minute

// helperRunner runs docker credential helpers and caches their answers, so
// a helper runs once per server however many repositories ask (within
// HelperMaxAge).
type helperRunner struct {
	mu    sync.Mutex // held while a helper runs: one prompt at a time
	cache map[string]helperResult
	now   func() time.Time // nil: time.Now
}

type helperResult struct {
	cfg   authn.AuthConfig
	found bool
	at    time.Time // when the helper answered
}

func (h *helperRunner) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

// forget drops a cached answer (a registry refused it) if it is still the
// one given at that time.
func (h *helperRunner) forget(name, serverURL string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := name + "\x00" + serverURL
	if r, ok := h.cache[key]; ok && r.at.Equal(at) {
		delete(h.cache, key)
	}
}

// helperAuth is a credential a helper answered: it expires HelperMaxAge
// after the answer and can be invalidated (registry.Expiring,
// registry.Invalidator).
type helperAuth struct {
	cfg       authn.AuthConfig
	expiresAt time.Time
	drop      func()
}

func (a *helperAuth) Authorization() (*authn.AuthConfig, error) {
	cfg := a.cfg
	return &cfg, nil
}
func (a *helperAuth) ExpiresAt() time.Time { return a.expiresAt }
func (a *helperAuth) Invalidate()          { a.drop() }

// get runs `docker-credential-<name> get` with the server URL on stdin, as
// docker does. A helper that knows no credentials for the server (it says
// "credentials not found", or answers with empty fields) is not an error.
// Errors name the helper and server, never what the helper printed.
func (h *helperRunner) get(ctx context.Context, name, serverURL string) (authn.AuthConfig, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := name + "\x00" + serverURL
	if r, ok := h.cache[key]; ok && h.clock().Sub(r.at) < HelperMaxAge {
		return r.cfg, r.found, nil
	}
	program := "docker-credential-" + name
	cmd := exec.CommandContext(ctx, program, "get")
	cmd.Stdin = strings.NewReader(serverURL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(stdout.String()+stderr.String(), "credentials not found") {
			h.cache[key] = helperResult{at: h.clock()}
			return authn.AuthConfig{}, false, nil
		}
		return authn.AuthConfig{}, false, fmt.Errorf("running %s get for %s: %w", program, serverURL, err)
	}
	var resp struct {
		Username string `json:"Username"`
		Secret   string `json:"Secret"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return authn.AuthConfig{}, false, fmt.Errorf("%s get for %s printed %d bytes that are not credentials JSON", program, serverURL, stdout.Len())
	}
	r := helperResult{at: h.clock()}
	switch {
	case resp.Username == "" && resp.Secret == "":
	case resp.Username == "<token>":
		r.cfg, r.found = authn.AuthConfig{IdentityToken: resp.Secret}, true
	default:
		r.cfg, r.found = authn.AuthConfig{Username: resp.Username, Password: resp.Secret}, true
	}
	h.cache[key] = r
	return r.cfg, r.found, nil
}

// answered returns cfg as a helperAuth when a helper of the files (the
// host's credHelpers entry, or a credsStore) gave it, nil otherwise.
func (h *helperRunner) answered(files []*configFile, host, serverURL string, cfg authn.AuthConfig) authn.Authenticator {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range files {
		for _, name := range []string{f.credHelpers[host], f.credsStore} {
			if name == "" {
				continue
			}
			r, ok := h.cache[name+"\x00"+serverURL]
			if ok && r.found && r.cfg == cfg {
				name, at := name, r.at
				return &helperAuth{cfg: cfg, expiresAt: at.Add(HelperMaxAge), drop: func() { h.forget(name, serverURL, at) }}
			}
		}
	}
	return nil
}

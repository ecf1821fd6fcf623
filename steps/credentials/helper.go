package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
)

// helperRunner runs docker credential helpers and caches their answers, so
// a helper runs once per server however many repositories ask.
type helperRunner struct {
	mu    sync.Mutex // held while a helper runs: one prompt at a time
	cache map[string]helperResult
}

type helperResult struct {
	cfg   authn.AuthConfig
	found bool
}

// get runs `docker-credential-<name> get` with the server URL on stdin, as
// docker does. A helper that knows no credentials for the server (it says
// "credentials not found", or answers with empty fields) is not an error.
// Errors name the helper and server, never what the helper printed.
func (h *helperRunner) get(ctx context.Context, name, serverURL string) (authn.AuthConfig, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := name + "\x00" + serverURL
	if r, ok := h.cache[key]; ok {
		return r.cfg, r.found, nil
	}
	program := "docker-credential-" + name
	cmd := exec.CommandContext(ctx, program, "get")
	cmd.Stdin = strings.NewReader(serverURL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(stdout.String()+stderr.String(), "credentials not found") {
			h.cache[key] = helperResult{}
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
	var r helperResult
	switch {
	case resp.Username == "" && resp.Secret == "":
	case resp.Username == "<token>":
		r = helperResult{cfg: authn.AuthConfig{IdentityToken: resp.Secret}, found: true}
	default:
		r = helperResult{cfg: authn.AuthConfig{Username: resp.Username, Password: resp.Secret}, found: true}
	}
	h.cache[key] = r
	return r.cfg, r.found, nil
}

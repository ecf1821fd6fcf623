package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// migratorEntry is one entry of image-migrator's auth.json.
type migratorEntry struct {
	key      string
	Username string `json:"username"`
	Password string `json:"password"`
	Insecure bool   `json:"insecure"`
}

// readAuthJSON reads image-migrator's auth.json: an object whose keys are
// "registry" or "registry/namespace".
func readAuthJSON(path string) ([]migratorEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading image-migrator auth file: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parsing image-migrator auth file %s: %w", path, jsonProblem(data, err))
	}
	keys := sortedKeys(raw)
	entries := make([]migratorEntry, 0, len(keys))
	for _, k := range keys {
		e := migratorEntry{key: k}
		if err := json.Unmarshal(raw[k], &e); err != nil {
			return nil, fmt.Errorf("parsing image-migrator auth file %s: entry %q: %w", path, k, jsonProblem(raw[k], err))
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// ReadAuthJSONInsecure returns the insecure flag (plain HTTP registry) of
// each key of image-migrator's auth.json. Keys are as written, without a
// scheme or trailing slash: "registry" or "registry/namespace".
func ReadAuthJSONInsecure(path string) (map[string]bool, error) {
	entries, err := readAuthJSON(path)
	if err != nil {
		return nil, err
	}
	flags := make(map[string]bool, len(entries))
	for _, e := range entries {
		k, _ := trimScheme(e.key)
		flags[k] = flags[k] || e.Insecure
	}
	return flags, nil
}

// envRef is a value that is one environment reference: ${NAME} or $NAME.
var envRef = regexp.MustCompile(`^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))$`)

// expand replaces a value that is entirely ${NAME} or $NAME with the
// variable; any other value (a password holding '$') stays as written.
func expand(value, field, key string, getenv func(string) string) (string, error) {
	m := envRef.FindStringSubmatch(value)
	if getenv == nil || m == nil {
		return value, nil
	}
	name := m[1] + m[2]
	v := getenv(name)
	if v == "" {
		return "", fmt.Errorf("%s of %q refers to environment variable %s, which is empty or not set", field, key, name)
	}
	return v, nil
}

// configFile is a docker or podman config.json.
type configFile struct {
	path        string
	auths       []credential      // most specific first
	credHelpers map[string]string // canonical host -> helper name
	credsStore  string
}

// readConfigFile reads a config.json; its error wraps fs.ErrNotExist for a
// missing file.
func readConfigFile(path string) (*configFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading registry auth file: %w", err)
	}
	var raw struct {
		Auths       map[string]json.RawMessage `json:"auths"`
		CredHelpers map[string]string          `json:"credHelpers"`
		CredsStore  string                     `json:"credsStore"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parsing registry auth file %s: %w", path, jsonProblem(data, err))
	}
	cf := &configFile{path: path, credHelpers: map[string]string{}, credsStore: raw.CredsStore}
	if err := checkHelperName(raw.CredsStore); err != nil {
		return nil, fmt.Errorf("registry auth file %s: credsStore: %w", path, err)
	}
	for k, name := range raw.CredHelpers {
		if err := checkHelperName(name); err != nil {
			return nil, fmt.Errorf("registry auth file %s: credHelpers %q: %w", path, k, err)
		}
		host, _, _ := strings.Cut(normalizeKey(k), "/")
		cf.credHelpers[host] = name
	}
	byKey := map[string]credential{}
	for _, k := range sortedKeys(raw.Auths) {
		var cfg authn.AuthConfig
		if err := json.Unmarshal(raw.Auths[k], &cfg); err != nil {
			return nil, fmt.Errorf("parsing registry auth file %s: auths %q: %w", path, k, jsonProblem(raw.Auths[k], err))
		}
		c := credential{key: normalizeKey(k), cfg: cfg}
		if prev, ok := byKey[c.key]; ok && (!prev.empty() || c.empty()) {
			continue // two spellings of one registry: the first with credentials wins
		}
		byKey[c.key] = c
	}
	for _, k := range sortedKeys(byKey) {
		cf.auths = append(cf.auths, byKey[k])
	}
	sortSpecificFirst(cf.auths)
	return cf, nil
}

// lookup finds credentials for a target as docker does: the host's
// credential helper, then the auths entry, then the credentials store.
func (f *configFile) lookup(ctx context.Context, h *helperRunner, host, target, serverURL string) (authn.AuthConfig, bool, error) {
	if name := f.credHelpers[host]; name != "" {
		cfg, ok, err := h.get(ctx, name, serverURL)
		if err != nil {
			return cfg, false, fmt.Errorf("credential helper of %s in %s: %w", host, f.path, err)
		}
		if ok {
			return cfg, true, nil
		}
	}
	if c, ok := match(f.auths, target); ok && !c.empty() {
		return c.cfg, true, nil
	}
	if f.credsStore != "" {
		cfg, ok, err := h.get(ctx, f.credsStore, serverURL)
		if err != nil {
			return cfg, false, fmt.Errorf("credentials store of %s: %w", f.path, err)
		}
		return cfg, ok, nil
	}
	return authn.AuthConfig{}, false, nil
}

// checkHelperName refuses a helper name that would run another program
// than docker-credential-<name> from PATH.
func checkHelperName(name string) error {
	if strings.ContainsAny(name, `/\`) || strings.TrimSpace(name) != name {
		return fmt.Errorf("invalid credential helper name %q", name)
	}
	return nil
}

// jsonProblem describes a JSON decoding error without quoting the input,
// which may hold a password: encoding/json quotes a misplaced character or
// a number it cannot store.
func jsonProblem(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("invalid JSON at line %d", 1+bytes.Count(data[:min(int(syn.Offset), len(data))], []byte("\n")))
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Errorf("field %q must be %s", typ.Field, jsonType(typ.Type.String()))
	case errors.As(err, &typ):
		return fmt.Errorf("want %s", jsonType(typ.Type.String()))
	case strings.Contains(err.Error(), "decode auth field"):
		return errors.New(`field "auth" is not base64 of username:password`)
	}
	return errors.New("invalid JSON")
}

// jsonType names a Go type as JSON does.
func jsonType(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "struct"), strings.Contains(goType, "."):
		return "an object"
	}
	return goType
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

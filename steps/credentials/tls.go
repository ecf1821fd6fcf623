package credentials

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TLSConfig returns the TLS settings for a registry (host[:port]) from a
// docker certs.d-style folder: in <certsDir>/<registry>/, every *.crt is a
// CA certificate added to the system roots, and every *.cert with the *.key
// of the same base name is a client certificate. A *.cert without its
// *.key, or the reverse, is an error naming the file. An empty certsDir or
// a missing registry folder gives the system roots. insecure skips server
// certificate verification (client certificates are still sent).
func TLSConfig(certsDir, registry string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	if certsDir == "" {
		return cfg, nil
	}
	if registry == "" || registry == "." || registry == ".." || strings.ContainsAny(registry, `/\`) {
		return nil, fmt.Errorf("invalid registry %q: want host[:port]", registry)
	}
	dir := filepath.Join(certsDir, registry)
	files, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading certificates of %s: %w", registry, err)
	}
	for _, f := range files {
		if f.IsDir() {
			continue
		}
		name := f.Name()
		path := filepath.Join(dir, name)
		switch filepath.Ext(name) {
		case ".crt":
			if cfg.RootCAs == nil {
				if cfg.RootCAs, err = x509.SystemCertPool(); err != nil {
					cfg.RootCAs = x509.NewCertPool()
				}
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("reading CA certificate: %w", err)
			}
			if !cfg.RootCAs.AppendCertsFromPEM(data) {
				return nil, fmt.Errorf("CA certificate %s holds no PEM certificate", path)
			}
		case ".cert":
			keyPath := strings.TrimSuffix(path, ".cert") + ".key"
			pair, err := tls.LoadX509KeyPair(path, keyPath)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("client certificate %s has no key %s", path, filepath.Base(keyPath))
			}
			if err != nil {
				return nil, fmt.Errorf("loading client certificate %s: %w", path, err)
			}
			cfg.Certificates = append(cfg.Certificates, pair)
		case ".key":
			certPath := strings.TrimSuffix(path, ".key") + ".cert"
			if _, err := os.Stat(certPath); errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("client key %s has no certificate %s", path, filepath.Base(certPath))
			}
		}
	}
	return cfg, nil
}

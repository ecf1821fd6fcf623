// Package nodemirror is the fallback at the node: containerd mirror
// configuration (hosts.toml under containerd's config_path) that sends
// pulls naming the legacy registry to the new one, with its CA; a
// DaemonSet that writes it onto every node (and removes it when it goes);
// and for OpenShift/ACP, the ImageDigestMirrorSet and ImageTagMirrorSet
// that say the same to the platform. A pod whose spec still names the
// legacy registry then starts once the legacy registry is gone.
package nodemirror

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/regmigrate/regmigrate/steps/imageref"
)

// Defaults.
const (
	// DefaultConfigPath is containerd's usual config_path for registry
	// hosts (plugins."io.containerd.grpc.v1.cri".registry.config_path).
	DefaultConfigPath = "/etc/containerd/certs.d"
	HostsFile         = "hosts.toml"
	CAFile            = "regmigrate-ca.crt"
	// Name of the ConfigMap, DaemonSet, ImageDigestMirrorSet and
	// ImageTagMirrorSet.
	Name = "regmigrate-registry-mirror"
)

// Config is what the node needs to know.
type Config struct {
	// Legacy: the registry host pods name (no namespace: containerd
	// redirects a whole host). Target: where pulls go (a namespace is a
	// path prefix there).
	Legacy, Target imageref.Location
	// CA: the target's CA certificate (PEM); empty: the system roots.
	CA []byte
	// PlainHTTP: the target serves plain HTTP (test registries only).
	PlainHTTP bool
	// ConfigPath: containerd's config_path on the nodes.
	ConfigPath string
}

// Check says what is wrong with a configuration.
func (c Config) Check() error {
	if c.Legacy.Registry == "" || c.Target.Registry == "" {
		return errors.New("the node mirror needs the legacy registry and the target (--from and --to, or a verify report)")
	}
	if c.Legacy.Namespace != "" {
		return fmt.Errorf("containerd redirects a whole registry host: the legacy registry for the node mirror is a host (%s), not %s", c.Legacy.Registry, c.Legacy)
	}
	if c.Legacy.Registry == c.Target.Registry {
		return fmt.Errorf("the legacy registry and the target are the same host (%s): nothing to mirror", c.Legacy.Registry)
	}
	if len(c.CA) > 0 && !strings.Contains(string(c.CA), "-----BEGIN CERTIFICATE-----") {
		return errors.New("the CA for the node mirror is not a PEM certificate: give the target's CA certificate file")
	}
	return nil
}

func (c Config) configPath() string {
	if c.ConfigPath == "" {
		return DefaultConfigPath
	}
	return c.ConfigPath
}

// HostDir is the folder of the legacy host's configuration on a node.
func (c Config) HostDir() string {
	return filepath.Join(c.configPath(), hostDirName(c.Legacy.Registry))
}

// hostDirName: containerd looks for HOST:PORT as is, and for "host_port"
// only when the name is invalid on the filesystem; ':' is fine on Linux.
func hostDirName(host string) string { return host }

// HostsTOML is the legacy host's hosts.toml: every pull and resolve goes
// to the target (containerd tries the hosts in order, then the server;
// the server is the legacy registry, so once it is gone only the target
// answers).
func (c Config) HostsTOML() []byte {
	scheme := "https"
	if c.PlainHTTP {
		scheme = "http"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by regmigrate: pulls of %s go to %s.\n", c.Legacy.Registry, c.Target)
	fmt.Fprintf(&b, "server = %q\n\n", "https://"+c.Legacy.Registry)
	host := scheme + "://" + c.Target.Registry
	if c.Target.Namespace != "" {
		host += "/v2/" + c.Target.Namespace
	}
	fmt.Fprintf(&b, "[host.%q]\n", host)
	b.WriteString("  capabilities = [\"pull\", \"resolve\"]\n")
	if c.Target.Namespace != "" {
		b.WriteString("  override_path = true\n")
	}
	if len(c.CA) > 0 {
		fmt.Fprintf(&b, "  ca = %q\n", filepath.Join(c.HostDir(), CAFile))
	}
	return []byte(b.String())
}

// Files are the files of the legacy host's folder, by name.
func (c Config) Files() map[string][]byte {
	f := map[string][]byte{HostsFile: c.HostsTOML()}
	if len(c.CA) > 0 {
		f[CAFile] = c.CA
	}
	return f
}

// Install writes files (from the ConfigMap's mount, src) into the legacy
// host's folder under configPath, waits until ctx ends (the DaemonSet's
// pod is stopped: the DaemonSet was deleted, or the node drained), then
// removes what it wrote. A folder it did not create is kept; only its own
// files go.
func Install(ctx context.Context, src, dst string, ready func()) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("reading the mirror configuration in %s: %w", src, err)
	}
	_, statErr := os.Stat(dst)
	created := errors.Is(statErr, os.ErrNotExist)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("creating %s on the node: %w", dst, err)
	}
	// The CA before hosts.toml, which names it.
	sort.SliceStable(entries, func(i, j int) bool { return entries[j].Name() == HostsFile && entries[i].Name() != HostsFile })
	var written []string
	for _, e := range entries {
		// A ConfigMap mount holds ..data and ..<timestamp> links: files
		// are the names without a leading dot.
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		tmp := filepath.Join(dst, "."+e.Name()+".tmp")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return fmt.Errorf("writing %s on the node: %w", tmp, err)
		}
		if err := os.Rename(tmp, filepath.Join(dst, e.Name())); err != nil {
			return err
		}
		written = append(written, filepath.Join(dst, e.Name()))
	}
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	slices.Reverse(written) // hosts.toml first
	return RemoveFiles(dst, written, created)
}

// RemoveFiles deletes the files written (hosts.toml first, so containerd
// stops using the mirror before its CA goes), and the folder if Install
// created it.
func RemoveFiles(dst string, files []string, folder bool) error {
	var errs []error
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if folder {
		if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

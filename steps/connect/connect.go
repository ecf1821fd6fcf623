// Package connect builds the registry client every step uses from the
// options people give on the command line or in the spec: credentials
// (docker config.json, REGISTRY_AUTH_FILE, image-migrator's auth.json),
// TLS (docker's certs.d layout), plain HTTP for insecure registries, the
// per-registry request limit and retries.
package connect

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/regmigrate/regmigrate/steps/cloudauth"
	"github.com/regmigrate/regmigrate/steps/credentials"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/ocilayout"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/steps/throttle"
)

// Options describe how to reach registries. Environment is read by the
// caller (the composition root) and passed in.
type Options struct {
	// Insecure registries (host[:port]) may use plain HTTP or unverified TLS.
	Insecure []string
	// CertsDir is a docker certs.d-style folder (<dir>/<host>/ca.crt,
	// client.cert, client.key).
	CertsDir string
	// DockerConfig is a folder holding config.json; empty: $DOCKER_CONFIG,
	// else $HOME/.docker (credentials.WithDefaults).
	DockerConfig string
	// AuthFile is a config.json path (--authfile); empty:
	// $REGISTRY_AUTH_FILE.
	AuthFile string
	// AuthJSON is image-migrator's auth.json.
	AuthJSON string
	// Getenv expands ${ENV} in auth.json; nil disables expansion.
	Getenv         func(string) string
	MaxPerRegistry int
	Retries        int
	// IdleTimeout ends a stalled request (0: registry.DefaultIdleTimeout).
	IdleTimeout time.Duration
	Logger      *slog.Logger
	// Disk are the locations on disk (oci:DIR...) the client serves, each
	// under its imageref.TransportHost.
	Disk []Disk
	// Registries name a keychain (and an ECR account and region) per
	// host; the others get theirs by host (steps/cloudauth).
	Registries map[string]cloudauth.Registry
	// Throttles are limits per registry host (requests/s, bytes/s), one
	// limiter per host shared by every request of the client (all shards
	// of a local run); ThrottleAll applies to every other registry.
	Throttles   map[string]throttle.Limits
	ThrottleAll throttle.Limits
	// OnWait is told when a registry's requests pause for its pull quota.
	OnWait func(registry.Wait)
}

// Disk is a location on disk and whether the run writes to it.
type Disk struct {
	Location imageref.Location
	Write    bool
	DryRun   bool // a target is read, never created
	// Part: an oci:DIR shared with other writers at once (a Workflow's
	// shard pods on one volume); this one's index entries go to its own
	// part, which the Workflow's pack step merges (ocilayout.Options.Part).
	Part string
}

// Client returns a registry client for the options.
func Client(o Options) (*registry.Client, error) {
	files, err := credentials.NewKeychain(credentials.WithDefaults(credentials.Options{
		DockerConfig: o.DockerConfig, AuthFile: o.AuthFile, AuthJSON: o.AuthJSON, Getenv: o.Getenv,
	}))
	if err != nil {
		return nil, err
	}
	insecure := map[string]bool{}
	for _, h := range o.Insecure {
		insecure[strings.TrimSpace(h)] = true
	}
	if o.AuthJSON != "" {
		flags, err := credentials.ReadAuthJSONInsecure(o.AuthJSON)
		if err != nil {
			return nil, err
		}
		for k, v := range flags {
			if v {
				host, _, _ := strings.Cut(k, "/")
				insecure[host] = true
			}
		}
	}
	if o.IdleTimeout < 0 {
		return nil, fmt.Errorf("idle timeout must be positive, got %s", o.IdleTimeout)
	}
	if o.MaxPerRegistry < 0 {
		return nil, fmt.Errorf("max per registry must be at least 1, got %d", o.MaxPerRegistry)
	}
	tlsConfig := func(host string) (*tls.Config, error) {
		return credentials.TLSConfig(o.CertsDir, host, insecure[host])
	}
	// The credential files first for the hosts they name, then the cloud
	// keychain of each host (ECR, Google, ACR, GHCR, GitLab), refreshed
	// as they expire.
	kc := cloudauth.New(cloudauth.Options{
		Files: files, Registries: o.Registries, Getenv: o.Getenv,
		TLSConfig: tlsConfig, Insecure: func(host string) bool { return insecure[host] },
	})
	c := registry.New(registry.Options{
		Keychain:       kc,
		TLSConfig:      tlsConfig,
		Insecure:       func(host string) bool { return insecure[host] },
		MaxPerRegistry: o.MaxPerRegistry,
		RetryAttempts:  o.Retries,
		IdleTimeout:    o.IdleTimeout,
		Logger:         o.Logger,
		Throttle:       throttle.NewSet(o.Throttles, o.ThrottleAll).For,
		OnWait:         o.OnWait,
	})
	for _, d := range o.Disk {
		s, err := OpenDisk(context.Background(), d)
		if err != nil {
			return nil, err
		}
		c.Attach(d.Location.Registry, s)
	}
	return c, nil
}

// OpenDisk opens a location on disk as a registry.Store.
func OpenDisk(ctx context.Context, d Disk) (registry.Store, error) {
	switch d.Location.Transport {
	case imageref.TransportOCI:
		return ocilayout.Open(ctx, d.Location.Path, ocilayout.Options{Create: d.Write, DryRun: d.DryRun, Part: d.Part})
	case imageref.TransportOCIArchive:
		if d.Write { // written as a layout beside the file, packed at the end of the run
			return ocilayout.Open(ctx, ocilayout.Staging(d.Location.Path), ocilayout.Options{Create: true, DryRun: d.DryRun})
		}
		return ocilayout.OpenArchive(ctx, d.Location.Path)
	case imageref.TransportDockerArchive:
		if !d.Write {
			return ocilayout.OpenDockerArchive(ctx, d.Location.Path)
		}
	case imageref.TransportDir:
		if !d.Write {
			return ocilayout.OpenDir(ctx, d.Location.Path)
		}
	}
	return nil, fmt.Errorf("%s: %s: is a source only; write to oci:DIR or oci-archive:FILE", d.Location, d.Location.Transport)
}

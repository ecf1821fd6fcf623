package spec

import (
	"fmt"
	"strings"

	"github.com/regmigrate/regmigrate/steps/dockerhub"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/throttle"
)

// Hub says how a Docker Hub source is listed: Hub has no catalog, so its
// repositories come from Hub's API (docker/migrator's DOCKER_HUB_ORG).
// A source on docker.io is a Hub source without it (the organisation is
// the source's namespace).
type Hub struct {
	// Org is the organisation or user whose repositories move (default:
	// the source's namespace, docker.io/ORG).
	Org string `json:"org,omitempty"`
	// API is Hub's API base URL (default https://hub.docker.com, or
	// $REGMIGRATE_HUB_API).
	API string `json:"api,omitempty"`
	// LibraryNamespace: official images (library/NAME on Hub) keep
	// library/ on the target (default true, docker/migrator's
	// LIBRARY_NAMESPACE); false writes them as NAME.
	LibraryNamespace *bool `json:"libraryNamespace,omitempty"`
}

// Limits returns the registry's throttle (checked by Validate).
func (r Registry) Limits() throttle.Limits {
	var l throttle.Limits
	if r.RateLimit != "" {
		l.Requests, _ = throttle.ParseRequests(r.RateLimit)
	}
	if r.Bandwidth != "" {
		l.Bytes, _ = throttle.ParseBandwidth(r.Bandwidth)
	}
	return l
}

// Host is the registry's host[:port] ("" for a location on disk).
func (r Registry) Host() string {
	l, err := imageref.ParseLocation(r.Registry)
	if err != nil || l.Transport != "" {
		return ""
	}
	return l.Registry
}

// IsHub reports whether the source is Docker Hub (on docker.io, or with a
// hub section).
func (r Registry) IsHub() bool { return r.Hub != nil || dockerhub.IsHub(r.Host()) }

// Throttles are the limits per registry host the spec sets.
func (m *Migration) Throttles() map[string]throttle.Limits {
	out := map[string]throttle.Limits{}
	for _, r := range []Registry{m.Source, m.Target} {
		if l := r.Limits(); !l.IsZero() && r.Host() != "" {
			out[r.Host()] = l
		}
	}
	return out
}

func (m *Migration) validateThrottles() []error {
	var errs []error
	for _, side := range []struct {
		name string
		r    Registry
	}{{"source", m.Source}, {"target", m.Target}} {
		if v := side.r.RateLimit; v != "" {
			if _, err := throttle.ParseRequests(v); err != nil {
				errs = append(errs, fmt.Errorf("%s.rateLimit: %w", side.name, err))
			}
		}
		if v := side.r.Bandwidth; v != "" {
			if _, err := throttle.ParseBandwidth(v); err != nil {
				errs = append(errs, fmt.Errorf("%s.bandwidth: %w", side.name, err))
			}
		}
		if (side.r.RateLimit != "" || side.r.Bandwidth != "") && side.r.Registry != "" && side.r.Host() == "" {
			errs = append(errs, fmt.Errorf("%s: rateLimit and bandwidth throttle a registry, and %s is on disk: remove them", side.name, side.r.Registry))
		}
	}
	if m.Target.Hub != nil {
		errs = append(errs, fmt.Errorf("target.hub: Docker Hub is read as a source only: move the hub section to source"))
	}
	if h := m.Source.Hub; h != nil {
		if h.Org != "" && strings.ContainsAny(h.Org, "/ ") {
			errs = append(errs, fmt.Errorf("source.hub.org %q: want one organisation or user name, without a slash", h.Org))
		}
		if h.API != "" && !strings.HasPrefix(h.API, "https://") && !strings.HasPrefix(h.API, "http://") {
			errs = append(errs, fmt.Errorf("source.hub.api %q: want a URL such as %s", h.API, dockerhub.DefaultAPI))
		}
	}
	if m.Source.IsHub() && m.Source.Registry != "" {
		l, _ := imageref.ParseLocation(m.Source.Registry)
		org := l.Namespace
		if m.Source.Hub != nil && m.Source.Hub.Org != "" {
			org = m.Source.Hub.Org
		}
		if org == "" && len(m.Images.Lists) == 0 && m.Images.Rules == "" {
			errs = append(errs, fmt.Errorf("source %s is Docker Hub, which has no catalog: name the organisation or user to list (docker.io/ORG, source.hub.org or --hub-org ORG), or give image lists", m.Source.Registry))
		}
	}
	return errs
}

package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regmigrate/regmigrate/generator/spec"
	"github.com/regmigrate/regmigrate/steps/dockerhub"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/throttle"
	"github.com/regmigrate/regmigrate/workflows"
)

// throttleFlags: --rate-limit, --bandwidth (per registry) and Docker Hub
// as a source (--hub-org, --hub-api, --no-library-namespace).
type throttleFlags struct {
	rateLimits, bandwidths []string
	hubOrg, hubAPI         string
	noLibrary              bool
}

func (f *throttleFlags) bind(c *cobra.Command) {
	fs := c.Flags()
	fs.StringArrayVar(&f.rateLimits, "rate-limit", nil, "throttle requests to each registry to `[HOST=]RATE`, RATE as N/s (also N/m, N/h); HOST= one registry only (repeatable). On Argo, each pod gets the total divided by --shard-parallelism")
	fs.StringArrayVar(&f.bandwidths, "bandwidth", nil, "throttle the bytes each registry sends and receives to `[HOST=]RATE`: B, KB, MB, GB (1000s), KiB, MiB, GiB (1024s) or kbit, Mbit, Gbit per second, e.g. 50MiB/s, 100Mbit/s (repeatable)")
	fs.StringVar(&f.hubOrg, "hub-org", "", "the source is Docker Hub: list the repositories of this organisation or user `ORG` with Hub's API (default for --from docker.io/ORG: ORG)")
	fs.StringVar(&f.hubAPI, "hub-api", "", "Docker Hub's API `URL` (default "+dockerhub.DefaultAPI+", or $"+dockerhub.EnvAPI+"); $"+dockerhub.EnvUsername+" and $"+dockerhub.EnvToken+" log in to list private repositories")
	fs.BoolVar(&f.noLibrary, "no-library-namespace", false, "official Docker Hub images (library/NAME) are written as NAME on the target (default: library/NAME, as docker/migrator's LIBRARY_NAMESPACE)")
	setGroup(fs, groupRegistries, "hub-org", "hub-api", "no-library-namespace")
	setGroup(fs, groupCopy, "rate-limit", "bandwidth")
}

// apply merges the flags into the spec's source and target.
func (f *throttleFlags) apply(set func(string) bool, m *spec.Migration) error {
	if set("rate-limit") {
		if err := perRegistry("--rate-limit", f.rateLimits, m, func(r *spec.Registry, v string) { r.RateLimit = v }); err != nil {
			return err
		}
	}
	if set("bandwidth") {
		if err := perRegistry("--bandwidth", f.bandwidths, m, func(r *spec.Registry, v string) { r.Bandwidth = v }); err != nil {
			return err
		}
	}
	if set("hub-org") || set("hub-api") || set("no-library-namespace") {
		if m.Source.Hub == nil {
			m.Source.Hub = &spec.Hub{}
		}
		if set("hub-org") {
			m.Source.Hub.Org = f.hubOrg
		}
		if set("hub-api") {
			m.Source.Hub.API = f.hubAPI
		}
		if f.noLibrary {
			no := false
			m.Source.Hub.LibraryNamespace = &no
		}
	}
	return nil
}

// perRegistry sets "[HOST=]VALUE" values on the source and target: a
// bare value on both, HOST= on the one of that host.
func perRegistry(flag string, values []string, m *spec.Migration, setv func(*spec.Registry, string)) error {
	for _, v := range values {
		host, val, ok := strings.Cut(v, "=")
		if !ok {
			val, host = v, ""
		}
		matched := false
		for _, r := range []*spec.Registry{&m.Source, &m.Target} {
			if r.Host() != "" && (host == "" || host == r.Host()) {
				setv(r, val)
				matched = true
			}
		}
		if !matched {
			if host != "" {
				return usageError(fmt.Errorf("%s %s: %s is neither the source (%s) nor the target (%s): give one of them, or no HOST= for both", flag, v, host, m.Source.Host(), m.Target.Host()))
			}
			return usageError(fmt.Errorf("%s %s: no registry to throttle (the source and target are on disk)", flag, v))
		}
	}
	return nil
}

// hubSource is export's Docker Hub listing for a Hub source (nil
// otherwise). The API is the spec's, else $REGMIGRATE_HUB_API, else Hub's.
func hubSource(m *spec.Migration, from imageref.Location, env Env) *export.Hub {
	if !m.Source.IsHub() {
		return nil
	}
	h := spec.Hub{}
	if m.Source.Hub != nil {
		h = *m.Source.Hub
	}
	o := dockerhub.Options{API: h.API, Org: h.Org}
	o.FromEnv(env.Getenv)
	if o.Org == "" {
		o.Org = from.Namespace
	}
	return &export.Hub{List: o, NoLibraryNamespace: h.LibraryNamespace != nil && !*h.LibraryNamespace}
}

// throttleSummary says what the throttles are ("" when none).
func throttleSummary(perHost map[string]throttle.Limits) string {
	var parts []string
	for h, l := range perHost {
		parts = append(parts, h+": "+l.String())
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// hubPlan is the Workflow's Docker Hub source (nil otherwise): the export
// pod lists the organisation with Hub's API (the spec's, else Hub's: the
// generating machine's $REGMIGRATE_HUB_API is not the pod's).
func hubPlan(m *spec.Migration) *workflows.Hub {
	if !m.Source.IsHub() {
		return nil
	}
	h := &workflows.Hub{}
	if m.Source.Hub != nil {
		h.Org, h.API = m.Source.Hub.Org, m.Source.Hub.API
		h.NoLibraryNamespace = m.Source.Hub.LibraryNamespace != nil && !*m.Source.Hub.LibraryNamespace
	}
	return h
}

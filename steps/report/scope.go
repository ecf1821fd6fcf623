package report

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Scope is what a run was asked to migrate and by what: scope.json in the
// run directory, written by export, copied into the report. Its
// definition (registries, inputs and their contents, filters, sharding)
// decides whether a rerun in the same directory may resume the plan.
type Scope struct {
	Migration string  `json:"migration,omitempty"`
	Source    string  `json:"source,omitempty"`
	Target    string  `json:"target"`
	Inputs    []Input `json:"inputs,omitempty"`
	Filters   Filters `json:"filters,omitzero"`
	Shards    Shards  `json:"shards,omitzero"`
	// Version of regmigrate that planned; Command its command line (or
	// the spec file), secrets elided. They describe, not define.
	Version   string    `json:"version"`
	Command   []string  `json:"command,omitempty"`
	Spec      string    `json:"spec,omitempty"`
	PlannedAt time.Time `json:"plannedAt"`
}

// Input is an image list or rules file, by content.
type Input struct {
	Kind   string `json:"kind"` // list or rules
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// Filters are the scope's filters.
type Filters struct {
	IncludeNamespaces []string `json:"includeNamespaces,omitempty"`
	ExcludeNamespaces []string `json:"excludeNamespaces,omitempty"`
	Repositories      string   `json:"repositories,omitempty"`
	ExcludeRepos      string   `json:"excludeRepositories,omitempty"`
	Tags              string   `json:"tags,omitempty"`
	ExcludeTags       string   `json:"excludeTags,omitempty"`
}

// Shards are the sharding options.
type Shards struct {
	Size    int `json:"size,omitempty"`
	MinSize int `json:"minSize,omitempty"`
	Max     int `json:"max,omitempty"`
}

// Changes lists how s's definition differs from prev's, in words; empty
// when a run of s may resume prev's plan.
func (s Scope) Changes(prev Scope) []string {
	var out []string
	diff := func(what, was, now string) {
		if was != now {
			out = append(out, fmt.Sprintf("%s was %q, now %q", what, was, now))
		}
	}
	diff("source", prev.Source, s.Source)
	diff("target", prev.Target, s.Target)
	was, now := map[string]Input{}, map[string]Input{}
	for _, in := range prev.Inputs {
		was[in.Kind+" "+in.Path] = in
	}
	for _, in := range s.Inputs {
		now[in.Kind+" "+in.Path] = in
	}
	for _, k := range sortedKeys(was) {
		if n, ok := now[k]; !ok {
			out = append(out, fmt.Sprintf("%s is no longer an input", k))
		} else if n.SHA256 != was[k].SHA256 {
			out = append(out, fmt.Sprintf("%s changed since it was planned", k))
		}
	}
	for _, k := range sortedKeys(now) {
		if _, ok := was[k]; !ok {
			out = append(out, fmt.Sprintf("%s is a new input", k))
		}
	}
	diff("namespaces", strings.Join(prev.Filters.IncludeNamespaces, ","), strings.Join(s.Filters.IncludeNamespaces, ","))
	diff("excluded namespaces", strings.Join(prev.Filters.ExcludeNamespaces, ","), strings.Join(s.Filters.ExcludeNamespaces, ","))
	diff("repository filter", prev.Filters.Repositories, s.Filters.Repositories)
	diff("repository exclusion", prev.Filters.ExcludeRepos, s.Filters.ExcludeRepos)
	diff("tag filter", prev.Filters.Tags, s.Filters.Tags)
	diff("tag exclusion", prev.Filters.ExcludeTags, s.Filters.ExcludeTags)
	if prev.Shards != s.Shards {
		out = append(out, fmt.Sprintf("sharding was %+v, now %+v", prev.Shards, s.Shards))
	}
	return out
}

func sortedKeys(m map[string]Input) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

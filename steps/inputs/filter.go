package inputs

import (
	"fmt"
	"regexp"
	"strings"
)

// LibraryNamespace is the namespace of single-component repositories
// ("busybox" is "library/busybox"), docker/migrator's LIBRARY_NAMESPACE.
const LibraryNamespace = "library"

// NamespaceOf returns the namespace of a repository: its first path
// component, or "library" for a single-component repository such as
// "busybox". It returns "" for "".
func NamespaceOf(repository string) string {
	if repository == "" {
		return ""
	}
	ns, _, ok := strings.Cut(repository, "/")
	if !ok {
		return LibraryNamespace
	}
	return ns
}

// LibraryPath returns the repository with the library namespace added when
// it has none ("busybox" becomes "library/busybox"), as docker/migrator
// does with LIBRARY_NAMESPACE=true; other repositories are unchanged.
func LibraryPath(repository string) string {
	if repository == "" || strings.Contains(repository, "/") {
		return repository
	}
	return LibraryNamespace + "/" + repository
}

// Filter selects repositories and tags: docker/migrator's V1_REPO_FILTER
// and V1_TAG_FILTER plus namespace include/exclude lists. The zero Filter
// matches everything.
//
// Regular expressions are unanchored (they match anywhere, as grep does);
// anchor them with ^ and $ to match whole names. Repository expressions
// are matched against the repository path "ns/name"; an official image
// ("busybox" or "library/busybox") matches when either spelling does.
type Filter struct {
	// IncludeNamespaces keeps only repositories in these namespaces
	// (empty = all). A namespace may be a deeper prefix ("team/sub").
	IncludeNamespaces []string
	// ExcludeNamespaces leaves out repositories in these namespaces.
	ExcludeNamespaces []string
	// RepoRegex keeps only matching repositories; ExcludeRepoRegex leaves
	// matching ones out (nil = no filter).
	RepoRegex, ExcludeRepoRegex *regexp.Regexp
	// TagRegex keeps only matching tags; ExcludeTagRegex leaves matching
	// ones out (nil = no filter).
	TagRegex, ExcludeTagRegex *regexp.Regexp
}

// FilterOptions are a Filter as people write it: namespace lists and
// regular expressions as text (empty = no filter).
type FilterOptions struct {
	IncludeNamespaces, ExcludeNamespaces []string
	RepoRegex, ExcludeRepoRegex          string
	TagRegex, ExcludeTagRegex            string
}

// NewFilter compiles the options. Blank namespace entries are dropped and
// slashes around a namespace are trimmed.
func NewFilter(o FilterOptions) (Filter, error) {
	f := Filter{
		IncludeNamespaces: cleanNamespaces(o.IncludeNamespaces),
		ExcludeNamespaces: cleanNamespaces(o.ExcludeNamespaces),
	}
	for _, c := range []struct {
		option string
		expr   string
		dst    **regexp.Regexp
	}{
		{"repository regex", o.RepoRegex, &f.RepoRegex},
		{"exclude repository regex", o.ExcludeRepoRegex, &f.ExcludeRepoRegex},
		{"tag regex", o.TagRegex, &f.TagRegex},
		{"exclude tag regex", o.ExcludeTagRegex, &f.ExcludeTagRegex},
	} {
		if c.expr == "" {
			continue
		}
		re, err := regexp.Compile(c.expr)
		if err != nil {
			return Filter{}, fmt.Errorf("%s: %w", c.option, err)
		}
		*c.dst = re
	}
	return f, nil
}

func cleanNamespaces(in []string) []string {
	var out []string
	for _, ns := range in {
		if ns = strings.Trim(strings.TrimSpace(ns), "/"); ns != "" {
			out = append(out, ns)
		}
	}
	return out
}

// MatchRepo reports whether a repository ("ns/name") is in scope.
func (f Filter) MatchRepo(repository string) bool {
	path := LibraryPath(repository)
	if len(f.IncludeNamespaces) > 0 && !inNamespaces(path, f.IncludeNamespaces) {
		return false
	}
	if inNamespaces(path, f.ExcludeNamespaces) {
		return false
	}
	if f.RepoRegex != nil && !matchLibrary(f.RepoRegex, path) {
		return false
	}
	return f.ExcludeRepoRegex == nil || !matchLibrary(f.ExcludeRepoRegex, path)
}

// matchLibrary matches an official image's path ("library/busybox") both
// with and without the library namespace, other paths as they are.
func matchLibrary(re *regexp.Regexp, path string) bool {
	if re.MatchString(path) {
		return true
	}
	name, ok := strings.CutPrefix(path, LibraryNamespace+"/")
	return ok && !strings.Contains(name, "/") && re.MatchString(name)
}

// MatchTag reports whether a tag is in scope.
func (f Filter) MatchTag(tag string) bool {
	if f.TagRegex != nil && !f.TagRegex.MatchString(tag) {
		return false
	}
	return f.ExcludeTagRegex == nil || !f.ExcludeTagRegex.MatchString(tag)
}

// inNamespaces reports whether path lies under one of the namespaces.
func inNamespaces(path string, namespaces []string) bool {
	for _, ns := range namespaces {
		if strings.HasPrefix(path, ns+"/") {
			return true
		}
	}
	return false
}

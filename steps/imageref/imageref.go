// Package imageref parses and prints image references the way the seeds write
// them: HOST[:PORT]/NS/REPO:TAG[@DIGEST], with the registry optional.
package imageref

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var (
	// repoComponent follows the distribution grammar for path components.
	repoComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagRE         = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	hostRE        = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[^:/]*)?$|^\[[0-9a-fA-F:]+\](:[^:/]*)?$`)
	digestRE      = regexp.MustCompile(`^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$`)
)

// Ref is an image reference. Registry may be empty (relative reference).
// Tag and Digest may both be set (tag@digest).
type Ref struct {
	Registry   string // host[:port]
	Repository string // ns/name (possibly deeper)
	Tag        string
	Digest     string
}

// Parse parses a reference. When the first path component looks like a host
// (it has a '.' or ':' or is "localhost"), it is the registry.
func Parse(s string) (Ref, error) {
	var r Ref
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return r, fmt.Errorf("empty image reference")
	}
	if i := strings.Index(s, "@"); i >= 0 {
		r.Digest = s[i+1:]
		s = s[:i]
		if !digestRE.MatchString(r.Digest) {
			return r, fmt.Errorf("invalid digest %q in %q: want sha256:<64 hex> or sha512:<128 hex>", r.Digest, orig)
		}
	}
	if i := strings.LastIndex(s, ":"); i >= 0 && !strings.Contains(s[i:], "/") {
		r.Tag = s[i+1:]
		s = s[:i]
		if !tagRE.MatchString(r.Tag) {
			return r, fmt.Errorf("invalid tag %q in %q: tags are [A-Za-z0-9_.-], at most 128, not starting with . or -", r.Tag, orig)
		}
	}
	parts := strings.Split(s, "/")
	if len(parts) > 1 && LooksLikeHost(parts[0]) {
		r.Registry = parts[0]
		parts = parts[1:]
	}
	for _, p := range parts {
		if !repoComponent.MatchString(p) {
			return r, fmt.Errorf("invalid repository %q in %q: path components are lowercase letters, digits and . _ - separators", strings.Join(parts, "/"), orig)
		}
	}
	r.Repository = strings.Join(parts, "/")
	return r, nil
}

// LooksLikeHost reports whether a path component is a registry host.
func LooksLikeHost(s string) bool {
	return strings.ContainsAny(s, ".:") || s == "localhost"
}

// Namespace is the first path component of the repository ("" for a
// single-component repository such as "busybox").
func (r Ref) Namespace() string {
	if i := strings.Index(r.Repository, "/"); i >= 0 {
		return r.Repository[:i]
	}
	return ""
}

// Name is the repository without its namespace.
func (r Ref) Name() string {
	if i := strings.Index(r.Repository, "/"); i >= 0 {
		return r.Repository[i+1:]
	}
	return r.Repository
}

// Reference is the tag, or the digest when there is no tag.
func (r Ref) Reference() string {
	if r.Tag != "" {
		return r.Tag
	}
	return r.Digest
}

// Repo is registry/repository.
func (r Ref) Repo() string {
	if r.Registry == "" {
		return r.Repository
	}
	return r.Registry + "/" + r.Repository
}

// String prints registry/repository[:tag][@digest].
func (r Ref) String() string {
	s := r.Repo()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// WithoutDigest drops the digest.
func (r Ref) WithoutDigest() Ref { r.Digest = ""; return r }

// ValidDigest reports whether d is a well-formed digest of an algorithm
// the OCI image spec registers (sha256, sha512).
func ValidDigest(d string) bool { return digestRE.MatchString(d) }

// MaxRepositoryLength is the longest repository name registries take
// (the distribution reference grammar's limit).
const MaxRepositoryLength = 255

// ValidRepository reports whether s is a repository name by the
// distribution spec's grammar: lowercase path components separated by '/'.
func ValidRepository(s string) bool {
	if s == "" || len(s) > MaxRepositoryLength {
		return false
	}
	for _, p := range strings.Split(s, "/") {
		if !repoComponent.MatchString(p) {
			return false
		}
	}
	return true
}

// ValidTag reports whether s is a tag by the distribution spec's grammar
// ([A-Za-z0-9_][A-Za-z0-9._-]{0,127}).
func ValidTag(s string) bool { return tagRE.MatchString(s) }

// ValidHost reports whether s is a registry host[:port].
func ValidHost(s string) bool { return hostRE.MatchString(s) }

// NameProblem says what is wrong with a repository or tag a registry or a
// list named, or "" when both are valid (an empty tag is not checked).
func NameProblem(repo, tag string) string {
	if !ValidRepository(repo) {
		return fmt.Sprintf("invalid repository name %q: the distribution spec allows lowercase letters, digits and . _ - separators in '/'-separated components, at most %d characters", repo, MaxRepositoryLength)
	}
	if tag != "" && !ValidTag(tag) {
		return fmt.Sprintf("invalid tag %q in %s: the distribution spec allows [A-Za-z0-9_.-], at most 128, not starting with . or -", tag, repo)
	}
	return ""
}

// Location is HOST[:PORT][/NAMESPACE], as --from/--to take it, or a
// transport on disk: oci:DIR (an OCI image layout), oci-archive:FILE,
// docker-archive:FILE, dir:DIR.
type Location struct {
	Registry  string
	Namespace string // optional path prefix (may contain '/')
	// Transport is set for a location on disk (TransportOCI...); Path is
	// then its directory or file, and Registry the name references use for
	// it (TransportHost), a name no registry has.
	Transport string
	Path      string
}

// Transports on disk, as --from and --to take them (skopeo's names).
const (
	TransportOCI           = "oci"
	TransportOCIArchive    = "oci-archive"
	TransportDockerArchive = "docker-archive"
	TransportDir           = "dir"
)

// Transports lists the transports on disk.
var Transports = []string{TransportOCI, TransportOCIArchive, TransportDockerArchive, TransportDir}

// TransportHost is the host name that references use for a location on
// disk: in the .invalid domain, which no registry has (RFC 2606).
func TransportHost(transport string) string { return transport + ".invalid" }

// IsTransportHost reports whether host names a location on disk.
func IsTransportHost(host string) bool {
	for _, t := range Transports {
		if host == TransportHost(t) {
			return true
		}
	}
	return false
}

// ParseLocation parses HOST[:PORT][/NAMESPACE] or TRANSPORT:PATH.
func ParseLocation(s string) (Location, error) {
	orig := s
	s = strings.TrimSpace(s)
	for _, t := range Transports {
		if p, ok := strings.CutPrefix(s, t+":"); ok {
			if _, err := strconv.Atoi(p); err == nil {
				break // a host named like a transport, and its port
			}
			if p == "" {
				return Location{}, fmt.Errorf("%q names no path: want %s:PATH, e.g. %s:/media/export", orig, t, t)
			}
			return Location{Registry: TransportHost(t), Transport: t, Path: p}, nil
		}
	}
	for _, p := range []string{"https://", "http://"} {
		s = strings.TrimPrefix(s, p)
	}
	s = strings.TrimSuffix(s, "/")
	if s == "" {
		return Location{}, fmt.Errorf("registry location %q has no host: want HOST[:PORT][/NAMESPACE]", orig)
	}
	host, ns, _ := strings.Cut(s, "/")
	if !hostRE.MatchString(host) {
		return Location{}, fmt.Errorf("invalid registry host %q in %q: want HOST[:PORT][/NAMESPACE], e.g. registry.example.com:5000/team", host, s)
	}
	if _, port, ok := strings.Cut(host, ":"); ok {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return Location{}, fmt.Errorf("invalid port %q in %q: want HOST[:PORT][/NAMESPACE] with a port from 1 to 65535", port, orig)
		}
	}
	if ns != "" {
		for _, p := range strings.Split(ns, "/") {
			if !repoComponent.MatchString(p) {
				return Location{}, fmt.Errorf("invalid namespace %q in registry location %q: lowercase letters, digits and . _ - separators", ns, s)
			}
		}
	}
	return Location{Registry: host, Namespace: ns}, nil
}

func (l Location) String() string {
	if l.Transport != "" {
		return l.Transport + ":" + l.Path
	}
	if l.Namespace == "" {
		return l.Registry
	}
	return l.Registry + "/" + l.Namespace
}

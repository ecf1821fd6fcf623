// Package inputs reads the migration scope from the files the seeds already
// use: an image list (`ns/repo:tag [digest]`), the table printed by
// `ac get images`, an oc-style mapping file (`SRC=DST`) and image-migrator's
// images.json rules. It also holds the repository and tag filters of
// docker/migrator (V1_REPO_FILTER, V1_TAG_FILTER, the library namespace).
//
// Readers never stop at a bad line: valid lines come back as entries and
// each bad line as a *LineError that says what to write instead. Only I/O
// failures are returned as errors.
package inputs

import (
	"fmt"

	"github.com/regmigrate/regmigrate/steps/imageref"
)

// Entry is one line or rule of input.
type Entry struct {
	// Source is the image to copy. Its Registry may be empty: the
	// reference is then relative to the source (--from) registry. With
	// AllTags, Tag and Digest are empty.
	Source imageref.Ref
	// Target is where to copy it. The zero value means the caller derives
	// it (same path under the --to location). An empty Target.Registry
	// means the --to registry; an empty Target.Tag (only with AllTags)
	// means each source tag.
	Target imageref.Ref
	// AllTags is set when Source names a repository without a tag: every
	// tag of the repository is in scope.
	AllTags bool
	// File and Line say where the entry was read (Line is 1-based).
	File string
	Line int
}

// LineError names a bad line and what to write instead.
type LineError struct {
	File string
	Line int    // 1-based
	Text string // the line (or rule) as written
	Err  error  // what is wrong, naming the operand
	Hint string // what to write instead
}

// Error prints file:line: problem: hint.
func (e *LineError) Error() string {
	s := fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	if e.Hint != "" {
		s += ": " + e.Hint
	}
	return s
}

// Unwrap returns the underlying problem.
func (e *LineError) Unwrap() error { return e.Err }

// collector accumulates entries and bad lines of one file, dropping
// duplicates (same source and target) and flagging a tag listed twice
// with different digests.
type collector struct {
	file    string
	entries []Entry
	bad     []*LineError
	seen    map[string]int // dedup key -> index in entries
}

func newCollector(file string) *collector {
	return &collector{file: file, seen: map[string]int{}}
}

func (c *collector) fail(line int, text string, err error, hint string) {
	c.bad = append(c.bad, &LineError{File: c.file, Line: line, Text: text, Err: err, Hint: hint})
}

func (c *collector) add(line int, text string, e Entry) {
	e.File, e.Line = c.file, line
	key := fmt.Sprintf("%s|%t|%s", e.Source.WithoutDigest(), e.AllTags, e.Target)
	i, dup := c.seen[key]
	if !dup {
		c.seen[key] = len(c.entries)
		c.entries = append(c.entries, e)
		return
	}
	prev := &c.entries[i]
	switch {
	case e.Source.Digest == "" || e.Source.Digest == prev.Source.Digest:
		// The same line again.
	case prev.Source.Digest == "":
		prev.Source.Digest = e.Source.Digest // the later line pins the digest
	default:
		c.fail(line, text,
			fmt.Errorf("%s is listed with digest %s, but line %d lists it with %s", e.Source.WithoutDigest(), e.Source.Digest, prev.Line, prev.Source.Digest),
			"keep one line per tag with its current digest (ac image info shows it)")
	}
}

// ReadAll reads every list file (image lists, `ac get images` tables,
// SRC=DST mappings) and image-migrator's rules file (when rules is not
// empty). Bad lines come back apart, so that valid ones still run; err is
// for files that cannot be read.
func ReadAll(lists []string, rules string, o RulesOptions) (entries []Entry, bad []*LineError, err error) {
	for _, l := range lists {
		es, lineErrs, err := ReadListFile(l)
		if err != nil {
			return nil, nil, err
		}
		if entries == nil {
			entries = es // one list (the usual case): not copied
		} else {
			entries = append(entries, es...)
		}
		bad = append(bad, lineErrs...)
	}
	if rules != "" {
		es, lineErrs, err := ReadImagesJSON(rules, o)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, es...)
		bad = append(bad, lineErrs...)
	}
	return entries, bad, nil
}

package inputs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/regmigrate/regmigrate/steps/imageref"
)

// RulesOptions are the defaults of image-migrator's --registry and
// --namespace flags, used for a rule whose destination is "".
type RulesOptions struct {
	// DefaultRegistry is the destination registry of such a rule; empty
	// leaves Target.Registry empty (the caller's --to registry).
	DefaultRegistry string
	// DefaultNamespace replaces the source namespace; empty keeps the
	// source's namespace.
	DefaultNamespace string
}

const rulesHint = `images.json is one JSON object of rules: {"registry/namespace/repository[:tag]": "registry/namespace/repository[:tag]"}`

// ReadImagesJSON reads image-migrator's images.json; see ParseImagesJSON.
// The error is only for I/O.
func ReadImagesJSON(path string, opts RulesOptions) ([]Entry, []*LineError, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading image rules: %w", err)
	}
	entries, bad := parseRules(data, path, opts)
	return entries, bad, nil
}

// ParseImagesJSON reads image-migrator's images.json rules from r; name is
// the file name used in entries and line errors. Each key is a source and
// its value a destination, kept in file order, with the eight requirements
// of image-migrator's documentation:
//
//  1. a rule copies at most one repository, never a whole namespace or
//     registry;
//  2. sources and destinations are written as for docker pull and push;
//  3. both (a destination unless "") hold at least
//     registry/namespace/repository;
//  4. the source is not empty; one source with several destinations needs
//     several rules;
//  5. the destination may rename the repository;
//  6. a source without a tag copies every tag, and its destination must
//     not have a tag;
//  7. a source with a tag copies that tag, to the same tag when the
//     destination names none;
//  8. an empty destination is DefaultRegistry/DefaultNamespace/<source
//     repository>:<source tag>, where <source repository> is the source
//     path after its namespace.
//
// Extensions: the value may also be an array of destinations
// (["dst1", "dst2"]), since a JSON object cannot repeat a key; a key that
// is repeated anyway is read as one more rule rather than overwriting the
// first. A source may pin a digest (registry/ns/repo:tag@sha256:...).
//
// A rule breaking a requirement is a *LineError whose Line is the line of
// its key in the file. The error is only for I/O.
func ParseImagesJSON(r io.Reader, name string, opts RulesOptions) ([]Entry, []*LineError, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("reading image rules %s: %w", name, err)
	}
	entries, bad := parseRules(data, name, opts)
	return entries, bad, nil
}

func parseRules(data []byte, name string, opts RulesOptions) ([]Entry, []*LineError) {
	c := newCollector(name)
	dec := json.NewDecoder(bytes.NewReader(data))
	// fail reports a problem of the file's structure at the decoder's place.
	fail := func(err error) {
		n := 1 + bytes.Count(data[:dec.InputOffset()], []byte("\n"))
		text := ""
		if lines := strings.Split(string(data), "\n"); n <= len(lines) {
			text = strings.TrimSpace(lines[n-1])
		}
		c.fail(n, text, err, rulesHint)
	}
	invalid := func(err error) error {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("invalid JSON: %w", err)
	}

	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, nil // an empty file holds no rules
	}
	if err != nil {
		fail(invalid(err))
		return c.entries, c.bad
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		fail(fmt.Errorf("the rules file holds %s, not an object", jsonKind(tok)))
		return c.entries, c.bad
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			fail(invalid(err))
			return c.entries, c.bad
		}
		key := tok.(string) // object keys are strings, or Token fails
		line := 1 + bytes.Count(data[:dec.InputOffset()], []byte("\n"))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			fail(invalid(err))
			return c.entries, c.bad
		}
		text := fmt.Sprintf("%q: %s", key, compact(raw))
		dsts, ok := destinations(raw)
		switch {
		case !ok:
			c.fail(line, text, fmt.Errorf("destination of rule %q is %s, not a string or an array of strings", key, compact(raw)),
				fmt.Sprintf(`write "%s": "registry/namespace/repository[:tag]", or "" for the default destination`, key))
			continue
		case len(dsts) == 0:
			c.fail(line, text, fmt.Errorf("rule %q has no destination", key),
				fmt.Sprintf(`write "%s": "" for the default destination, or list at least one`, key))
			continue
		}
		for _, dst := range dsts {
			e, hint, err := rule(key, dst, opts)
			if err != nil {
				c.fail(line, text, err, hint)
				continue
			}
			c.add(line, text, e)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		fail(invalid(err))
		return c.entries, c.bad
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		fail(errors.New("content after the rules object"))
	}
	return c.entries, c.bad
}

// destinations reads a rule's value: a string, or an array of strings
// (this package's extension for several destinations).
func destinations(raw json.RawMessage) ([]string, bool) {
	switch raw[0] {
	case '"':
		var one string
		if err := json.Unmarshal(raw, &one); err == nil {
			return []string{one}, true
		}
	case '[':
		var many []string
		if err := json.Unmarshal(raw, &many); err == nil {
			return many, true
		}
	}
	return nil, false
}

// rule checks one source/destination pair against image-migrator's
// requirements; on failure it returns the problem and what to write.
func rule(srcText, dstText string, opts RulesOptions) (e Entry, hint string, err error) {
	srcText, dstText = strings.TrimSpace(srcText), strings.TrimSpace(dstText)
	if srcText == "" { // requirement 4
		return e, fmt.Sprintf(`the key is the source repository: write "registry/namespace/repository[:tag]": %q`, dstText),
			errors.New("rule with an empty source")
	}
	src, err := imageref.Parse(srcText)
	if err != nil { // requirement 2
		return e, refHint(srcText, rulesHint), err
	}
	if hint, err := fullRef("source", srcText, src, ""); err != nil { // requirements 1 and 3
		return e, hint, err
	}
	allTags := src.Tag == "" && src.Digest == ""
	if src.Tag == "" && !allTags {
		return e, fmt.Sprintf("write %q: a rule copies a tag or, without one, every tag", src.Repo()+":<tag>@"+src.Digest),
			fmt.Errorf("source %q has a digest but no tag", srcText)
	}

	if dstText == "" { // requirement 8
		repo := src.Repository
		if opts.DefaultNamespace != "" {
			repo = opts.DefaultNamespace + "/" + src.Name()
		}
		dst := imageref.Ref{Registry: opts.DefaultRegistry, Repository: repo, Tag: src.Tag}
		return Entry{Source: src, Target: dst, AllTags: allTags}, "", nil
	}
	dst, err := imageref.Parse(dstText)
	if err != nil { // requirement 2
		return e, refHint(dstText, rulesHint), err
	}
	if hint, err := fullRef("destination", dstText, dst, src.Name()); err != nil { // requirement 3
		return e, hint, err
	}
	if dst.Digest != "" {
		return e, fmt.Sprintf("write %q: %q", srcText, dst.WithoutDigest().String()),
			fmt.Errorf("destination %q has a digest", dstText)
	}
	if allTags && dst.Tag != "" { // requirement 6
		untagged := dst
		untagged.Tag = ""
		return e, fmt.Sprintf("write %q: %q to copy every tag, or %q: %q to copy one", srcText, untagged.String(), src.Repo()+":"+dst.Tag, dstText),
			fmt.Errorf("source %q has no tag, so every tag is copied, but destination %q names one", srcText, dstText)
	}
	if dst.Tag == "" { // requirement 7
		dst.Tag = src.Tag
	}
	return Entry{Source: src, Target: dst, AllTags: allTags}, "", nil // requirement 5: any repository name
}

// fullRef checks that ref holds registry/namespace/repository. For a
// destination, srcName (the source repository after its namespace) makes
// the suggestion concrete.
func fullRef(role, text string, ref imageref.Ref, srcName string) (hint string, err error) {
	tail := ref.String()[len(ref.Repo()):] // ":tag@digest"
	switch {
	case ref.Registry == "" && !strings.Contains(ref.Repository, "/") && imageref.LooksLikeHost(ref.Repository):
		return fmt.Sprintf("write one rule per repository: %q", ref.Repository+"/<namespace>/<repository>"),
			fmt.Errorf("%s %q is a registry: a rule copies one repository, not a whole registry", role, text)
	case ref.Registry == "":
		return fmt.Sprintf("write %q", "<registry>/"+LibraryPath(ref.Repository)+tail),
			fmt.Errorf("%s %q has no registry: a rule names registry/namespace/repository", role, text)
	case !strings.Contains(ref.Repository, "/") && role == "destination":
		return fmt.Sprintf("write %q or %q, or \"\" for the default destination",
				ref.Registry+"/"+ref.Repository+"/"+srcName+tail, ref.Registry+"/<namespace>/"+ref.Repository+tail),
			fmt.Errorf("destination %q has no namespace: a rule names registry/namespace/repository", text)
	case !strings.Contains(ref.Repository, "/") && tail != "":
		return fmt.Sprintf("write %q", ref.Registry+"/"+LibraryPath(ref.Repository)+tail),
			fmt.Errorf("source %q has no namespace: a rule names registry/namespace/repository", text)
	case !strings.Contains(ref.Repository, "/"):
		return fmt.Sprintf("write %q for the repository, or one rule per repository %q: a rule cannot copy a whole namespace",
				ref.Registry+"/"+LibraryPath(ref.Repository)+tail, ref.Registry+"/"+ref.Repository+"/<repository>"),
			fmt.Errorf("source %q names a namespace or a repository without namespace: a rule names registry/namespace/repository", text)
	}
	return "", nil
}

// compact prints a JSON value on one line.
func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// jsonKind names the kind of a JSON token.
func jsonKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

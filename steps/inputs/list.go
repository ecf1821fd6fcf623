package inputs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/regmigrate/regmigrate/steps/imageref"
)

// Hints for the three list formats.
const (
	listHint    = "write one image a line: [registry/]ns/repo[:tag] [sha256:<64 hex digits>]"
	tableHint   = "keep the table as `ac get images` prints it (NAME TAG ... DIGEST), or turn it into a list: ns/repo:tag [digest]"
	mappingHint = "write one mapping a line: SRC=DST, e.g. legacy.example.com/ns/app:1.0=new.example.com/ns/app:1.0"
)

// format is the kind of list file, decided by its first significant line.
type format int

const (
	formatPlain   format = iota // ns/repo:tag [digest]
	formatTable                 // ac get images
	formatMapping               // SRC=DST
)

// ReadListFile reads an image list file; see ParseList for the formats.
// The error is only for I/O.
func ReadListFile(path string) (entries []Entry, bad []*LineError, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading image list: %w", err)
	}
	// Sized from its lines, the list of 100,000 tags is one allocation,
	// not the 90 MB of a slice grown an append at a time.
	return parseList(bytes.NewReader(b), path, bytes.Count(b, []byte("\n"))+1)
}

// ParseList reads an image list; name is the file name used in entries and
// line errors. The format is detected from the first line that is neither
// blank nor a comment:
//
//   - a header whose first column is NAME and that has TAG and DIGEST
//     columns: the table printed by `ac get images`. Columns are separated
//     by runs of whitespace and found by their header names; a row whose
//     cells hold spaces is read by the header's column positions. A DIGEST
//     of "unknown" or "<none>" means no digest.
//   - a line holding '=': an oc-style mapping file, SRC=DST a line. Either
//     side may be a full or a relative reference; DST's tag defaults to
//     SRC's. A SRC without tag or digest copies every tag (DST must then
//     have no tag).
//   - otherwise a plain list, `[registry/]ns/repo[:tag] [digest]` a line,
//     as the ACP runbook's image-list and image-digests files. A line
//     without a tag copies every tag of the repository.
//
// Blank lines and comments ('#' to the end of the line) are skipped.
// Duplicate lines (same source and target) are dropped; a later line that
// adds a digest to an earlier one pins it. The error is only for I/O.
func ParseList(r io.Reader, name string) (entries []Entry, bad []*LineError, err error) {
	return parseList(r, name, 0)
}

// parseList is ParseList for about lines lines.
func parseList(r io.Reader, name string, lines int) (entries []Entry, bad []*LineError, err error) {
	c := newCollector(name)
	c.entries = make([]Entry, 0, lines)
	c.seen = make(map[string]int, lines)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	var (
		detected bool
		kind     format
		table    *tableHeader
		lineNo   int
	)
	for sc.Scan() {
		lineNo++
		raw := strings.TrimRight(sc.Text(), "\r")
		if lineNo == 1 {
			raw = strings.TrimPrefix(raw, "\ufeff")
		}
		line := raw
		if i := strings.IndexByte(line, '#'); i >= 0 { // '#' is never part of a reference
			line = line[:i]
		}
		line = strings.TrimRight(line, " \t")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !detected {
			detected = true
			kind = detect(line)
			if kind == formatTable {
				h, err := parseTableHeader(line)
				if err != nil {
					c.fail(lineNo, raw, err, tableHint)
					return c.entries, c.bad, nil // no row can be read without its columns
				}
				table = h
				continue
			}
		}
		switch kind {
		case formatTable:
			if strings.Fields(line)[0] == "NAME" { // a repeated header
				continue
			}
			c.tableRow(lineNo, raw, line, table)
		case formatMapping:
			c.mappingLine(lineNo, raw, line)
		default:
			c.plainLine(lineNo, raw, line)
		}
	}
	if err := sc.Err(); err != nil {
		return c.entries, c.bad, fmt.Errorf("reading image list %s: %w", name, err)
	}
	return c.entries, c.bad, nil
}

func detect(line string) format {
	switch {
	case strings.Fields(line)[0] == "NAME":
		return formatTable
	case strings.Contains(line, "="):
		return formatMapping
	default:
		return formatPlain
	}
}

// plainLine reads `[registry/]ns/repo[:tag] [digest]`.
func (c *collector) plainLine(n int, raw, line string) {
	fields := strings.Fields(line)
	if strings.Contains(line, "=") {
		c.fail(n, raw, fmt.Errorf("mapping line %q in an image list", strings.TrimSpace(line)),
			"a file is either a list or a mapping file (its first line decides); move SRC=DST lines to a mapping file")
		return
	}
	if len(fields) > 2 {
		c.fail(n, raw, fmt.Errorf("%d fields in %q, want an image and an optional digest", len(fields), strings.TrimSpace(line)), listHint)
		return
	}
	ref, err := imageref.Parse(fields[0])
	if err != nil {
		c.fail(n, raw, err, refHint(fields[0], listHint))
		return
	}
	if len(fields) == 2 {
		d := fields[1]
		switch {
		case isNone(d):
		case !strings.Contains(d, ":"):
			c.fail(n, raw, fmt.Errorf("%q after %s is not a digest", d, ref), listHint)
			return
		case !imageref.ValidDigest(d):
			c.fail(n, raw, fmt.Errorf("invalid digest %q for %s", d, ref), "a digest is sha256: and 64 lowercase hex digits, as `ac image info` prints it")
			return
		case ref.Digest != "" && ref.Digest != d:
			c.fail(n, raw, fmt.Errorf("two digests for %s: %s and %s", ref.WithoutDigest(), ref.Digest, d),
				fmt.Sprintf("write %q", ref.WithoutDigest().String()+" "+d))
			return
		default:
			ref.Digest = d
		}
	}
	if ref.Tag == "" && ref.Digest != "" {
		c.fail(n, raw, fmt.Errorf("%s has a digest but no tag to copy it to", ref),
			fmt.Sprintf("write %q", ref.Repo()+":<tag> "+ref.Digest))
		return
	}
	c.add(n, raw, Entry{Source: ref, AllTags: ref.Tag == ""})
}

// mappingLine reads SRC=DST.
func (c *collector) mappingLine(n int, raw, line string) {
	srcText, dstText, ok := strings.Cut(strings.TrimSpace(line), "=")
	srcText, dstText = strings.TrimSpace(srcText), strings.TrimSpace(dstText)
	switch {
	case !ok:
		c.fail(n, raw, fmt.Errorf("no '=' in mapping line %q", strings.TrimSpace(line)), mappingHint+" (the first line made this a mapping file)")
		return
	case srcText == "" || dstText == "":
		c.fail(n, raw, fmt.Errorf("mapping line %q lacks a source or a destination", strings.TrimSpace(line)), mappingHint)
		return
	case strings.ContainsAny(srcText, " \t=") || strings.ContainsAny(dstText, " \t="):
		c.fail(n, raw, fmt.Errorf("mapping line %q holds more than SRC=DST", strings.TrimSpace(line)), mappingHint+" (one destination a line)")
		return
	}
	src, err := imageref.Parse(srcText)
	if err != nil {
		c.fail(n, raw, err, refHint(srcText, mappingHint))
		return
	}
	dst, err := imageref.Parse(dstText)
	if err != nil {
		c.fail(n, raw, err, refHint(dstText, mappingHint))
		return
	}
	allTags := src.Tag == "" && src.Digest == ""
	switch {
	case dst.Digest != "":
		c.fail(n, raw, fmt.Errorf("destination %s has a digest", dst), fmt.Sprintf("name the destination by tag: %s=%s", srcText, dst.WithoutDigest()))
		return
	case allTags && dst.Tag != "":
		untagged := dst
		untagged.Tag = ""
		c.fail(n, raw, fmt.Errorf("source %s has no tag, so every tag is copied, but destination %s names one", src, dst),
			fmt.Sprintf("write %s=%s to copy every tag, or %s:%s=%s to copy one", src, untagged, src, dst.Tag, dst))
		return
	case src.Tag == "" && !allTags && dst.Tag == "":
		c.fail(n, raw, fmt.Errorf("source %s has a digest but no tag, and destination %s names no tag", src, dst),
			fmt.Sprintf("name the destination tag: %s=%s:<tag>", src, dst))
		return
	}
	if dst.Tag == "" {
		dst.Tag = src.Tag
	}
	c.add(n, raw, Entry{Source: src, Target: dst, AllTags: allTags})
}

// tableHeader locates the columns of `ac get images`.
type tableHeader struct {
	names             []string
	starts            []int // byte offset of each column in the header line
	name, tag, digest int   // column indexes
}

func parseTableHeader(line string) (*tableHeader, error) {
	h := &tableHeader{name: -1, tag: -1, digest: -1}
	for i := 0; i < len(line); {
		if line[i] == ' ' || line[i] == '\t' {
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		col := len(h.names)
		switch line[i:j] {
		case "NAME":
			h.name = col
		case "TAG":
			h.tag = col
		case "DIGEST":
			h.digest = col
		}
		h.names = append(h.names, line[i:j])
		h.starts = append(h.starts, i)
		i = j
	}
	var missing []string
	if h.tag < 0 {
		missing = append(missing, "TAG")
	}
	if h.digest < 0 {
		missing = append(missing, "DIGEST")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("table header %q has no %s column", strings.Join(h.names, " "), strings.Join(missing, " or "))
	}
	return h, nil
}

// cells returns the NAME, TAG and DIGEST cells of a row: by field index
// when the row has as many fields as the header, else by the header's
// column positions (a cell holding spaces, as "2 days ago").
func (h *tableHeader) cells(line string) (name, tag, digest string, ok bool) {
	if f := strings.Fields(line); len(f) == len(h.names) {
		return f[h.name], f[h.tag], f[h.digest], true
	}
	at := func(col int) (string, bool) {
		i := h.starts[col]
		if i >= len(line) || line[i] == ' ' || line[i] == '\t' || (i > 0 && line[i-1] != ' ' && line[i-1] != '\t') {
			return "", false
		}
		return strings.Fields(line[i:])[0], true
	}
	var okName, okTag, okDigest bool
	name, okName = at(h.name)
	tag, okTag = at(h.tag)
	digest, okDigest = at(h.digest)
	return name, tag, digest, okName && okTag && okDigest
}

// tableRow reads a row of `ac get images`.
func (c *collector) tableRow(n int, raw, line string, h *tableHeader) {
	nameCell, tag, digest, ok := h.cells(line)
	if !ok {
		c.fail(n, raw, fmt.Errorf("row %q does not line up with the header's %d columns", strings.TrimSpace(line), len(h.names)), tableHint)
		return
	}
	ref, err := imageref.Parse(nameCell)
	if err != nil {
		c.fail(n, raw, err, refHint(nameCell, tableHint))
		return
	}
	if ref.Tag != "" || ref.Digest != "" {
		c.fail(n, raw, fmt.Errorf("NAME %q holds a tag or digest", nameCell), "NAME is the repository (ns/repo) and TAG its tag")
		return
	}
	if isNone(tag) {
		c.fail(n, raw, fmt.Errorf("%s has no tag in row %q", ref, strings.TrimSpace(line)), "remove the row or give the image a tag: an untagged image has no name to copy it to")
		return
	}
	tagged, err := imageref.Parse(nameCell + ":" + tag)
	if err != nil {
		c.fail(n, raw, err, tableHint)
		return
	}
	if !isNone(digest) {
		if !imageref.ValidDigest(digest) {
			c.fail(n, raw, fmt.Errorf("invalid digest %q for %s", digest, tagged), "a digest is sha256: and 64 lowercase hex digits, or unknown")
			return
		}
		tagged.Digest = digest
	}
	c.add(n, raw, Entry{Source: tagged})
}

// noDigest reports whether a cell stands for "no value".
func isNone(s string) bool { return s == "" || s == "unknown" || s == "<none>" }

// refHint suggests the reference with its repository lowercased when that
// is valid (a common slip), else the format hint.
func refHint(s, hint string) string {
	repo, rest := s, ""
	if i := strings.Index(repo, "@"); i >= 0 {
		repo, rest = repo[:i], repo[i:]
	}
	if i := strings.LastIndex(repo, ":"); i >= 0 && !strings.Contains(repo[i:], "/") {
		repo, rest = repo[:i], repo[i:]+rest
	}
	if fixed := strings.ToLower(repo) + rest; fixed != s {
		if _, err := imageref.Parse(fixed); err == nil {
			return fmt.Sprintf("write %q (repositories are lowercase)", fixed)
		}
	}
	return hint
}

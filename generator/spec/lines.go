package spec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
)

// fieldLines maps every mapping key's dotted path (source.registry,
// images.lists) to its line in the YAML.
func fieldLines(b []byte) map[string]int {
	var doc yaml3.Node
	if yaml3.Unmarshal(b, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	out := map[string]int{}
	var walk func(n *yaml3.Node, prefix string)
	walk = func(n *yaml3.Node, prefix string) {
		if n.Kind != yaml3.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + p
			}
			out[p] = k.Line
			walk(v, p)
		}
	}
	walk(doc.Content[0], "")
	return out
}

// leadingField is the dotted field path an error message starts with.
var leadingField = regexp.MustCompile(`^([a-zA-Z]+(\.[a-zA-Z]+)*)[ :,]`)

// located prefixes each error with FILE:LINE: of the field it names,
// when the spec was read from a file that has the field.
func (m *Migration) located(errs []error) []error {
	if m.file == "" {
		return errs
	}
	out := make([]error, len(errs))
	for i, err := range errs {
		out[i] = err
		if f := leadingField.FindStringSubmatch(err.Error()); f != nil {
			if line, ok := m.lines[f[1]]; ok {
				out[i] = fmt.Errorf("%s:%d: %w", m.file, line, err)
			}
		}
	}
	return out
}

var (
	yamlLine     = regexp.MustCompile(`line (\d+)`)
	unknownField = regexp.MustCompile(`unknown field "([^"]+)"`)
)

// where is "FILE:LINE: " for a YAML error: the line the parser names, or
// the line of the unknown field.
func where(path string, b []byte, err error) string {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s:%s: ", path, m[1])
	}
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		key := m[1]
		if i := strings.LastIndex(key, "."); i >= 0 {
			key = key[i+1:]
		}
		for n, l := range strings.Split(string(b), "\n") {
			if t := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- ")); strings.HasPrefix(t, key+":") {
				return path + ":" + strconv.Itoa(n+1) + ": "
			}
		}
	}
	return path + ": "
}

// cleanYAMLError drops the converter's wrapping ("error converting YAML to
// JSON: yaml: line 3:") that where has already turned into FILE:LINE.
func cleanYAMLError(err error) string {
	msg := err.Error()
	for _, p := range []string{"error converting YAML to JSON: ", "error unmarshaling JSON: ", "while decoding JSON: ", "yaml: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	msg = yamlLine.ReplaceAllString(msg, "")
	return strings.TrimLeft(strings.TrimSpace(msg), ": ")
}

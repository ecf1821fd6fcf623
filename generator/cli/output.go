package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Output formats of -o, as kubectl and oc spell them.
const (
	outputJSON = "json"
	outputYAML = "yaml"
	outputName = "name"
)

// output is a command's -o flag: "" is the command's own readable output.
type output struct {
	format  string
	allowed []string
	docs    int // documents printed: YAML separates the next with ---
}

// bindOutput adds -o/--output with what it prints in each format.
func bindOutput(c *cobra.Command, o *output, what string, allowed ...string) {
	o.allowed = allowed
	c.Flags().StringVarP(&o.format, "output", "o", "", fmt.Sprintf("print `FORMAT`: %s (%s); the readable lines then go to stderr", strings.Join(allowed, ", "), what))
	setGroup(c.Flags(), groupOutput, "output")
}

// check refuses a format the command does not print.
func (o output) check() error {
	if o.format == "" || slices.Contains(o.allowed, o.format) {
		return nil
	}
	return usageError(fmt.Errorf("-o %s: want %s", o.format, strings.Join(o.allowed, ", ")))
}

// readable is where the readable lines go: stdout, unless -o gives it
// to the result.
func (o output) readable(env Env) io.Writer {
	if o.format == "" {
		return env.Stdout
	}
	return env.Stderr
}

// print writes v as JSON or YAML; a command that prints two results
// (run --cutover) prints two documents.
func (o *output) print(w io.Writer, v any) error {
	var b []byte
	var err error
	switch o.format {
	case outputJSON:
		if b, err = json.MarshalIndent(v, "", "  "); err == nil {
			b = append(b, '\n')
		}
	case outputYAML:
		if b, err = yaml.Marshal(v); err == nil && o.docs > 0 {
			b = append([]byte("---\n"), b...)
		}
	default:
		return fmt.Errorf("-o %s: not a structured format", o.format)
	}
	if err != nil {
		return err
	}
	o.docs++
	_, err = w.Write(b)
	return err
}

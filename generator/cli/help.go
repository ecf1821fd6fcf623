package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Flag groups. Every flag of every command belongs to one (a test walks the
// tree), and help lists the flags group by group, as kubectl and oc do.
// Placeholders come from the usage strings: pflag shows the first
// `backquoted` word as the flag's argument (`--images FILE`).
const (
	groupRegistries = "Registries"   // the source, the target and how to reach them
	groupScope      = "Scope"        // what to migrate
	groupCopy       = "Copy"         // how to copy and verify
	groupCluster    = "Cluster"      // the cluster: Image API backfill, workloads
	groupProof      = "Proof"        // the verify report a cutover rests on
	groupCutover    = "Cutover"      // switching the cluster over
	groupWorkflow   = "Workflow"     // the generated Argo object
	groupArgo       = "Argo cluster" // where submit creates it
	groupOutput     = "Output"       // what is printed, and where
)

// groupOrder is the order of the groups in help.
var groupOrder = []string{groupRegistries, groupScope, groupCopy, groupCluster, groupProof, groupCutover, groupWorkflow, groupArgo, groupOutput}

// groupAnnotation names a flag's group in its annotations.
const groupAnnotation = "regmigrate.io/flag-group"

// setGroup puts flags into a group. A flag that does not exist is a
// programming error.
func setGroup(fs *pflag.FlagSet, group string, names ...string) {
	for _, n := range names {
		f := fs.Lookup(n)
		if f == nil {
			panic(fmt.Sprintf("flag group %s: no flag --%s", group, n))
		}
		if f.Annotations == nil {
			f.Annotations = map[string][]string{}
		}
		f.Annotations[groupAnnotation] = []string{group}
	}
}

// flagGroup is the group of a flag; "" when it has none.
func flagGroup(f *pflag.Flag) string {
	if g := f.Annotations[groupAnnotation]; len(g) == 1 {
		return g[0]
	}
	if f.Name == "help" {
		return groupOutput
	}
	return ""
}

// setupHelp gives every command the grouped help, keeps flags in the
// order they were defined (the order that reads: --from before --to), and
// sends pflag's notes (a deprecated flag's warning) to stderr, never into
// what a command prints on stdout.
func setupHelp(root *cobra.Command, env Env) {
	root.SetUsageFunc(usage)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().SortFlags = false
		c.Flags().SetOutput(env.Stderr)
		for _, sc := range c.Commands() {
			walk(sc)
		}
	}
	walk(root)
	setGroup(root.PersistentFlags(), groupOutput, "verbose")
	setGroup(root.Flags(), groupOutput, "version")
}

// usage prints a command's usage with its flags grouped.
func usage(c *cobra.Command) error {
	var b strings.Builder
	b.WriteString("Usage:\n")
	if c.Runnable() {
		fmt.Fprintf(&b, "  %s\n", c.UseLine())
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "  %s [command]\n", c.CommandPath())
	}
	if c.HasExample() {
		fmt.Fprintf(&b, "\nExamples:\n%s\n", strings.TrimRight(c.Example, "\n"))
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\nCommands:\n")
		for _, sc := range c.Commands() {
			if sc.IsAvailableCommand() || sc.Name() == "help" {
				fmt.Fprintf(&b, "  %-*s %s\n", sc.NamePadding(), sc.Name(), sc.Short)
			}
		}
	}
	groups := map[string]*pflag.FlagSet{}
	add := func(f *pflag.Flag) {
		if f.Hidden || f.Deprecated != "" {
			return
		}
		g := flagGroup(f)
		if g == "" {
			g = "Other"
		}
		fs := groups[g]
		if fs == nil {
			fs = pflag.NewFlagSet(g, pflag.ContinueOnError)
			fs.SortFlags = false
			groups[g] = fs
		}
		if fs.Lookup(f.Name) == nil {
			fs.AddFlag(f)
		}
	}
	c.LocalFlags().VisitAll(add)
	c.InheritedFlags().VisitAll(add)
	for _, g := range append(groupOrder, "Other") {
		if fs := groups[g]; fs != nil {
			fmt.Fprintf(&b, "\n%s flags:\n%s", g, fs.FlagUsagesWrapped(helpWidth))
		}
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\nUse \"%s [command] --help\" for more information about a command.\n", c.CommandPath())
	}
	_, err := io.WriteString(c.OutOrStderr(), b.String())
	return err
}

// helpWidth is where help wraps the flags' descriptions.
const helpWidth = 100

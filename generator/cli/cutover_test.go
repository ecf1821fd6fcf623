package cli

import (
	"bytes"
	"flag"
	"io"
	"testing"

	"github.com/spf13/pflag"

	"github.com/regmigrate/regmigrate/steps/stepcli/switchmodecmd"
)

// `regmigrate cutover` and the switch-mode step take the same flags with
// the same help (one definition, switchmodecmd.BindProof/BindSwitch), and
// both parse the same command line to the same configuration.
func TestCutoverAndTheSwitchModeStepShareTheirFlags(t *testing.T) {
	step := flag.NewFlagSet("switch-mode", flag.ContinueOnError)
	var sc switchmodecmd.Config
	switchmodecmd.BindProof(step, &sc)
	switchmodecmd.BindSwitch(step, &sc, "")
	cmd := newCutoverCmd(Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }})
	n := 0
	step.VisitAll(func(f *flag.Flag) {
		n++
		cf := cmd.Flags().Lookup(f.Name)
		if cf == nil {
			t.Errorf("cutover has no --%s", f.Name)
			return
		}
		if cf.Usage != f.Usage || cf.DefValue != f.DefValue {
			t.Errorf("--%s: cutover says %q (default %q), the step %q (default %q)", f.Name, cf.Usage, cf.DefValue, f.Usage, f.DefValue)
		}
	})
	if n < 15 {
		t.Fatalf("the step binds %d flags: want every switch-mode flag", n)
	}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if step.Lookup(f.Name) == nil && f.Name != "log-format" && f.Name != "output" && f.Name != "help" {
			t.Errorf("cutover's --%s is not a switch-mode flag", f.Name)
		}
	})

	args := []string{"--run-dir", "r", "--context", "east", "--context", "west", "--namespace", "shop", "--workloads=false", "--confirm", "--pull-secret", "ps"}
	stepCfg, err := switchmodecmd.Parse(args, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var cliCfg switchmodecmd.Config
	c2 := flag.NewFlagSet("cutover", flag.ContinueOnError)
	switchmodecmd.BindProof(c2, &cliCfg)
	switchmodecmd.BindSwitch(c2, &cliCfg, "")
	pf := pflag.NewFlagSet("cutover", pflag.ContinueOnError)
	pf.AddGoFlagSet(c2)
	if err := pf.Parse(args); err != nil {
		t.Fatal(err)
	}
	stepCfg.LogFormat = ""
	if got, want := cliCfg, *stepCfg; got.RunDir != want.RunDir || len(got.Contexts) != 2 || got.Contexts[1] != "west" || got.Namespaces[0] != "shop" ||
		got.Workloads || !got.Confirm || got.PullSecret != "ps" || want.Workloads || len(want.Contexts) != 2 {
		t.Errorf("the same arguments parse differently:\ncli  %+v\nstep %+v", got, want)
	}
}

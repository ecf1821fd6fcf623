package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/regmigrate/regmigrate/generator/cli"
	"github.com/regmigrate/regmigrate/steps/contract"
)

// runWithStdin runs `regmigrate args...` in-process with stdin.
func runWithStdin(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), cli.Env{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(string) string { return "" },
	}, args)
	t.Logf("regmigrate %s -> %d\nstderr:\n%s", strings.Join(args, " "), code, errb.String())
	return code, out.String(), errb.String()
}

// commands is every command of the tree but cobra's own (help, completion).
func commands(t *testing.T) []*cobra.Command {
	t.Helper()
	root := cli.NewRoot(cli.Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }})
	out := []*cobra.Command{root}
	for _, c := range root.Commands() {
		if c.Name() != "help" && c.Name() != "completion" {
			out = append(out, c)
		}
	}
	if len(out) < 8 {
		t.Fatalf("%d commands", len(out))
	}
	return out
}

func TestVersionIsACommandAndAFlag(t *testing.T) {
	t.Parallel()
	code, byCmd, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(byCmd, "regmigrate "+contract.Version+" (go") {
		t.Errorf("version: exit %d, %q", code, byCmd)
	}
	code, byFlag, _ := runCLI(t, "--version")
	if code != 0 || byFlag != byCmd {
		t.Errorf("--version: exit %d, %q; want what version prints, %q", code, byFlag, byCmd)
	}
	// -v is verbose, never the version.
	code, out, _ := runCLI(t, "-v")
	if code != 0 || strings.Contains(out, byCmd) || !strings.Contains(out, "-v, --verbose") {
		t.Errorf("-v: exit %d\n%s\nwant the help, which names -v as --verbose, not the version", code, out)
	}
}

// -v is --verbose in every command, with the same meaning.
func TestVerboseIsMinusVEverywhere(t *testing.T) {
	t.Parallel()
	for _, c := range commands(t) {
		args := append(strings.Fields(c.CommandPath())[1:], "-v", "--help")
		code, out, _ := runCLI(t, args...)
		if code != 0 || !strings.Contains(out, "-v, --verbose ") {
			t.Errorf("%s: exit %d, help without -v, --verbose:\n%s", strings.Join(args, " "), code, out)
		}
	}
	if code, out, _ := runCLI(t, "version", "-v"); code != 0 || !strings.HasPrefix(out, "regmigrate ") {
		t.Errorf("version -v: exit %d %q", code, out)
	}
}

// --namespace means a Kubernetes namespace: cutover's -n/--namespace.
// The registry-namespace filter of run, generate and submit is
// --include-namespace; its old name still works, with a warning on stderr.
func TestNamespaceMeansOneThing(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"run", "generate", "submit"} {
		_, help, _ := runCLI(t, cmd, "--help")
		if !strings.Contains(help, "--include-namespace NS") || !strings.Contains(help, "only these registry namespaces") {
			t.Errorf("%s --help does not name --include-namespace as the registry-namespace filter:\n%s", cmd, help)
		}
		if strings.Contains(help, "    --namespace ") {
			t.Errorf("%s --help lists the deprecated --namespace", cmd)
		}
	}
	_, help, _ := runCLI(t, "cutover", "--help")
	if !strings.Contains(help, "-n, --namespace NS") || !strings.Contains(help, "Kubernetes namespace NS whose workloads to switch") {
		t.Errorf("cutover --help: want -n, --namespace as the Kubernetes namespace:\n%s", help)
	}
	for _, cmd := range []string{"generate", "submit"} {
		_, help, _ := runCLI(t, cmd, "--help")
		if !strings.Contains(help, "-n, --namespace-for-workflow NS") || !strings.Contains(help, "Kubernetes namespace NS of the Workflow") {
			t.Errorf("%s --help: want -n as the Workflow's Kubernetes namespace", cmd)
		}
	}

	base := []string{"generate", "--from", "legacy.example:5000", "--to", "newreg.example:5000", "--image-tag", "v1.2.3"}
	code, wf, stderr := runCLI(t, append(base, "--namespace", "team-a", "--include-namespace", "team-b")...)
	// the export step's --include-namespace is the Workflow's parameter,
	// whose value the flags give (issue 13)
	if code != 0 || !strings.Contains(wf, "--include-namespace={{workflow.parameters.include-namespaces}}") ||
		!strings.Contains(wf, "name: include-namespaces\n      value: team-a,team-b\n") {
		t.Errorf("--namespace team-a --include-namespace team-b: exit %d; want both in the export step's --include-namespace", code)
	}
	if !strings.Contains(stderr, "--namespace has been deprecated, use --include-namespace (registry namespaces") {
		t.Errorf("no deprecation warning on stderr: %q", stderr)
	}
	if strings.Contains(wf, "deprecated") {
		t.Error("the deprecation warning went into the printed Workflow")
	}
	code, wf, stderr = runCLI(t, append(base, "-n", "migration")...)
	if code != 0 || !strings.Contains(wf, "namespace: migration\n") || stderr != "" {
		t.Errorf("-n migration: exit %d, stderr %q; want the Workflow in namespace migration", code, stderr)
	}
}

// Help lists every flag in a group (kubectl and oc style): no flag is
// left in "Other flags".
func TestHelpGroupsTheFlags(t *testing.T) {
	t.Parallel()
	want := map[string][]string{
		"run":      {"Registries flags:", "Scope flags:", "Copy flags:", "Cluster flags:", "Cutover flags:", "Output flags:"},
		"generate": {"Registries flags:", "Scope flags:", "Copy flags:", "Cluster flags:", "Workflow flags:", "Output flags:"},
		"submit":   {"Registries flags:", "Scope flags:", "Copy flags:", "Cluster flags:", "Workflow flags:", "Argo cluster flags:", "Output flags:"},
		"cutover":  {"Cluster flags:", "Proof flags:", "Cutover flags:", "Output flags:"},
	}
	for _, c := range commands(t) {
		args := append(strings.Fields(c.CommandPath())[1:], "--help")
		_, help, _ := runCLI(t, args...)
		if strings.Contains(help, "Other flags:") {
			t.Errorf("%s --help has flags outside the groups:\n%s", c.CommandPath(), help)
		}
		last := -1
		for _, g := range want[c.Name()] {
			i := strings.Index(help, "\n"+g+"\n")
			if i < 0 || i < last {
				t.Errorf("%s --help: %q missing or out of order", c.CommandPath(), g)
			}
			last = i
		}
	}
}

// Every flag that takes a value shows a placeholder that says what to
// give (--images FILE, --jobs N), never pflag's type name.
func TestPlaceholdersReadWell(t *testing.T) {
	t.Parallel()
	typeNames := []string{"string", "strings", "stringArray", "int", "int64", "duration", "bool", "value", "Multi", "multi", "stringSlice"}
	for _, c := range commands(t) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Hidden || f.Deprecated != "" || f.NoOptDefVal != "" {
				return // bools take no value
			}
			name, _ := pflag.UnquoteUsage(f)
			if name == "" || slices.Contains(typeNames, name) || strings.ToUpper(name) != name {
				t.Errorf("%s --%s: placeholder %q; want a word in capitals that says what to give (FILE, N, DIR)", c.CommandPath(), f.Name, name)
			}
		})
	}
	_, help, _ := runCLI(t, "run", "--help")
	for _, w := range []string{"--images FILE ", "--from HOST[:PORT][/NAMESPACE] ", "--jobs N ", "--out DIR ", "--kubeconfig FILE ", "--idle-timeout DURATION "} {
		if !strings.Contains(help, w) {
			t.Errorf("run --help lacks %q", w)
		}
	}
}

func TestSubmitHelpSaysWhatItDoes(t *testing.T) {
	t.Parallel()
	code, help, _ := runCLI(t, "submit", "--help")
	for _, w := range []string{
		"submit builds the same object as generate",
		"creates it in the cluster where Argo runs",
		"--create-secret (submit builds a\nkubernetes.io/dockerconfigjson Secret",
		"Exit codes: 0 created",
		"-o name",
	} {
		if code != 0 || !strings.Contains(help, w) {
			t.Errorf("submit --help lacks %q:\n%s", w, help)
		}
	}
}

func TestGenerateOutputFormats(t *testing.T) {
	t.Parallel()
	base := []string{"generate", "--from", "legacy.example:5000", "--to", "newreg.example:5000", "--image-tag", "v1.2.3"}
	_, plain, _ := runCLI(t, base...)
	code, asYAML, _ := runCLI(t, append(base, "-o", "yaml")...)
	if code != 0 || asYAML != plain {
		t.Errorf("-o yaml: exit %d, and not the default output", code)
	}
	code, asJSON, _ := runCLI(t, append(base, "-o", "json")...)
	var fromJSON, fromYAML map[string]any
	if err := json.Unmarshal([]byte(asJSON), &fromJSON); code != 0 || err != nil {
		t.Fatalf("-o json: exit %d, %v", code, err)
	}
	if err := yaml.Unmarshal([]byte(plain), &fromYAML); err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, fromJSON), mustJSON(t, fromYAML); a != b {
		t.Errorf("-o json is not the object -o yaml prints:\n%s\n%s", a, b)
	}
	code, name, _ := runCLI(t, append(base, "-o", "name")...)
	if code != 0 || name != "workflow.argoproj.io/regmigrate-\n" {
		t.Errorf("-o name: exit %d %q", code, name)
	}
	code, name, _ = runCLI(t, append(base, "--cron", "0 2 * * *", "-o", "name")...)
	if code != 0 || name != "cronworkflow.argoproj.io/regmigrate-delta\n" {
		t.Errorf("--cron -o name: exit %d %q", code, name)
	}
	for _, args := range [][]string{append(base, "-o", "table"), {"run", "--from", "a.example", "--to", "b.example", "-o", "wide"}, {"cutover", "--rollback", "-o", "text"}, {"report", "-o", "name", "dir"}} {
		code, out, stderr := runCLI(t, args...)
		if code != contract.ExitUsage || out != "" || !strings.Contains(stderr, "-o "+args[len(args)-1]) && !strings.Contains(stderr, "-o "+args[len(args)-2]) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and what -o takes", strings.Join(args, " "), code, stderr)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lint - reads standard input; a multi-document file may hold other
// objects beside the Argo ones: each is skipped with a note.
func TestLintReadsStdinAndSkipsWhatIsNotArgo(t *testing.T) {
	t.Parallel()
	code, wf, _ := runCLI(t, "generate", "--from", "legacy.example:5000", "--to", "newreg.example:5000", "--image-tag", "v1.2.3")
	if code != 0 {
		t.Fatal(code)
	}
	code, out, stderr := runWithStdin(t, wf, "lint", "-")
	if code != 0 || out != "<stdin>: ok\n" || stderr != "" {
		t.Errorf("lint - of a generated Workflow: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	multi := "# the migration and what goes with it\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: registry-mode\n---\n" + wf +
		"---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: registry-auth\n"
	file := write(t, "bundle.yaml", multi)
	code, out, stderr = runCLI(t, "lint", file)
	if code != 0 || out != file+": ok\n" {
		t.Errorf("lint of Workflow + ConfigMap + Secret: exit %d, stdout %q", code, out)
	}
	for _, w := range []string{file + ": document 1: ConfigMap registry-mode (v1): not an Argo object, skipped", file + ": document 3: Secret registry-auth (v1): not an Argo object, skipped"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks the note %q:\n%s", w, stderr)
		}
	}
	// Broken Argo objects still fail among other documents, and a file of
	// other objects alone holds nothing to lint.
	broken := strings.Replace(multi, "template: mirror-shard", "template: mirror-shards", 1)
	if code, _, stderr := runWithStdin(t, broken, "lint", "-"); code != contract.ExitUsage || !strings.Contains(stderr, "<stdin> (document 2)") || !strings.Contains(stderr, "mirror-shards") {
		t.Errorf("a broken Workflow among other documents: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runWithStdin(t, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n", "lint", "-"); code != contract.ExitUsage || !strings.Contains(stderr, "no Workflow, CronWorkflow, WorkflowTemplate or ClusterWorkflowTemplate") {
		t.Errorf("only a ConfigMap: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runWithStdin(t, "just: a map\n", "lint", "-"); code != contract.ExitUsage || !strings.Contains(stderr, "not a Kubernetes object") {
		t.Errorf("not a Kubernetes object: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runWithStdin(t, strings.Replace(wf, "kind: Workflow", "kind: WorkflowEventBinding", 1), "lint", "-"); code != contract.ExitUsage || !strings.Contains(stderr, "lint validates Workflow, CronWorkflow, WorkflowTemplate and ClusterWorkflowTemplate") {
		t.Errorf("an Argo kind lint cannot check: exit %d, stderr %q", code, stderr)
	}
}

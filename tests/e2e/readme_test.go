package e2e

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/pflag"

	"github.com/regmigrate/regmigrate/generator/cli"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// readmeExample is one `regmigrate ...` line of a fenced block of
// README.md, continuation lines joined, its comment dropped.
type readmeExample struct {
	line   int    // in README.md
	text   string // as written
	tokens []string
}

// readmeExamples extracts the examples of README.md: every line of a
// fenced block without a language (or sh, bash, console) that starts with
// regmigrate.
func readmeExamples(t *testing.T) []readmeExample {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []readmeExample
	in, shell := false, false
	var pending string
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			lang := strings.TrimPrefix(strings.TrimSpace(l), "```")
			in = !in
			shell = in && slices.Contains([]string{"", "sh", "bash", "shell", "console"}, lang)
			continue
		}
		if !in || !shell {
			continue
		}
		if pending == "" {
			start = n
		}
		if strings.HasSuffix(l, `\`) {
			pending += strings.TrimSuffix(l, `\`) + " "
			continue
		}
		l, pending = pending+l, ""
		tokens, err := shellWords(l)
		if err != nil {
			t.Fatalf("README.md:%d: %v", start, err)
		}
		if len(tokens) > 0 && tokens[0] == "regmigrate" {
			out = append(out, readmeExample{line: start, text: strings.TrimSpace(l), tokens: tokens})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// shellWords splits a line as a shell would, enough for README's
// examples: quotes, a comment from an unquoted # at a word's start, and
// |, <, > as words of their own.
func shellWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			out = append(out, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, io.ErrUnexpectedEOF
			}
			cur.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case c == ' ' || c == '\t':
			flush()
		case c == '#' && !inWord:
			flush()
			return out, nil
		case (c == '|' || c == '<' || c == '>') && !inWord:
			out = append(out, string(c))
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return out, nil
}

// stages splits an example's words at its pipes and redirections into
// the commands it runs.
func (e readmeExample) stages() [][]string {
	var out [][]string
	var cur []string
	for i := 0; i < len(e.tokens); i++ {
		switch tok := e.tokens[i]; tok {
		case "|":
			out, cur = append(out, cur), nil
		case "<", ">":
			i++ // the file
		default:
			cur = append(cur, tok)
		}
	}
	return append(out, cur)
}

// checkParses parses a regmigrate command line with the real command tree:
// the command exists, every flag parses, none is deprecated, the
// arguments are what the command takes. Nothing runs.
func checkParses(args []string) error {
	var sink bytes.Buffer
	root := cli.NewRoot(cli.Env{Stdout: &sink, Stderr: &sink, Getenv: func(string) string { return "" }})
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	if cmd == root && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return &exampleError{"unknown command " + args[0]}
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return err
	}
	var deprecated []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Deprecated != "" {
			deprecated = append(deprecated, "--"+f.Name+" is deprecated: "+f.Deprecated)
		}
	})
	if len(deprecated) > 0 {
		return &exampleError{strings.Join(deprecated, "; ")}
	}
	return cmd.ValidateArgs(cmd.Flags().Args())
}

type exampleError struct{ s string }

func (e *exampleError) Error() string { return e.s }

// placeholder is a word that stands for something the reader supplies.
var placeholder = regexp.MustCompile(`^([A-Z][A-Z0-9_]*|[A-Z][A-Z0-9_]*\.\.\.)$`)

// TestReadmeExamplesRunAsWritten: every `regmigrate ...` example of
// README.md parses with the real command tree, and every example that can
// run against two local registries (the demo's: distribution registries
// started by regtest, here with TLS, so that the examples need no flag
// they do not show) and the Image API double is run by the real binary,
// in a folder holding the files it names, and must exit 0. The registry
// names of the examples (legacy.example:5000, SRC, DST...) are replaced by
// the registries' addresses; nothing else is added to a command line.
// cutover, submit and run --cutover need a real Kubernetes and Argo: they
// are parsed here and run by their own tests.
func TestReadmeExamplesRunAsWritten(t *testing.T) {
	t.Parallel()
	examples := readmeExamples(t)
	if len(examples) < 25 {
		t.Fatalf("%d examples found in README.md: the extraction is broken", len(examples))
	}

	// Every example parses.
	for _, e := range examples {
		for _, st := range e.stages() {
			if len(st) == 0 || st[0] != "regmigrate" {
				continue
			}
			if err := checkParses(expandOptional(st[1:])); err != nil {
				t.Errorf("README.md:%d: %s\n  does not parse: %v", e.line, e.text, err)
			}
		}
	}

	// The registries: plain TLS, their CAs trusted through SSL_CERT_FILE
	// as a machine's CA bundle would trust them.
	src := regtest.StartDistribution(t, regtest.Options{TLS: true})
	dst := regtest.StartDistribution(t, regtest.Options{TLS: true})
	seeded := seed(t, src, regtest.Corpus{Namespaces: []string{"team-a", "team-b", "tmp"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 4 << 10, MultiArch: true, Signature: true})
	// reuse-storage: a registry serving the legacy registry's storage.
	shared := regtest.StartDistribution(t, regtest.Options{TLS: true, DataDir: src.DataDir})
	work := t.TempDir()
	bundle := filepath.Join(work, "ca-bundle.pem")
	var pem []byte
	for _, r := range []*regtest.Registry{src, dst, shared} {
		b, err := os.ReadFile(r.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		pem = append(pem, b...)
	}
	writeFile(t, bundle, string(pem))
	_, kubeconfig := doubleKubeconfig(t, "image.alauda.io")

	// The folder the examples run in, with the files they name: README's
	// own migration.yaml (its registries replaced) and what it names.
	runDir, genDir := filepath.Join(work, "run"), filepath.Join(work, "generate")
	specText := readmeSpec(t)
	subst := strings.NewReplacer("legacy.example:5000", src.Host, "registry-v2.example:5000", dst.Host, "newreg.example:5000", dst.Host)
	var list []string
	for ref := range seeded.Tags {
		if strings.HasPrefix(ref, "team-a/") && !strings.Contains(ref, ".sig") {
			list = append(list, ref)
		}
	}
	slices.Sort(list)
	for path, content := range map[string]string{
		"migration.yaml":                  subst.Replace(specText),
		"image-list.txt":                  strings.Join(list, "\n") + "\n",
		"images.json":                     `{"` + src.Host + `/team-b/app0": ""}`,
		"registry-auth/config.json":       `{"auths": {}}`,
		"certs.d/" + src.Host + "/ca.crt": string(mustRead(t, src.CAFile)),
		"admin.kubeconfig":                string(mustRead(t, kubeconfig)),
	} {
		writeFile(t, filepath.Join(runDir, path), content)
	}
	// generate runs in a folder whose migration.yaml names no credential
	// files: with them, generate asks for --secret or --create-secret
	// (README: Credentials), which the examples of generate leave out.
	genSpec := regexp.MustCompile(`(?m)^auth:\n(  .*\n)+`).ReplaceAllString(subst.Replace(specText), "")
	writeFile(t, filepath.Join(genDir, "migration.yaml"), genSpec)
	writeFile(t, filepath.Join(genDir, "image-list.txt"), strings.Join(list, "\n")+"\n")
	writeFile(t, filepath.Join(genDir, "images.json"), `{"`+src.Host+`/team-b/app0": ""}`)

	bin := buildReleaseCLI(t)
	env := []string{"PATH=" + filepath.Dir(bin) + ":/usr/bin:/bin", "HOME=" + work, "SSL_CERT_FILE=" + bundle}
	sh := func(dir, line string) (int, string, string) {
		c := exec.Command("bash", "-c", line)
		c.Dir, c.Env = dir, env
		return runCommand(t, c)
	}
	if code, wf, stderr := sh(genDir, "regmigrate generate -f migration.yaml"); code != 0 {
		t.Fatalf("generate for lint's example: exit %d\n%s", code, stderr)
	} else {
		writeFile(t, filepath.Join(genDir, "workflow.yaml"), wf)
	}

	ran := 0
	for _, e := range examples {
		args := e.stages()[0]
		if !runnable(args) {
			continue
		}
		hosts := map[string]string{"SRC": src.Host, "DST": dst.Host, "legacy.example:5000": src.Host, "newreg.example:5000": dst.Host}
		if slices.Contains(args, "reuse-storage") {
			hosts["DST"] = shared.Host
		}
		line, unknown := substitute(e.tokens, hosts)
		if len(unknown) > 0 {
			t.Errorf("README.md:%d: %s\n  the test does not know what to give for %v: teach it, or write the example with a file or address it knows", e.line, e.text, unknown)
			continue
		}
		dir := runDir
		if args[1] == "generate" || args[1] == "lint" {
			dir = genDir
		}
		code, stdout, stderr := sh(dir, line)
		t.Logf("README.md:%d: ran %s: exit %d", e.line, line, code)
		ran++
		if code != 0 {
			t.Errorf("README.md:%d: %s\n  ran as: %s\n  exit %d\nstdout:\n%s\nstderr:\n%s", e.line, e.text, line, code, stdout, stderr)
		}
	}
	if ran < 12 {
		t.Errorf("%d examples ran: want every example that can run against the registries (run, report, generate, lint, version)", ran)
	}
	assertMirrored(t, dst.Host, map[string]string{list[0]: seeded.Tags[list[0]]}, dst.RemoteOptions()...)
}

// runnable: the examples that can run against two registries and the
// Image API double; cutover, submit and run --cutover need a cluster.
func runnable(args []string) bool {
	if len(args) < 2 {
		return false
	}
	switch args[1] {
	case "run":
		return !slices.Contains(args, "--cutover")
	case "report", "generate", "lint", "version":
		return true
	}
	return false
}

// expandOptional keeps the contents of optional parts: [--context C]
// becomes --context C.
func expandOptional(args []string) []string {
	var out []string
	for _, a := range args {
		a = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
		if a != "" && a != "..." {
			out = append(out, a)
		}
	}
	return out
}

// substitute writes an example for bash with the registries' addresses
// and the files of the folder in place of its placeholders, and returns
// the placeholders it does not know.
func substitute(tokens []string, hosts map[string]string) (string, []string) {
	files := map[string]string{"K": "admin.kubeconfig", "C": "double", "RUN_DIR": "run-1", "FILE...": "workflow.yaml"}
	var words, unknown []string
	hasSource := slices.Contains(tokens, "--from") || slices.Contains(tokens, "-f")
	for _, tok := range tokens {
		switch {
		case tok == "|" || tok == "<" || tok == ">":
			words = append(words, tok)
			continue
		case tok == "...":
			if !hasSource {
				words = append(words, "--from", quote(hosts["SRC"]), "--to", quote(hosts["DST"]))
			}
			continue
		}
		tok = strings.TrimSuffix(strings.TrimPrefix(tok, "["), "]")
		if h, ok := hosts[tok]; ok {
			tok = h
		} else if f, ok := files[tok]; ok {
			tok = f
		} else if placeholder.MatchString(tok) {
			unknown = append(unknown, tok)
		}
		words = append(words, quote(tok))
	}
	return strings.Join(words, " "), unknown
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// readmeSpec is README's migration.yaml example.
func readmeSpec(t *testing.T) string {
	t.Helper()
	b := mustRead(t, filepath.Join("..", "..", "README.md"))
	m := regexp.MustCompile("(?s)### migration.yaml\n\n```yaml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no migration.yaml example under ### migration.yaml")
	}
	return string(m[1])
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	releaseOnce sync.Once
	releasePath string
	releaseErr  error
)

// buildReleaseCLI builds regmigrate as a release (v0.0.0), the binary a
// reader of the README installed: generate's examples then default the
// step images' tag to its version, as a release does.
func buildReleaseCLI(t *testing.T) string {
	t.Helper()
	releaseOnce.Do(func() {
		dir, err := os.MkdirTemp("", "regmigrate-release-")
		if err != nil {
			releaseErr = err
			return
		}
		releasePath = filepath.Join(dir, "regmigrate")
		cmd := exec.CommandContext(context.Background(), "go", "build", "-o", dir+string(filepath.Separator),
			"-ldflags", "-X github.com/regmigrate/regmigrate/steps/contract.Version=v0.0.0",
			"github.com/regmigrate/regmigrate/generator/cmd/regmigrate", "github.com/regmigrate/regmigrate/generator/cmd/regmigrate-argo-validate")
		if out, err := cmd.CombinedOutput(); err != nil {
			releaseErr = &buildError{out: string(out), err: err}
		}
	})
	if releaseErr != nil {
		t.Fatalf("building regmigrate: %v", releaseErr)
	}
	return releasePath
}

// The README check fails an example whose command, flag or arguments went
// stale, and one that uses a deprecated spelling.
func TestReadmeCheckCatchesStaleExamples(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line string
		want string
	}{
		{"regmigrate run --from SRC --to DST --no-such-flag", "unknown flag: --no-such-flag"},
		{"regmigrate run --from SRC --to DST --namespace team-a", "--namespace is deprecated"},
		{"regmigrate migrate --from SRC", `unknown command "migrate"`},
		{"regmigrate report", "accepts 1 arg(s)"},
		{"regmigrate cutover -n", "flag needs an argument"},
	} {
		words, err := shellWords(tc.line)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkParses(words[1:]); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", tc.line, err, tc.want)
		}
	}
	for _, ok := range []string{
		"regmigrate run ... --kubeconfig K [--context C] --cutover --confirm   # a comment",
		`regmigrate generate -f migration.yaml --cron "0 */6 * * *"`,
		"regmigrate cutover --kubeconfig K --verify-report run-1/report.json -n shop --confirm",
	} {
		e := readmeExample{tokens: must(shellWords(ok))}
		if err := checkParses(expandOptional(e.stages()[0][1:])); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// inputsCorpus is alpha/app{0,1}:v{0,1,2} and beta/app{0,1}:v{0,1,2};
// alpha/app0:v0 and beta/app0:v0 are multi-arch indexes.
var inputsCorpus = regtest.Corpus{Namespaces: []string{"alpha", "beta"}, ReposPerNS: 2, TagsPerRepo: 3, LayerSize: 4 << 10, MultiArch: true}

// targetTags lists what a registry holds, as a user would see it: every
// repository of the catalog, every tag, and the digest each tag serves.
func targetTags(t *testing.T, reg *regtest.Registry) map[string]string {
	t.Helper()
	ctx := context.Background()
	r, err := name.NewRegistry(reg.Host, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(ctx, r, reg.RemoteOptions()...)
	if err != nil {
		t.Fatalf("catalog of %s: %v", reg.Host, err)
	}
	got := map[string]string{}
	for _, repo := range repos {
		rr, err := name.NewRepository(reg.Host+"/"+repo, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		tags, err := remote.List(rr, reg.RemoteOptions()...)
		if err != nil {
			t.Fatalf("tags of %s: %v", rr, err)
		}
		for _, tag := range tags {
			d, err := remote.Head(rr.Tag(tag), reg.RemoteOptions()...)
			if err != nil {
				t.Fatalf("head %s:%s: %v", rr, tag, err)
			}
			got[repo+":"+tag] = d.Digest.String()
		}
	}
	return got
}

// checkTarget fails unless the registry holds exactly want ("repo:tag" ->
// digest).
func checkTarget(t *testing.T, reg *regtest.Registry, want map[string]string) {
	t.Helper()
	got := targetTags(t, reg)
	for _, ref := range sortedRefs(want) {
		switch d, ok := got[ref]; {
		case !ok:
			t.Errorf("target lacks %s", ref)
		case d != want[ref]:
			t.Errorf("target %s has digest %s, the source %s", ref, d, want[ref])
		}
	}
	for _, ref := range sortedRefs(got) {
		if _, ok := want[ref]; !ok {
			t.Errorf("target holds %s, which was not asked for", ref)
		}
	}
}

func sortedRefs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunInputFormats(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	s := seed(t, src, inputsCorpus).Tags
	for _, ns := range inputsCorpus.Namespaces {
		for _, ref := range []string{"/app0:v0", "/app0:v1", "/app0:v2", "/app1:v0", "/app1:v1", "/app1:v2"} {
			if s[ns+ref] == "" {
				t.Fatalf("the corpus has no %s", ns+ref)
			}
		}
	}
	digest := func(ref string) string { return s[ref] }

	tests := []struct {
		name string
		// args returns the command line after "run", given the target and
		// a folder for the input files.
		args func(t *testing.T, dst *regtest.Registry, dir string) []string
		want map[string]string // target "repo:tag" -> source digest
	}{
		{
			name: "ac get images table",
			args: func(t *testing.T, dst *regtest.Registry, dir string) []string {
				row := func(name, tag, arch, size, created, dgst string) string {
					return fmt.Sprintf("%-14s%-6s%-8s%-9s%-15s%s\n", name, tag, arch, size, created, dgst)
				}
				table := row("NAME", "TAG", "ARCH", "SIZE", "CREATED", "DIGEST") +
					row("alpha/app0", "v0", "multi", "1.2MB", "2 days ago", digest("alpha/app0:v0")) +
					row("alpha/app1", "v2", "amd64", "1.0MB", "3 hours ago", "unknown") +
					row("beta/app0", "v1", "amd64", "1.0MB", "5 weeks ago", digest("beta/app0:v1"))
				list := writeFile(t, filepath.Join(dir, "ac-images.txt"), table)
				return []string{"--from", src.Host, "--to", dst.Host, "--insecure", "--images", list}
			},
			want: map[string]string{
				"alpha/app0:v0": digest("alpha/app0:v0"),
				"alpha/app1:v2": digest("alpha/app1:v2"),
				"beta/app0:v1":  digest("beta/app0:v1"),
			},
		},
		{
			name: "oc mapping file with renames",
			args: func(t *testing.T, dst *regtest.Registry, dir string) []string {
				mapping := "# oc image mirror style\n" +
					"alpha/app0:v1=renamed/thing:v1\n" +
					src.Host + "/beta/app1:v0=" + dst.Host + "/beta/other:stable\n" +
					"beta/app0=copied/beta0\n" + // every tag
					"alpha/app1:v2=alpha/app1\n" // the tag defaults to the source's
				list := writeFile(t, filepath.Join(dir, "mapping.txt"), mapping)
				return []string{"--from", src.Host, "--to", dst.Host, "--insecure", "--images", list}
			},
			want: map[string]string{
				"renamed/thing:v1":  digest("alpha/app0:v1"),
				"beta/other:stable": digest("beta/app1:v0"),
				"copied/beta0:v0":   digest("beta/app0:v0"),
				"copied/beta0:v1":   digest("beta/app0:v1"),
				"copied/beta0:v2":   digest("beta/app0:v2"),
				"alpha/app1:v2":     digest("alpha/app1:v2"),
			},
		},
		{
			name: "image-migrator rules",
			args: func(t *testing.T, dst *regtest.Registry, dir string) []string {
				rules := "{\n" +
					fmt.Sprintf("  %q: %q,\n", src.Host+"/alpha/app1", dst.Host+"/gamma/app1") + // no tag: every tag
					fmt.Sprintf("  %q: %q,\n", src.Host+"/beta/app0:v2", dst.Host+"/beta/renamed") + // a rename, same tag
					fmt.Sprintf("  %q: %q\n", src.Host+"/beta/app1:v1", "") + // the default destination
					"}\n"
				file := writeFile(t, filepath.Join(dir, "images.json"), rules)
				// As with image-migrator: no source flag, the rules name it.
				return []string{"--to", dst.Host, "--insecure", "--rules", file}
			},
			want: map[string]string{
				"gamma/app1:v0":   digest("alpha/app1:v0"),
				"gamma/app1:v1":   digest("alpha/app1:v1"),
				"gamma/app1:v2":   digest("alpha/app1:v2"),
				"beta/renamed:v2": digest("beta/app0:v2"),
				"beta/app1:v1":    digest("beta/app1:v1"),
			},
		},
		{
			name: "spec file",
			args: func(t *testing.T, dst *regtest.Registry, dir string) []string {
				writeFile(t, filepath.Join(dir, "lists", "image-list.txt"),
					"alpha/app0\n"+ // every tag, then the tag filter
						"alpha/app1:v1\n"+ // left out by the tag filter
						"beta/app0:v0\n"+ // left out by the namespace filter
						"alpha/app1:v2 "+digest("alpha/app1:v2")+"\n")
				spec := fmt.Sprintf(`apiVersion: regmigrate.io/v1alpha1
kind: Migration
metadata:
  name: inputs-e2e
source:
  registry: %s
  insecure: true
target:
  registry: %s/platform
  insecure: true
images:
  lists: [lists/image-list.txt]
filters:
  excludeNamespaces: [beta]
  tags: '^v[02]$'
copy:
  jobs: 4
shards:
  size: 2
  minSize: 1
`, src.Host, dst.Host)
				return []string{"-f", writeFile(t, filepath.Join(dir, "migration.yaml"), spec)}
			},
			want: map[string]string{
				"platform/alpha/app0:v0": digest("alpha/app0:v0"),
				"platform/alpha/app0:v2": digest("alpha/app0:v2"),
				"platform/alpha/app1:v2": digest("alpha/app1:v2"),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dst := regtest.StartDistribution(t, regtest.Options{})
			out := filepath.Join(t.TempDir(), "run")
			args := append([]string{"run"}, tc.args(t, dst, t.TempDir())...)
			args = append(args, "--out", out, "--progress", "none")
			code, _, stderr := runCLI(t, nil, args...)
			if code != contract.ExitOK {
				t.Fatalf("exit %d, want 0", code)
			}
			if strings.Contains(stderr, "bad input") {
				t.Errorf("stderr reports bad input lines for a valid file:\n%s", stderr)
			}
			checkTarget(t, dst, tc.want)
			rep := readReport(t, out)
			if rep.Total != len(tc.want) || rep.Copied != len(tc.want) || !rep.Verified {
				t.Errorf("report: total %d copied %d verified %v, want %d copied and verified", rep.Total, rep.Copied, rep.Verified, len(tc.want))
			}
		})
	}
}

// The spec's shard settings reach the plan: alpha's three images with
// shards.size 2 make two parts.
func TestRunSpecShardsReachThePlan(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	s := seed(t, src, regtest.Corpus{Namespaces: []string{"alpha", "beta"}, ReposPerNS: 1, TagsPerRepo: 3, LayerSize: 1 << 10})
	dir := t.TempDir()
	spec := writeFile(t, filepath.Join(dir, "migration.yaml"), fmt.Sprintf(`apiVersion: regmigrate.io/v1alpha1
kind: Migration
metadata:
  name: shards
source:
  registry: %s
  insecure: true
target:
  registry: %s
  insecure: true
filters:
  includeNamespaces: [alpha]
shards:
  size: 2
  minSize: 1
`, src.Host, dst.Host))
	out := filepath.Join(dir, "run")
	code, _, _ := runCLI(t, nil, "run", "-f", spec, "--out", out, "--progress", "none")
	if code != contract.ExitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	var ids []string
	if err := artifacts.ReadJSON(filepath.Join(out, contract.ShardIDsParam), &ids); err != nil {
		t.Fatal(err)
	}
	if want := []string{"ns-alpha-p1", "ns-alpha-p2"}; strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("shard IDs %q, want %q", ids, want)
	}
	want := map[string]string{}
	for ref, d := range s.Tags {
		if strings.HasPrefix(ref, "alpha/") {
			want[ref] = d
		}
	}
	checkTarget(t, dst, want)
}

func TestRunListWithBadLines(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	s := seed(t, src, inputsCorpus).Tags
	dir := t.TempDir()
	list := writeFile(t, filepath.Join(dir, "image-list.txt"),
		"alpha/app0:v0\n"+
			"Alpha/App1:v1\n"+ // line 2: not a reference (uppercase)
			"alpha/app1:v0 sha256:1234\n"+ // line 3: a bad digest
			"beta/app0:v1 "+s["beta/app0:v1"]+"\n"+
			"beta/app1:v2@sha256:xyz\n") // line 5: a bad digest in the reference
	out := filepath.Join(dir, "run")
	code, _, stderr := runCLI(t, nil, "run", "--from", src.Host, "--to", dst.Host, "--insecure", "--images", list, "--out", out, "--progress", "none")
	if code != contract.ExitFailed {
		t.Errorf("exit %d, want %d: bad lines were skipped", code, contract.ExitFailed)
	}
	for _, want := range []string{
		list + ":2: ", `"alpha/app1:v1"`, // the line, and what to write
		list + ":3: ", "sha256:1234",
		list + ":5: ", "sha256:xyz",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q", want)
		}
	}
	for _, good := range []string{":1: ", ":4: "} {
		if strings.Contains(stderr, list+good) {
			t.Errorf("stderr reports the valid line %s%s", list, good)
		}
	}
	checkTarget(t, dst, map[string]string{"alpha/app0:v0": s["alpha/app0:v0"], "beta/app0:v1": s["beta/app0:v1"]})
}

// Images a list names but the source lacks are failures the user hears
// about, with the line that named them; the others are copied.
func TestRunListedImagesMissingOnTheSource(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	s := seed(t, src, regtest.Corpus{Namespaces: []string{"alpha"}, ReposPerNS: 1, TagsPerRepo: 1, LayerSize: 1 << 10}).Tags
	tests := []struct {
		name    string
		missing string // the line's text; it is line 2
		failed  []string
	}{
		{name: "a tag", missing: "alpha/app0:nosuch", failed: []string{src.Host + "/alpha/app0:nosuch"}},
		{name: "a repository, every tag", missing: "alpha/ghost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dst := regtest.StartDistribution(t, regtest.Options{})
			dir := t.TempDir()
			list := writeFile(t, filepath.Join(dir, "image-list.txt"), "alpha/app0:v0\n"+tc.missing+"\n")
			out := filepath.Join(dir, "run")
			code, _, stderr := runCLI(t, nil, "run", "--from", src.Host, "--to", dst.Host, "--insecure", "--images", list, "--out", out, "--progress", "none")
			if code != contract.ExitFailed {
				t.Errorf("exit %d, want %d: %s is listed but missing on the source", code, contract.ExitFailed, tc.missing)
			}
			checkTarget(t, dst, map[string]string{"alpha/app0:v0": s["alpha/app0:v0"]})
			rep := readReport(t, out)
			var failed []string
			for _, im := range rep.Images {
				if im.Status == contract.StatusFailed {
					failed = append(failed, im.Source)
				}
			}
			if !slices.Equal(failed, tc.failed) {
				t.Errorf("report: failed %q, want %q", failed, tc.failed)
			}
			if tc.failed == nil && (!strings.Contains(stderr, list+":2: ") || !strings.Contains(stderr, tc.missing)) {
				t.Errorf("stderr does not name %s:2 and %s, a listed repository the source lacks", list, tc.missing)
			}
		})
	}
}

func TestRunDryRunPrintsThePlanAndWritesNothing(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	s := seed(t, src, regtest.Corpus{Namespaces: []string{"alpha", "beta"}, ReposPerNS: 1, TagsPerRepo: 2, LayerSize: 1 << 10, MultiArch: true, Signature: true})
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, _ := runCLI(t, nil, "run", "--from", src.Host, "--to", dst.Host, "--insecure", "--dry-run", "--out", out, "--progress", "none")
	if code != contract.ExitOK {
		t.Errorf("exit %d, want 0", code)
	}
	// Every image, the signature included (it would be copied along).
	var want []string
	for _, ref := range sortedRefs(s.Tags) {
		want = append(want, fmt.Sprintf("+ %s/%s@%s=%s/%s", src.Host, ref, s.Tags[ref], dst.Host, ref))
	}
	var got []string
	for _, l := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(l, "+ ") || strings.HasPrefix(l, "= ") || strings.HasPrefix(l, "! ") {
			got = append(got, l)
		}
	}
	for _, w := range want {
		switch {
		case slices.Contains(got, w):
		case strings.Contains(w, ".sig@"):
			t.Errorf("the plan lacks the signature the run would copy along with its image:\n%s", w)
		default:
			t.Errorf("the plan lacks\n%s", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("the plan has a line for what would not be copied:\n%s", g)
		}
	}
	if !strings.HasPrefix(stdout, "# dry run: + to copy, = already on the target (skipped), ! failed while planning (reason in report.md); nothing was written\n") {
		t.Errorf("stdout does not start with the legend of the plan's marks:\n%s", stdout)
	}
	if want := fmt.Sprintf("%d images: %d to copy, 0 already on the target, 0 failed; dry run: nothing written\n", len(want), len(want)); !strings.Contains(stdout, want) {
		t.Errorf("stdout lacks the summary %q:\n%s", want, stdout)
	}
	checkTarget(t, dst, map[string]string{})

	// -o json: the report (the plan) on stdout, the readable lines on stderr.
	code, stdout, stderr := runCLI(t, nil, "run", "--from", src.Host, "--to", dst.Host, "--insecure", "--dry-run", "--out", out, "--progress", "none", "-o", "json")
	var rep struct {
		DryRun bool
		Total  int
		Images []struct{ Source, Target, Digest, Status string }
	}
	if err := json.Unmarshal([]byte(stdout), &rep); code != contract.ExitOK || err != nil {
		t.Fatalf("-o json: exit %d, %v:\n%s", code, err, stdout)
	}
	if !rep.DryRun || rep.Total != len(want) || len(rep.Images) != len(want) || rep.Images[0].Status != contract.StatusPlanned {
		t.Errorf("-o json: %+v, want the %d planned images", rep, len(want))
	}
	if !strings.Contains(stderr, "dry run: nothing written") || !strings.Contains(stderr, "run directory: "+out) {
		t.Errorf("-o json: the summary and the run directory are not on stderr:\n%s", stderr)
	}
	checkTarget(t, dst, map[string]string{})
}

func TestRunBadFlagsSayWhatToWrite(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1 of loopback: a run that got past the flags
	// fails fast there, without asking DNS.
	const from, to = "127.0.0.1:1", "127.0.0.2:1"
	tests := []struct {
		name string
		args []string
		want []string // parts of stderr
	}{
		{name: "no --to", args: []string{"--from", from}, want: []string{"--to", "HOST[:PORT][/NAMESPACE]"}},
		{name: "no --from and no list", args: []string{"--to", to}, want: []string{"--from", "HOST[:PORT][/NAMESPACE]"}},
		{name: "a space in --from", args: []string{"--from", "legacy example:5000", "--to", to}, want: []string{"legacy example:5000", "HOST[:PORT][/NAMESPACE]"}},
		{name: "credentials in --from", args: []string{"--from", "admin@legacy.example:5000", "--to", to}, want: []string{"HOST[:PORT][/NAMESPACE]"}},
		{name: "an uppercase namespace in --from", args: []string{"--from", "legacy.example:5000/Team", "--to", to}, want: []string{"Team", "lowercase"}},
		{name: "a port that is not a number in --from", args: []string{"--from", "legacy.example:port", "--to", to}, want: []string{"legacy.example:port", "HOST[:PORT][/NAMESPACE]"}},
		{name: "only a scheme in --to", args: []string{"--from", from, "--to", "https://"}, want: []string{"https://", "HOST[:PORT][/NAMESPACE]"}},
		{name: "a misspelt flag", args: []string{"--form", from, "--to", to}, want: []string{"--form"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "run")
			args := append([]string{"run", "--out", out, "--progress", "none"}, tc.args...)
			code, _, stderr := runCLI(t, nil, args...)
			if code != contract.ExitUsage {
				t.Errorf("exit %d, want %d (bad flags)", code, contract.ExitUsage)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a run directory was written for bad flags")
			}
		})
	}
}

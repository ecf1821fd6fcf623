package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// TestRunAndStepsWriteTheSameReport migrates the same corpus twice, with
// the Image API backfilled: once with `regmigrate run --kubeconfig`, once
// with the step commands in the order the generated Workflow runs them
// (export → per shard mirror-shard → backfill-shard → verify --shard-dir
// --check-image-api → verify --run-dir), each into its own target registry
// and Image API. The two report.json (and report.md) are the same but for
// timestamps and the target's address: totals, every image's line, the
// backfill counts and the ImageStreamTag checks; and so are the two
// report.html, but for times, sizes and the command that started the run.
func TestRunAndStepsWriteTheSameReport(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, src, smallCorpus)
	const group = "image.alauda.io"

	// regmigrate run
	localDst := regtest.StartDistribution(t, regtest.Options{})
	_, localKC := doubleKubeconfig(t, group)
	local := filepath.Join(t.TempDir(), "run")
	if code, _, _ := runCLI(t, nil, "run", "--from", src.Host, "--to", localDst.Host, "--insecure", "--out", local, "--min-shard-size", "1",
		"--progress", "none", "--kubeconfig", localKC); code != contract.ExitOK {
		t.Fatalf("regmigrate run: exit %d", code)
	}

	// the step commands, as the Argo pods run them
	argoDst := regtest.StartDistribution(t, regtest.Options{})
	_, argoKC := doubleKubeconfig(t, group)
	argo := filepath.Join(t.TempDir(), "run")
	insecure := src.Host + "," + argoDst.Host
	if code := runStep(t, nil, contract.StepExport, "--from", src.Host, "--to", argoDst.Host, "--insecure", insecure, "--out", argo, "--min-shard-size", "1"); code != contract.ExitOK {
		t.Fatalf("export: exit %d", code)
	}
	var ids []string
	if b, err := os.ReadFile(filepath.Join(argo, contract.ShardIDsParam)); err != nil || json.Unmarshal(b, &ids) != nil || len(ids) != len(smallCorpus.Namespaces) {
		t.Fatalf("shard-ids.json %q (%v): want one shard per namespace", b, err)
	}
	for _, id := range ids {
		sd := filepath.Join(argo, contract.ShardsDir, id)
		for _, step := range []struct {
			name string
			args []string
		}{
			{contract.StepMirror, []string{"--shard-dir", sd, "--insecure", insecure}},
			{contract.StepBackfill, []string{"--shard-dir", sd, "--insecure", insecure, "--kubeconfig", argoKC}},
			{contract.StepVerify, []string{"--shard-dir", sd, "--insecure", insecure, "--check-image-api", "--kubeconfig", argoKC}},
		} {
			if code := runStep(t, nil, step.name, step.args...); code != contract.ExitOK {
				t.Fatalf("%s %s: exit %d", step.name, id, code)
			}
		}
	}
	if code := runStep(t, nil, contract.StepVerify, "--run-dir", argo); code != contract.ExitOK {
		t.Fatalf("verify --run-dir: exit %d", code)
	}

	localRep := normalizedReport(t, local, localDst.Host)
	argoRep := normalizedReport(t, argo, argoDst.Host)
	if !reflect.DeepEqual(localRep, argoRep) {
		l, _ := json.MarshalIndent(localRep, "", "  ")
		a, _ := json.MarshalIndent(argoRep, "", "  ")
		t.Errorf("report.json differs:\n%s", lineDiff(string(l), string(a)))
	}
	// Both are complete: every tag, the backfill applied, every
	// ImageStreamTag checked.
	var rep struct {
		Total, Failed                                    int
		Verified                                         bool
		Backfill                                         string
		BackfillApplied, BackfillSkipped, BackfillFailed int
		ImageAPIPassed, ImageAPIFailed                   int
	}
	raw, _ := json.Marshal(argoRep)
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Total != len(seeded.Tags) || rep.Failed != 0 || !rep.Verified {
		t.Errorf("report: %d images, %d failed, verified %v; want the %d seeded tags verified", rep.Total, rep.Failed, rep.Verified, len(seeded.Tags))
	}
	if rep.BackfillApplied == 0 || rep.BackfillFailed != 0 || rep.BackfillApplied+rep.BackfillSkipped != rep.Total || !strings.HasPrefix(rep.Backfill, group+"/v1 (copy strategy)") {
		t.Errorf("backfill %q: %d applied, %d skipped, %d failed; want every tag backfilled through %s", rep.Backfill, rep.BackfillApplied, rep.BackfillSkipped, rep.BackfillFailed, group)
	}
	if rep.ImageAPIPassed != rep.Total || rep.ImageAPIFailed != 0 {
		t.Errorf("ImageStreamTag checks: %d passed, %d failed; want all %d passed", rep.ImageAPIPassed, rep.ImageAPIFailed, rep.Total)
	}

	localMD := normalizedMarkdown(t, local, localDst.Host)
	argoMD := normalizedMarkdown(t, argo, argoDst.Host)
	if localMD != argoMD {
		t.Errorf("report.md differs:\n%s", lineDiff(localMD, argoMD))
	}
	localHTML := normalizedHTML(t, local, localDst.Host)
	argoHTML := normalizedHTML(t, argo, argoDst.Host)
	if localHTML != argoHTML {
		t.Errorf("report.html differs:\n%s", lineDiff(localHTML, argoHTML))
	}
	// Both know when the run started (the Argo aggregate from export's
	// run.json) and record it as the run directory's one run.
	if !strings.Contains(argoHTML, "<dt>Started</dt><dd><time>") || strings.Count(argoHTML, `<tr class="run">`) != 1 {
		t.Errorf("the Argo report.html lacks the start of the run or its one history entry")
	}
}

// normalizedReport is report.json without its timestamps and byte counts,
// the target's address replaced by TARGET. Bytes differ by design: the
// local run shares one blob tracker across shards, so a blob that images
// of several namespaces share is read once and mounted elsewhere, while
// each mirror-shard pod uploads what its shard needs; and within a shard
// the image that uploads a shared blob first varies.
func normalizedReport(t *testing.T, dir, target string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, contract.ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(b), target, "TARGET")), &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "started")
	delete(m, "finished")
	delete(m, "bytes")
	for _, list := range []string{"images", "shards"} {
		items, _ := m[list].([]any)
		for _, it := range items {
			delete(it.(map[string]any), "bytes")
		}
	}
	return m
}

// report.md's times (the start and finish lines, and the run's duration at
// the end of the result line, which only the local run knows) and sizes.
var (
	timeLines = regexp.MustCompile(`(?m)^- (started|finished): .*\n`)
	duration  = regexp.MustCompile(`(?m) \([0-9.]+[a-zµ]+\)\*\*$`)
	size      = regexp.MustCompile(`\b[0-9.]+ (B|KiB|MiB|GiB)\b`)
)

func normalizedMarkdown(t *testing.T, dir, target string) string {
	t.Helper()
	md := strings.ReplaceAll(readFile(t, filepath.Join(dir, contract.ReportMD)), target, "TARGET")
	md = duration.ReplaceAllString(timeLines.ReplaceAllString(md, ""), "**")
	return size.ReplaceAllString(md, "SIZE")
}

// report.html's times, sizes, durations and command line (`regmigrate
// run ...` here, the export step's arguments there) are marked up, so
// they are replaced by their element alone.
var (
	htmlTime     = regexp.MustCompile(`<time datetime="[^"]*">[^<]*</time>`)
	htmlSize     = regexp.MustCompile(`<span class="size">[^<]*</span>`)
	htmlDuration = regexp.MustCompile(`<span class="duration">[^<]*</span>`)
	htmlCommand  = regexp.MustCompile(`<pre class="command">[^<]*</pre>`)
)

func normalizedHTML(t *testing.T, dir, target string) string {
	t.Helper()
	h := strings.ReplaceAll(readFile(t, filepath.Join(dir, contract.ReportHTML)), target, "TARGET")
	h = htmlTime.ReplaceAllString(h, "<time>")
	h = htmlSize.ReplaceAllString(h, `<span class="size">SIZE</span>`)
	h = htmlDuration.ReplaceAllString(h, `<span class="duration">DURATION</span>`)
	return htmlCommand.ReplaceAllString(h, `<pre class="command">COMMAND</pre>`)
}

// lineDiff lists the first lines that differ, position by position.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, "- "+x+"\n+ "+y)
		}
		if len(out) == 10 {
			out = append(out, "...")
			break
		}
	}
	return strings.Join(out, "\n")
}

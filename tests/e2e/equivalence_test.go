package e2e

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// TestRunAndStepsWriteTheSameReport migrates the same corpus twice, with
// the Image API backfilled: once with `regmigrate run --kubeconfig`, once
// with the step commands in the order the generated Workflow runs them
// (export → per shard mirror-shard → backfill-shard → verify --shard-dir
// --check-image-api → verify --run-dir), each into its own target registry
// and Image API. The two run directories hold the same files with the same
// contents (compareRunDirs): the plan, every shard's results, the Image
// API audit files, mirror.log, report.json and report.md, but for
// timestamps, the target's address and the transfer counters. report.html
// too, but for times, sizes and the command that started the run.
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

	// the step commands, as the Argo pods run them (the aggregate is told
	// when the run began: the Workflow passes its creation time)
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
	if code := runStep(t, nil, contract.StepVerify, "--run-dir", argo, "--started", time.Now().UTC().Format(time.RFC3339)); code != contract.ExitOK {
		t.Fatalf("verify --run-dir: exit %d", code)
	}

	compareRunDirs(t, local, localDst.Host, argo, argoDst.Host)
	argoRep := normalizedReport(t, argo, argoDst.Host)
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

	// Both know when the run started (the Argo aggregate from export's
	// run.json) and record it as the run directory's one run.
	argoHTML := readFile(t, filepath.Join(argo, contract.ReportHTML))
	if !strings.Contains(argoHTML, "<dt>Started</dt><dd><time") || strings.Count(argoHTML, `<tr class="run">`) != 1 {
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
	duration  = regexp.MustCompile(`(?m) in [0-9.]+[0-9.a-zµ]*\*\*$`)
	size      = regexp.MustCompile(`\b[0-9.]+ (B|KiB|MiB|GiB)\b`)
)

// report.html's times, sizes, durations and command line (`regmigrate
// run ...` here, the export step's arguments there) are marked up, so
// they are replaced by their element alone.
var (
	htmlTime     = regexp.MustCompile(`<time datetime="[^"]*">[^<]*</time>`)
	htmlSize     = regexp.MustCompile(`<span class="size">[^<]*</span>`)
	htmlDuration = regexp.MustCompile(`<span class="duration">[^<]*</span>`)
	htmlCommand  = regexp.MustCompile(`<pre class="command">[^<]*</pre>`)
)

func normalizedHTML(h string) string {
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

// compareRunDirs compares two run directories file by file: the same
// files, with the same contents once each run's target address is TARGET
// and what measures the run rather than describes it is set aside:
// timestamps and durations, and the transfer counters (bytes moved, blobs
// uploaded or mounted). Those differ by design: the local run shares one
// blob tracker across shards, so a blob that images of several namespaces
// share is read once and mounted elsewhere, while each mirror-shard pod
// uploads what its shard needs; and within a shard the image that uploads
// a shared blob first varies. mirror.log is compared as a set of lines:
// images finish in whatever order the copies end.
func compareRunDirs(t *testing.T, a, aTarget, b, bTarget string) {
	t.Helper()
	files := map[string][2]string{}
	for i, d := range []struct{ dir, target string }{{a, aTarget}, {b, bTarget}} {
		err := filepath.WalkDir(d.dir, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(d.dir, p)
			// The local runner's per-invocation record and lock; on Argo
			// the Workflow is the invocation's record.
			if strings.HasPrefix(rel, contract.RunsDir+"/") || rel == contract.LockFile {
				return nil
			}
			raw, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v, ok := files[rel]
			if !ok {
				v = [2]string{"(missing)", "(missing)"}
			}
			v[i] = normalizeFile(t, rel, strings.ReplaceAll(string(raw), d.target, "TARGET"))
			files[rel] = v
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 10 {
		t.Fatalf("run directories hold %d files: want the plan, every shard's results and the report", len(files))
	}
	names := slices.Sorted(maps.Keys(files))
	for _, rel := range names {
		if v := files[rel]; v[0] != v[1] {
			t.Errorf("%s differs between the local run and the steps:\n%s", rel, lineDiff(v[0], v[1]))
		}
	}
	t.Logf("compared %d files: %s", len(names), strings.Join(names, " "))
}

// measured are the JSON fields that measure or merely describe a run:
// when, how long, how many bytes and blobs it moved, and the command line
// (each way is invoked its own way).
var measured = map[string]bool{"started": true, "finished": true, "plannedAt": true, "command": true, "bytes": true, "blobsUploaded": true, "blobsMounted": true, "blobsPresent": true}

func normalizeFile(t *testing.T, rel, s string) string {
	t.Helper()
	switch {
	case strings.HasSuffix(rel, ".json"):
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		b, _ := json.MarshalIndent(dropMeasured(v), "", "  ")
		return string(b)
	case strings.HasSuffix(rel, contract.MirrorLog):
		lines := strings.Split(s, "\n")
		slices.Sort(lines)
		return strings.Join(lines, "\n")
	case strings.HasSuffix(rel, ".html"):
		return normalizedHTML(s)
	case strings.HasSuffix(rel, ".md"):
		md := duration.ReplaceAllString(timeLines.ReplaceAllString(s, ""), "**")
		return size.ReplaceAllString(md, "SIZE")
	}
	return s
}

func dropMeasured(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if measured[k] {
				delete(x, k)
			} else {
				x[k] = dropMeasured(e)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = dropMeasured(e)
		}
	}
	return v
}

package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
	"github.com/regmigrate/regmigrate/tests/terminal"
)

var signatureTag = regexp.MustCompile(`:sha256-[0-9a-f]{64}\.sig$`)

// progressRun migrates smallCorpus (its signature tag is found during the
// copy, not in the plan) with one repository whose blobs fail for good, and
// returns the plan's image count, the report and what went to stderr.
func progressRun(t *testing.T, mode string) (planned int, rep reportJSON, stderr string) {
	t.Helper()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seed(t, src, smallCorpus)
	px := faultproxy.New(t, "http://"+src.Host, faultproxy.Fault{PathRegex: regexp.MustCompile(`^/v2/team-b/app0/blobs/`), Kind: faultproxy.Status500, Times: -1})
	out := filepath.Join(t.TempDir(), "run")
	code, _, stderr := runCLI(t, nil, "run", "--from", px.Host, "--to", dst.Host, "--insecure", "--out", out, "--retries", "1", "--progress", mode)
	if code != contract.ExitFailed && code != contract.ExitRetryable {
		t.Fatalf("exit %d, want a failed run (team-b/app0 cannot be read)", code)
	}
	rep = readReport(t, out)
	for _, im := range rep.Images { // the plan is every image but the signature tags
		if !signatureTag.MatchString(im.Source) {
			planned++
		}
	}
	if rep.Failed == 0 || planned == 0 || planned >= rep.Total {
		t.Fatalf("%d planned, report: %d images, %d failed; want failures and a signature found on the way", planned, rep.Total, rep.Failed)
	}
	return planned, rep, stderr
}

// Off a terminal: plain lines with the figures, the plan's total from the
// first line of the copy to its last, the log line of a failed image on
// its own line.
func TestRunProgressLines(t *testing.T) {
	t.Parallel()
	planned, rep, stderr := progressRun(t, "lines")
	var copyLines []string
	phases := map[string]bool{}
	for _, l := range strings.Split(stderr, "\n") {
		if name, _, ok := strings.Cut(l, ": "); ok && !strings.Contains(name, " ") && !strings.Contains(name, "=") {
			phases[name] = true
		}
		if strings.HasPrefix(l, "copy: ") {
			copyLines = append(copyLines, l)
		}
	}
	for _, p := range []string{"plan/catalog", "plan/tags", "copy", "verify"} {
		if !phases[p] {
			t.Errorf("no %q line in:\n%s", p, stderr)
		}
	}
	if len(copyLines) < 2 || !strings.HasPrefix(copyLines[0], fmt.Sprintf("copy: 0/%d images, 0 B / 0 B+, 0 B/s, ETA --", planned)) {
		t.Fatalf("the copy's first line does not show every figure from the start:\n%s", strings.Join(copyLines, "\n"))
	}
	for _, l := range copyLines {
		if !strings.Contains(l, fmt.Sprintf("/%d images, ", planned)) {
			t.Errorf("a copy line with another total than the plan's %d: %s", planned, l)
		}
	}
	last := copyLines[len(copyLines)-1]
	extra := rep.Total - planned
	for _, want := range []string{fmt.Sprintf("copy: %d/%d images, ", planned, planned), ", done in ", fmt.Sprintf("failed %d", rep.Failed), fmt.Sprintf("+%d found on the way", extra)} {
		if !strings.Contains(last, want) {
			t.Errorf("last copy line %q lacks %q", last, want)
		}
	}
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^verify: %d/%d images, .*done in`, rep.Total, rep.Total)).MatchString(stderr) {
		t.Errorf("no final verify line over the %d images copied:\n%s", rep.Total, stderr)
	}
	if !regexp.MustCompile(`(?m)^time=\S+ level=ERROR msg="image failed" .*team-b/app0`).MatchString(stderr) {
		t.Errorf("the failed image's log line is not a line of its own:\n%s", stderr)
	}
}

// --progress json: one object a line, the same figures.
func TestRunProgressJSON(t *testing.T) {
	t.Parallel()
	planned, rep, stderr := progressRun(t, "json")
	type snap struct {
		Phase                 string
		Done, Total, Extra    int
		Counts                map[string]int
		BytesDone, BytesTotal int64
		BytesPerSecond        float64
		ETASeconds            *float64
		ElapsedSeconds        float64
		Finished              bool
		BytesTotalFinal       bool
	}
	var copies []snap
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var s snap
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if s.Phase == "copy" {
			copies = append(copies, s)
		}
	}
	if len(copies) < 2 || copies[0].Done != 0 || copies[0].Finished || copies[0].ETASeconds != nil {
		t.Fatalf("copy objects %+v: want one at the start and one at the end", copies)
	}
	for _, s := range copies {
		if s.Total != planned {
			t.Errorf("copy object with total %d, the plan has %d", s.Total, planned)
		}
	}
	last := copies[len(copies)-1]
	if !last.Finished || last.Done != planned || last.Extra != rep.Total-planned || last.Counts["failed"] != rep.Failed ||
		last.BytesDone != rep.Bytes || last.BytesTotal != rep.Bytes || !last.BytesTotalFinal || last.ETASeconds == nil || *last.ETASeconds != 0 {
		t.Errorf("last copy object %+v; report: %d bytes, %d failed, %d images", last, rep.Bytes, rep.Failed, rep.Total)
	}
}

// --progress bar: a line per phase, and the failed image's log line
// printed above the bars, never into them.
func TestRunProgressBar(t *testing.T) {
	t.Parallel()
	planned, rep, stderr := progressRun(t, "bar")
	screen := terminal.Screen(stderr)
	row := func(prefix string) int {
		for i, l := range screen {
			if strings.HasPrefix(l, prefix) {
				return i
			}
		}
		t.Errorf("no line starting with %q on the screen:\n%s", prefix, strings.Join(screen, "\n"))
		return -1
	}
	catalog, tags, cp, verify := row("plan/catalog ["), row("plan/tags ["), row("copy     ["), row("verify   [")
	logLine := -1
	for i, l := range screen {
		if strings.Contains(l, `msg="image failed"`) {
			if strings.Contains(l, "[") && strings.Contains(l, " images, ") {
				t.Errorf("a log line drawn into a bar: %q", l)
			}
			logLine = i
		}
	}
	if !(catalog < tags && tags < cp && cp < verify) || logLine < 0 || logLine > cp {
		t.Errorf("want the phases in order and the log line above the copy's bar; the screen:\n%s", strings.Join(screen, "\n"))
	}
	if cp >= 0 && !strings.Contains(screen[cp], fmt.Sprintf("] %d/%d images, ", planned, planned)) {
		t.Errorf("copy bar %q: want %d/%d images", screen[cp], planned, planned)
	}
	if verify >= 0 && !strings.Contains(screen[verify], fmt.Sprintf("] %d/%d images, ", rep.Total, rep.Total)) {
		t.Errorf("verify bar %q: want %d/%d images", screen[verify], rep.Total, rep.Total)
	}
	if last := screen[len(screen)-1]; !strings.HasPrefix(last, "regmigrate: ") {
		t.Errorf("the error is not printed below the bars: last line %q", last)
	}
}

func TestRunProgressModeIsChecked(t *testing.T) {
	t.Parallel()
	code, _, stderr := runCLI(t, nil, "run", "--from", "legacy.example:5000", "--to", "new.example:5000", "--out", t.TempDir(), "--progress", "fancy")
	if code != contract.ExitUsage || !strings.Contains(stderr, `--progress "fancy": want auto, bar, lines, json or none`) {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

// `regmigrate report` on a folder that is no run directory says what is
// missing: a usage error.
func TestReportOfAFolderWithoutARun(t *testing.T) {
	t.Parallel()
	code, _, stderr := runCLI(t, nil, "report", t.TempDir())
	if code != contract.ExitUsage || !strings.Contains(stderr, "no shards.json") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

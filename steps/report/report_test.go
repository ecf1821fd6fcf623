package report_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/report"
	"github.com/regmigrate/regmigrate/steps/switchresult"
)

var started = time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)

// withFailures is a run of six images in three namespaces (and one
// without): one copied image per namespace, one skipped, one transient
// failure, one a rerun will not fix.
func withFailures() report.Report {
	src, dst := "legacy.example:5000/", "newreg.example:5000/"
	im := func(repo, status string, bytes int64, err string, retry bool) report.Image {
		return report.Image{Source: src + repo, Target: dst + repo, Status: status, Bytes: bytes, Error: err, Retryable: retry, Shard: "ns-" + strings.Split(repo, "/")[0]}
	}
	return report.Report{
		Source: "legacy.example:5000", Target: "newreg.example:5000", Started: started, Finished: started.Add(95 * time.Second),
		Total: 6, Copied: 3, Skipped: 1, Failed: 2, Bytes: 3 << 20, VerifyPassed: 4, VerifyFailed: 2,
		ScopeErrors: []string{"images.txt:3: team-x/gone: no such repository on the source"},
		Images: []report.Image{
			im("busybox:latest", contract.StatusCopied, 1<<20, "", false),
			im("team-a/api:v1", contract.StatusCopied, 1<<20, "", false),
			im("team-a/api:v2", contract.StatusSkipped, 0, "", false),
			im("team-b/web:v1", contract.StatusFailed, 0, "blob sha256:abc: reading from the source: GET http://legacy.example:5000/v2/team-b/web/blobs/sha256:abc: 503 Service Unavailable", true),
			im("team-b/web:v2", contract.StatusFailed, 0, "docker schema 1 manifest: <script>alert(1)</script> | not accepted", false),
			im("team-c/db:v1", contract.StatusCopied, 1<<20, "", false),
		},
	}
}

func TestNamespacesSumTheImagesOfEachSourceNamespace(t *testing.T) {
	t.Parallel()
	got := withFailures().Namespaces()
	want := []report.Namespace{
		{Name: report.NoNamespace, Total: 1, Copied: 1, Bytes: 1 << 20},
		{Name: "team-a", Total: 2, Copied: 1, Skipped: 1, Bytes: 1 << 20},
		{Name: "team-b", Total: 2, Failed: 2},
		{Name: "team-c", Total: 1, Copied: 1, Bytes: 1 << 20},
	}
	if len(got) != len(want) {
		t.Fatalf("namespaces %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("namespace %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestMarkdownListsFailuresPerImageAndSumsPerNamespace(t *testing.T) {
	t.Parallel()
	md := withFailures().Markdown()
	for _, want := range []string{
		"## Namespaces\n\n| namespace | images | copied | skipped | failed | moved |",
		"| team-a | 2 | 1 | 1 | 0 | 1.0 MiB |",
		"| team-b | 2 | 0 | 0 | 2 | 0 B |",
		"## Failed images (2)\n\n| source | target | shard | error | what to do |",
		"| `legacy.example:5000/team-b/web:v1` | `newreg.example:5000/team-b/web:v1` | ns-team-b | blob sha256:abc: reading from the source",
		`not accepted | Registries no longer accept Docker schema 1 images`,
		`\| not accepted`, // a | in an error does not break the table
		"Moved: the " + report.BytesMeaning + ".",
		"> scope error: images.txt:3: team-x/gone",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
}

func TestAdviceSaysWhatToDo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err   string
		retry bool
		want  string
	}{
		{"verify: target has sha256:1, want sha256:2", false, "copied and verified again"},
		{"backfill: imagestreammappings is forbidden: User cannot create", false, "imagestreammappings"},
		{"image api: ImageStreamTag b/app:v2 does not exist", false, "backfill it again"},
		{"GET https://r/v2/: x509: certificate signed by unknown authority", false, "--certs-dir"},
		{"HEAD https://r/v2/ns/app/manifests/v1: 401 Unauthorized", false, "--authfile"},
		{"reading ns/app:v1: not found", false, "--rediscover"},
		{"invalid digest: blob sha256:1 from r/ns/app: its content has digest sha256:2; the upload was abandoned", false, "running again will not help"},
		{"GET http://r/v2/ns/app/blobs/sha256:1: 503 Service Unavailable", true, "--retries"},
		{"context canceled", true, "interrupted"},
		{"something new", false, "mirror.log"},
	} {
		if got := report.Advice(report.Image{Error: tc.err, Retryable: tc.retry}); !strings.Contains(got, tc.want) {
			t.Errorf("Advice(%q) = %q, want it to say %q", tc.err, got, tc.want)
		}
	}
}

func TestHTMLIsSelfContainedAndShowsEverySection(t *testing.T) {
	t.Parallel()
	run := &artifacts.Run{Migration: "acp-to-registry-v2", Version: "v1.4.0", Command: []string{"regmigrate", "run", "-f", "migration.yaml", "--out", "run 1"},
		Spec: "metadata:\n  name: acp-to-registry-v2\n", Strategy: contract.StrategyCopy, Started: started}
	b := report.Bundle{Report: withFailures(), Run: run, History: report.History{Runs: []report.RunRecord{
		{Started: started.Add(-24 * time.Hour), Finished: started.Add(-23 * time.Hour), Total: 6, Copied: 2, Failed: 4, ExitCode: contract.ExitRetryable},
		{Started: started, Finished: started.Add(95 * time.Second), Total: 6, Copied: 3, Skipped: 1, Failed: 2, ExitCode: contract.ExitFailed},
	}}, Cutover: &report.Cutover{Diff: "+++ mode record: modern\n", Result: switchresult.Result{Mode: "modern", DryRun: true, Time: started.Add(time.Hour), Pending: 3,
		Clusters: []report.CutoverCluster{{Cluster: "prod", Before: report.ModeRecord{Mode: "legacy"}, After: report.ModeRecord{Mode: "modern"}, Changed: true}}}}}
	raw, err := b.HTML()
	if err != nil {
		t.Fatal(err)
	}
	h := string(raw)
	// Nothing to fetch, nothing to run: it opens from an archive offline.
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script`), regexp.MustCompile(`(?i)\b(src|href)=`), regexp.MustCompile(`(?i)@import|url\(`), regexp.MustCompile(`(?i)<link`),
	} {
		if bad.MatchString(h) {
			t.Errorf("report.html has %s: it must be self-contained and static", bad)
		}
	}
	for _, want := range []string{
		"<title>Migration report: acp-to-registry-v2</title>",
		"Not complete: 2 of 6 images failed, and the scope has 1 error.",
		`<pre class="command">regmigrate run -f migration.yaml --out &#39;run 1&#39;</pre>`,
		`<pre class="spec">metadata:`,
		"copy (the registries do not share storage: images copied)",
		`id="total-failed">2<`,
		`<tr class="namespace"><td class="mono">team-b</td><td class="num">2</td>`,
		`style="width: 100.00%"`,
		"&lt;script&gt;alert(1)&lt;/script&gt;", // an error is text, never markup
		"Registries no longer accept Docker schema 1 images",
		"Scope error: images.txt:3",
		"modern (dry run: nothing changed; --confirm applies)",
		"mode record: modern\n</pre>",
		`<span class="status-fail">transient failures</span>`,
		"@media print",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if n := strings.Count(h, `<tr class="run">`); n != 2 {
		t.Errorf("%d runs in the history, want 2", n)
	}
}

func TestHTMLWithoutRecordsShowsThisRunAlone(t *testing.T) {
	t.Parallel()
	rep := withFailures()
	rep.Failed, rep.Copied, rep.Images, rep.ScopeErrors = 0, 5, nil, nil
	rep.VerifyPassed, rep.Verified = 6, true
	raw, err := report.Bundle{Report: rep}.HTML()
	if err != nil {
		t.Fatal(err)
	}
	h := string(raw)
	for _, want := range []string{
		"Migration report: unnamed migration", "Complete: all 6 images are on the target", "No image failed.",
		"No cutover recorded in this run directory", "has no run record (run.json)", `<tr class="run">`,
	} {
		if !strings.Contains(h, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

func TestRecordKeepsOneEntryPerRun(t *testing.T) {
	t.Parallel()
	dir := artifacts.Dir(t.TempDir())
	first := artifacts.Run{Version: "dev", Started: started}
	rep := withFailures()
	for range 2 { // aggregated twice: one entry
		if _, err := report.Record(dir, first, rep); err != nil {
			t.Fatal(err)
		}
	}
	rerun := artifacts.Run{Version: "dev", Started: started.Add(time.Hour)}
	rep.Failed, rep.Copied = 0, 2
	h, err := report.Record(dir, rerun, rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Runs) != 2 || !h.Runs[0].Started.Equal(started) || h.Runs[0].Failed != 2 || h.Runs[1].Failed != 0 {
		t.Errorf("history %+v: want the first run (2 failed), then the rerun", h.Runs)
	}
	if again, err := report.ReadHistory(dir); err != nil || len(again.Runs) != 2 {
		t.Errorf("history.json: %+v, %v", again, err)
	}
}

// The summary line says in plain words what happened, for a person and
// for a grep: "N images: C copied, S skipped, F failed; verified".
func TestSummaryLineIsPlainWords(t *testing.T) {
	t.Parallel()
	ok := report.Report{Started: started, Finished: started.Add(4210 * time.Millisecond), Total: 27, Copied: 26, Skipped: 1, Bytes: 3 << 20, Verified: true, VerifyPassed: 27}
	for _, tc := range []struct {
		name string
		rep  report.Report
		want string
	}{
		{"verified", ok, "27 images: 26 copied, 1 skipped, 0 failed; verified; 3.0 MiB moved in 4.21s"},
		{"failures", withFailures(), "6 images: 3 copied, 1 skipped, 2 failed; 2 not verified; 3.0 MiB moved in 1m35s"},
		{"one image, aggregated apart from the run", report.Report{Total: 1, Skipped: 1, Verified: true, VerifyPassed: 1}, "1 image: 0 copied, 1 skipped, 0 failed; verified; 0 B moved"},
		{"dry run", report.Report{DryRun: true, Total: 3, Planned: 2, Skipped: 1}, "3 images: 2 to copy, 1 already on the target, 0 failed; dry run: nothing written"},
		{"empty scope", report.Report{}, "0 images: nothing to migrate"},
		{"interrupted", func() report.Report {
			r := ok
			r.Interrupted = "interrupt"
			r.Verified = false
			r.VerifyPassed = 20
			return r
		}(),
			"27 images: 26 copied, 1 skipped, 0 failed; 7 not verified; 3.0 MiB moved in 4.21s; interrupted (interrupt): partial"},
	} {
		if got := tc.rep.SummaryLine(); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

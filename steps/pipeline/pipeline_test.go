package pipeline_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/backfillresult"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/mirror"
	"github.com/regmigrate/regmigrate/steps/pipeline"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/steps/report"
	"github.com/regmigrate/regmigrate/steps/switchresult"
	"github.com/regmigrate/regmigrate/steps/verify"
)

func write(t *testing.T, path string, v any) {
	t.Helper()
	if err := artifacts.WriteJSON(path, v); err != nil {
		t.Fatal(err)
	}
}

// runDir writes what export, mirror-shard, backfill-shard and the per-shard
// verify leave behind: two shards of two images each, one image failing
// its ImageStreamTag check, one scope error.
func runDir(t *testing.T) artifacts.Dir {
	t.Helper()
	dir := artifacts.Dir(t.TempDir())
	write(t, dir.Path(contract.ShardsFile), artifacts.Plan{Source: "src", Target: "dst", Total: 4, Shards: []artifacts.Shard{
		{ID: "ns-a", Namespaces: []string{"a"}, Images: 2}, {ID: "ns-b", Namespaces: []string{"b"}, Images: 2},
	}})
	write(t, dir.Path(contract.ExportFile), export.Summary{Total: 4, Errors: []string{"b/gone: not on the source"}})
	for _, ns := range []string{"a", "b"} {
		sd := dir.ShardDir("ns-" + ns)
		var mr mirror.Result
		var v verify.Result
		var checks []verify.Check
		for _, tag := range []string{"v1", "v2"} {
			target := "dst/" + ns + "/app:" + tag
			mr.Images = append(mr.Images, mirror.ImageResult{Source: "src/" + ns + "/app:" + tag, Target: target, Digest: "sha256:" + strings.Repeat("a", 64), Status: contract.StatusCopied, Bytes: 10})
			v.Images = append(v.Images, verify.Check{Target: target, Status: verify.Passed})
			c := verify.Check{Target: target, Status: verify.Passed}
			if ns == "b" && tag == "v2" {
				c.Status, c.Error = verify.Failed, "ImageStreamTag b/app:v2 does not exist"
			}
			checks = append(checks, c)
		}
		mr.Total, mr.Copied = 2, 2
		v.Total, v.Passed = 2, 2
		v.ImageAPI = verify.NewAPIResult(checks)
		write(t, filepath.Join(sd, contract.MirrorResult), mr)
		write(t, filepath.Join(sd, contract.VerifyResult), v)
		if err := backfillresult.Write(sd, backfillresult.Result{API: "image.alauda.io/v1", Strategy: "copy", Total: 2, Success: 2, Applied: 1, Skipped: 1}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestAggregateReadsEveryShardsResults(t *testing.T) {
	t.Parallel()
	dir := runDir(t)
	rep, err := pipeline.Aggregate(pipeline.AggregateOptions{RunDir: string(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total != 4 || rep.Copied != 3 || rep.Failed != 1 || rep.VerifyPassed != 4 {
		t.Errorf("report total %d copied %d failed %d verifyPassed %d, want 4 3 1 4", rep.Total, rep.Copied, rep.Failed, rep.VerifyPassed)
	}
	if rep.BackfillApplied != 2 || rep.BackfillSkipped != 2 || rep.BackfillFailed != 0 {
		t.Errorf("backfill counts %d/%d/%d, want 2 applied 2 skipped 0 failed", rep.BackfillApplied, rep.BackfillSkipped, rep.BackfillFailed)
	}
	if want := "image.alauda.io/v1 (copy strategy): 2 applied, 2 skipped, 0 failed"; rep.Backfill != want {
		t.Errorf("backfill line %q, want %q", rep.Backfill, want)
	}
	if rep.ImageAPIPassed != 3 || rep.ImageAPIFailed != 1 {
		t.Errorf("ImageStreamTag checks %d passed %d failed, want 3 and 1", rep.ImageAPIPassed, rep.ImageAPIFailed)
	}
	if len(rep.ScopeErrors) != 1 || rep.ExitCode() != contract.ExitFailed {
		t.Errorf("scope errors %v exit %d, want export.json's one and exit 1", rep.ScopeErrors, rep.ExitCode())
	}
	var onDisk report.Report
	if err := artifacts.ReadJSON(dir.Path(contract.ReportJSON), &onDisk); err != nil || onDisk.BackfillApplied != 2 || onDisk.ImageAPIFailed != 1 {
		t.Errorf("report.json %+v (%v): want what Aggregate returned", onDisk, err)
	}
	b, err := os.ReadFile(dir.Path(contract.ReportMD))
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, want := range []string{"Image API backfill: " + rep.Backfill, "Image API check: 3 ImageStreamTags passed, 1 failed", "image api: ImageStreamTag b/app:v2 does not exist"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
}

func TestAggregateOfADryRunReadsNoVerdicts(t *testing.T) {
	t.Parallel()
	dir := runDir(t)
	rep, err := pipeline.Aggregate(pipeline.AggregateOptions{RunDir: string(dir), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.DryRun || rep.VerifyPassed != 0 || rep.BackfillApplied != 0 || rep.ImageAPIFailed != 0 || rep.Backfill != "skipped: dry run" {
		t.Errorf("dry-run report %+v: a previous run's verify.json and backfill.json must not count", rep)
	}
}

func TestAggregateWithoutBackfillSaysSo(t *testing.T) {
	t.Parallel()
	dir := runDir(t)
	for _, id := range []string{"ns-a", "ns-b"} {
		if err := os.Remove(filepath.Join(dir.ShardDir(id), contract.BackfillJSON)); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := pipeline.Aggregate(pipeline.AggregateOptions{RunDir: string(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Backfill != pipeline.NoBackfill {
		t.Errorf("backfill line %q, want %q", rep.Backfill, pipeline.NoBackfill)
	}
}

func TestMissingInputsAreNamed(t *testing.T) {
	t.Parallel()
	if _, err := pipeline.Aggregate(pipeline.AggregateOptions{RunDir: t.TempDir()}); !errors.Is(err, pipeline.ErrMissingInput) || !strings.Contains(err.Error(), contract.ShardsFile) {
		t.Errorf("Aggregate of an empty folder: %v, want ErrMissingInput naming %s", err, contract.ShardsFile)
	}
	_, err := pipeline.VerifyShard(context.Background(), pipeline.VerifyShardOptions{ShardDir: t.TempDir(), Client: registry.New(registry.Options{})})
	if !errors.Is(err, pipeline.ErrMissingInput) || !strings.Contains(err.Error(), contract.MirrorResult) {
		t.Errorf("VerifyShard of an empty folder: %v, want ErrMissingInput naming %s", err, contract.MirrorResult)
	}
}

// tagChecker records the ImageStreamTags it is asked about and passes them.
type tagChecker struct {
	mu   sync.Mutex
	asks []verify.TagExpect
}

func (c *tagChecker) CheckTags(_ context.Context, tags []verify.TagExpect) []verify.Check {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asks = append(c.asks, tags...)
	out := make([]verify.Check, len(tags))
	for i, tg := range tags {
		out[i] = verify.Check{Target: tg.Target.String(), Digest: tg.Digest, Status: verify.Passed}
	}
	return out
}

func TestVerifyShardChecksTheTargetAndTheImageStreamTags(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "http://")
	img, _ := random.Image(512, 1)
	ref, _ := name.ParseReference(host + "/team/app:v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	dg, _ := img.Digest()
	sd := t.TempDir()
	write(t, filepath.Join(sd, contract.MirrorResult), mirror.Result{Total: 2, Images: []mirror.ImageResult{
		{Source: "src/team/app:v1", Target: host + "/team/app:v1", Digest: dg.String(), Status: contract.StatusCopied},
		{Source: "src/team/app:v2", Target: host + "/team/app:v2", Status: contract.StatusFailed, Error: "copy failed"},
	}})
	tags := &tagChecker{}
	res, err := pipeline.VerifyShard(context.Background(), pipeline.VerifyShardOptions{
		ShardDir: sd, Client: registry.New(registry.Options{Insecure: func(string) bool { return true }}), ImageAPI: tags,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed != 1 || res.Failed != 1 || res.OK() {
		t.Errorf("verify %+v: want the copied image passed and the failed one failed", res)
	}
	if len(tags.asks) != 1 || tags.asks[0].Digest != dg.String() || res.ImageAPI == nil || res.ImageAPI.Passed != 1 {
		t.Errorf("ImageStreamTags asked %+v, result %+v: want the one image with a digest", tags.asks, res.ImageAPI)
	}
	var onDisk verify.Result
	if err := artifacts.ReadJSON(filepath.Join(sd, contract.VerifyResult), &onDisk); err != nil || onDisk.ImageAPI == nil || onDisk.Passed != 1 {
		t.Errorf("verify.json %+v (%v): want the result with its ImageStreamTag checks", onDisk, err)
	}
}

func TestBackfillItemsAreWhatIsOnTheTarget(t *testing.T) {
	t.Parallel()
	sd := t.TempDir()
	dg := "sha256:" + strings.Repeat("b", 64)
	write(t, filepath.Join(sd, contract.MirrorResult), mirror.Result{Images: []mirror.ImageResult{
		{Source: "src.example/team/app:v1", Target: "dst.example/team/app:v1", Digest: dg, Status: contract.StatusCopied},
		{Source: "src.example/team/app:v2", Target: "dst.example/team/app:v2", Digest: dg, Status: contract.StatusSkipped},
		{Source: "src.example/team/app:sha256-" + strings.Repeat("b", 64) + ".sig", Target: "dst.example/team/app:sha256-" + strings.Repeat("b", 64) + ".sig", Digest: dg, Status: contract.StatusCopied},
		{Source: "src.example/team/app:v3", Target: "dst.example/team/app:v3", Status: contract.StatusFailed, Error: "gone"},
	}})
	items, err := pipeline.BackfillItems(sd)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 {
		t.Fatalf("%d items, want the copied, the skipped and the attachment the copy found, not the failed one: %+v", len(items), items)
	}
	for _, it := range items {
		if it.Source.Digest != dg || it.Target.Digest != "" || it.Target.Registry != "dst.example" {
			t.Errorf("item %+v: want the target tag and the digest now on the target", it)
		}
	}
	if _, err := pipeline.BackfillItems(t.TempDir()); !errors.Is(err, pipeline.ErrMissingInput) {
		t.Errorf("BackfillItems of an empty folder: %v, want ErrMissingInput", err)
	}
}

// The aggregate writes report.html beside report.md, takes the run's start
// from run.json (the Argo aggregate knows it no other way) and records the
// run in history.json once, however often it aggregates; Render shows a
// cutover that came after.
func TestAggregateWritesTheHTMLReportAndTheRunHistory(t *testing.T) {
	t.Parallel()
	dir := runDir(t)
	started := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	if err := artifacts.WriteRun(dir, artifacts.Run{Migration: "acp-to-v2", Version: "dev", Command: []string{"export", "--to", "dst"}, Strategy: contract.StrategyCopy, Started: started}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		rep, err := pipeline.Aggregate(pipeline.AggregateOptions{RunDir: string(dir)})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Started.Equal(started) {
			t.Errorf("started %v, want run.json's %v", rep.Started, started)
		}
	}
	h, err := report.ReadHistory(dir)
	if err != nil || len(h.Runs) != 1 || !h.Runs[0].Started.Equal(started) || h.Runs[0].Failed != 1 || h.Runs[0].ExitCode != contract.ExitFailed {
		t.Errorf("history %+v (%v): want this run once, 1 failed, exit 1", h, err)
	}
	html := readFile(t, dir.Path(contract.ReportHTML))
	for _, want := range []string{"Migration report: acp-to-v2", "image api: ImageStreamTag b/app:v2 does not exist", "No cutover recorded"} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}

	write(t, dir.Path(contract.SwitchFile), switchresult.Result{Mode: "modern", DryRun: true, Time: started.Add(time.Hour), Pending: 2})
	if _, err := pipeline.Render(string(dir)); err != nil {
		t.Fatal(err)
	}
	if html := readFile(t, dir.Path(contract.ReportHTML)); !strings.Contains(html, "modern (dry run: nothing changed") {
		t.Error("report.html does not show the cutover after Render")
	}
	if _, err := pipeline.Render(t.TempDir()); !errors.Is(err, pipeline.ErrMissingInput) {
		t.Errorf("Render of an empty folder: %v, want ErrMissingInput", err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

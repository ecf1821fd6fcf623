// Package report merges the shards' mirror and verify results into the
// run's report.json and report.md.
package report

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/backfillresult"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/mirror"
	"github.com/regmigrate/regmigrate/steps/progress"
	"github.com/regmigrate/regmigrate/steps/verify"
)

// Image is one image's line in the report.
type Image struct {
	Source string `json:"source"`
	Target string `json:"target"`
	Digest string `json:"digest"`
	Status string `json:"status"`
	// Bytes are the bytes this image uploaded to the target in this run
	// (BytesMeaning): its blobs (layers and config, of every platform)
	// and its referrers'. Blobs the target had, mounted from another of
	// its repositories, or uploaded by another image of the run count 0;
	// manifests are not counted. A skipped image moved 0 bytes.
	Bytes int64  `json:"bytes"`
	Error string `json:"error,omitempty"`
	// Retryable: the failure was transient (429, 5xx, resets); a rerun may fix it.
	Retryable bool   `json:"retryable,omitempty"`
	Shard     string `json:"shard"`
	// ImageAPI is the ImageStreamTag check's verdict (passed or failed);
	// empty when no cluster was checked.
	ImageAPI string `json:"imageAPI,omitempty"`
}

// Shard sums one shard.
type Shard struct {
	ID           string   `json:"id"`
	Namespaces   []string `json:"namespaces"`
	Total        int      `json:"total"`
	Copied       int      `json:"copied"`
	Skipped      int      `json:"skipped"`
	Failed       int      `json:"failed"`
	Bytes        int64    `json:"bytes"`
	VerifyFailed int      `json:"verifyFailed"`
}

// BytesMeaning says, in the reports, what the bytes count.
const BytesMeaning = "bytes of the blobs (layers and configs, referrers included) that this run uploaded to the target; " +
	"blobs the target already had, blobs mounted from another repository and blobs another image uploaded first count 0; manifests are not counted"

// Report is report.json. Counts are images (tags).
type Report struct {
	// Scope is what was asked (scope.json): the migration, its inputs by
	// content, filters, the version and command line that planned it.
	Scope    *Scope    `json:"scope,omitempty"`
	Source   string    `json:"source"`
	Target   string    `json:"target"`
	Started  time.Time `json:"started,omitzero"` // zero when the aggregate ran apart from the run (Argo)
	Finished time.Time `json:"finished"`
	DryRun   bool      `json:"dryRun,omitempty"`
	// Interrupted names the signal that stopped the run before it was
	// done: the report is partial and proves nothing.
	Interrupted string `json:"interrupted,omitempty"`
	// Excluded counts the tags the filters left out, ExcludedRepos the
	// repositories left out whole.
	Excluded      int   `json:"excluded"`
	ExcludedRepos int   `json:"excludedRepositories"`
	Total         int   `json:"total"`
	Copied        int   `json:"copied"`
	Skipped       int   `json:"skipped"`
	Failed        int   `json:"failed"`
	Planned       int   `json:"planned,omitempty"`
	Bytes         int64 `json:"bytes"`    // the images' bytes (Image.Bytes) added up
	Verified      bool  `json:"verified"` // every image passed verification
	VerifyPassed  int   `json:"verifyPassed"`
	VerifyFailed  int   `json:"verifyFailed"`
	// Backfill says whether and where the Image API was backfilled.
	Backfill        string `json:"backfill,omitempty"`
	BackfillApplied int    `json:"backfillApplied"`
	BackfillSkipped int    `json:"backfillSkipped"`
	BackfillFailed  int    `json:"backfillFailed"`
	// ImageAPIPassed and ImageAPIFailed count the ImageStreamTags checked
	// (digest and TARGET/ns/stream@digest) when a cluster was named.
	ImageAPIPassed int      `json:"imageAPIPassed"`
	ImageAPIFailed int      `json:"imageAPIFailed"`
	Warnings       []string `json:"warnings,omitempty"`
	// ScopeErrors are problems with the scope itself (a listed repository
	// missing on the source): the run cannot be complete.
	ScopeErrors []string `json:"scopeErrors,omitempty"`
	Shards      []Shard  `json:"shards"`
	Images      []Image  `json:"images"`
	// PhaseOne links the first phase of a disconnected move (registry to
	// layout) to this second one (layout to registry): its report, by
	// path and digest, and its counts.
	PhaseOne *PhaseLink `json:"phaseOne,omitempty"`
}

// PhaseLink is what a second phase's report says of the first.
type PhaseLink struct {
	Layout       string    `json:"layout"`
	Report       string    `json:"report"`
	ReportSHA256 string    `json:"reportSHA256"`
	Source       string    `json:"source"`
	Target       string    `json:"target"`
	Started      time.Time `json:"started,omitzero"`
	Finished     time.Time `json:"finished"`
	Total        int       `json:"total"`
	Copied       int       `json:"copied"`
	Skipped      int       `json:"skipped"`
	Failed       int       `json:"failed"`
	Verified     bool      `json:"verified"`
}

// ShardInput is what one shard produced.
type ShardInput struct {
	Shard  artifacts.Shard
	Mirror mirror.Result
	Verify *verify.Result // nil when not verified (dry run)
	// Backfill is the Image API backfill (nil when no cluster was named).
	Backfill *backfillresult.Result
}

// Build merges shard results. An image that verify failed is failed.
func Build(plan artifacts.Plan, shards []ShardInput) Report {
	b := NewBuilder(plan)
	for _, s := range shards {
		b.Add(s)
	}
	return b.Report()
}

// A Builder merges shard results one shard at a time (Build's merge):
// what a shard's results hold beyond its report lines is let go once it
// is added, not kept for every shard of a 100,000-tag run at once.
type Builder struct{ r Report }

// NewBuilder starts the report of a plan.
func NewBuilder(plan artifacts.Plan) *Builder {
	return &Builder{r: Report{Source: plan.Source, Target: plan.Target}}
}

// Add merges one shard's results.
func (b *Builder) Add(s ShardInput) {
	r := &b.r
	sum := Shard{ID: s.Shard.ID, Namespaces: s.Shard.Namespaces}
	verdict := map[string]verify.Check{}
	apiVerdict := map[string]verify.Check{}
	if s.Verify != nil {
		for _, c := range s.Verify.Images {
			verdict[c.Target] = c
		}
		if s.Verify.ImageAPI != nil {
			for _, c := range s.Verify.ImageAPI.Tags {
				apiVerdict[c.Target] = c
			}
		}
	}
	backfilled := map[string]backfillresult.ImageResult{}
	if s.Backfill != nil {
		r.BackfillApplied += s.Backfill.Applied
		r.BackfillSkipped += s.Backfill.Skipped
		r.BackfillFailed += s.Backfill.Failed
		for _, b := range s.Backfill.Images {
			backfilled[b.Image] = b
		}
	}
	for _, im := range s.Mirror.Images {
		line := Image{Source: im.Source, Target: im.Target, Digest: im.Digest, Status: im.Status, Bytes: im.Bytes, Error: im.Error, Retryable: im.Retryable, Shard: s.Shard.ID}
		if s.Verify != nil {
			if c, ok := verdict[im.Target]; ok && c.Status != verify.Passed {
				sum.VerifyFailed++
				r.VerifyFailed++
				if line.Status != contract.StatusFailed {
					line.Status = contract.StatusFailed
					line.Error = "verify: " + c.Error
					line.Retryable = c.Retryable
				}
			} else if ok {
				r.VerifyPassed++
			}
		}
		if t, err := imageref.Parse(im.Target); err == nil {
			if b, ok := backfilled[t.Repository+":"+t.Tag]; ok && b.Action == backfillresult.ActionFailed && line.Status != contract.StatusFailed {
				line.Status, line.Error, line.Retryable = contract.StatusFailed, "backfill: "+b.Error, b.Retryable
			}
		}
		if c, ok := apiVerdict[im.Target]; ok {
			line.ImageAPI = c.Status
			if c.Status == verify.Passed {
				r.ImageAPIPassed++
			} else {
				r.ImageAPIFailed++
				if line.Status != contract.StatusFailed {
					line.Status, line.Error = contract.StatusFailed, "image api: "+c.Error
				}
			}
		}
		switch line.Status {
		case contract.StatusCopied:
			sum.Copied++
		case contract.StatusSkipped:
			sum.Skipped++
		case contract.StatusPlanned:
			r.Planned++
		default:
			sum.Failed++
		}
		sum.Total++
		sum.Bytes += line.Bytes
		r.Images = append(r.Images, line)
	}
	r.Warnings = append(r.Warnings, s.Mirror.Warnings...)
	r.Total += sum.Total
	r.Copied += sum.Copied
	r.Skipped += sum.Skipped
	r.Failed += sum.Failed
	r.Bytes += sum.Bytes
	r.Shards = append(r.Shards, sum)
}

// Report is the merged report of the shards added.
func (b *Builder) Report() Report {
	r := b.r
	r.Verified = r.Total > 0 && r.VerifyPassed == r.Total
	sort.Slice(r.Images, func(i, j int) bool { return r.Images[i].Source < r.Images[j].Source })
	r.Warnings = dedupe(r.Warnings)
	return r
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, w := range s {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// ExitCode: 0 only when every image is on the target and verified.
func (r Report) ExitCode() int {
	if len(r.ScopeErrors) > 0 {
		return contract.ExitFailed
	}
	if r.Total == 0 {
		return contract.ExitOK // an empty scope: nothing failed (and nothing is proven)
	}
	if r.Failed == 0 && (r.DryRun || r.Verified) {
		return contract.ExitOK
	}
	for _, im := range r.Images {
		if im.Status == contract.StatusFailed && !im.Retryable {
			return contract.ExitFailed
		}
	}
	return contract.ExitRetryable
}

// SummaryLine is the last line a run prints, in plain words: "27 images:
// 26 copied, 1 skipped, 0 failed; verified; 3.1 MiB moved in 4.2s".
// "skipped" are the images the target already had with the source digest.
func (r Report) SummaryLine() string {
	images := fmt.Sprintf("%d %s", r.Total, plural(r.Total, "image", "images"))
	if r.DryRun {
		return fmt.Sprintf("%s: %d to copy, %d already on the target, %d failed; dry run: nothing written", images, r.Planned, r.Skipped, r.Failed)
	}
	if r.Total == 0 {
		return "0 images: nothing to migrate"
	}
	verified := "verified"
	if !r.Verified {
		verified = fmt.Sprintf("%d not verified", r.Total-r.VerifyPassed)
	}
	line := fmt.Sprintf("%s: %d copied, %d skipped, %d failed; %s; %s moved", images, r.Copied, r.Skipped, r.Failed, verified, progress.HumanBytes(r.Bytes))
	if !r.Started.IsZero() { // the verify step's aggregate does not know when the run started
		line += fmt.Sprintf(" in %s", r.Finished.Sub(r.Started).Round(10*time.Millisecond))
	}
	if r.Interrupted != "" {
		line += fmt.Sprintf("; interrupted (%s): partial", r.Interrupted)
	}
	return line
}

// Markdown renders report.md: the result, a summary per namespace and
// per shard, and every failed image with its reason and what to do.
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# regmigrate report\n\n")
	fmt.Fprintf(&b, "- source: `%s`\n- target: `%s`\n", r.Source, r.Target)
	if !r.Started.IsZero() {
		fmt.Fprintf(&b, "- started: %s\n", r.Started.Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "- finished: %s\n", r.Finished.Format(time.RFC3339))
	fmt.Fprintf(&b, "- result: **%s**\n\n", r.SummaryLine())
	if p := r.PhaseOne; p != nil {
		fmt.Fprintf(&b, "- phase one (%s to %s, finished %s): %d images, %d copied, %d skipped, %d failed, verified %t; its report: `%s` (%s)\n\n",
			p.Source, p.Target, p.Finished.Format(time.RFC3339), p.Total, p.Copied, p.Skipped, p.Failed, p.Verified, p.Report, p.ReportSHA256)
	}
	if r.Backfill != "" {
		fmt.Fprintf(&b, "- Image API backfill: %s\n", r.Backfill)
		if r.ImageAPIPassed+r.ImageAPIFailed > 0 {
			fmt.Fprintf(&b, "- Image API check: %d ImageStreamTags passed, %d failed\n", r.ImageAPIPassed, r.ImageAPIFailed)
		}
		fmt.Fprintln(&b)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "> warning: %s\n\n", w)
	}
	for _, e := range r.ScopeErrors {
		fmt.Fprintf(&b, "> scope error: %s\n\n", e)
	}
	fmt.Fprintf(&b, "## Namespaces\n\n| namespace | images | copied | skipped | failed | moved |\n|---|---|---|---|---|---|\n")
	for _, n := range r.Namespaces() {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s |\n", n.Name, n.Total, n.Copied, n.Skipped, n.Failed, progress.HumanBytes(n.Bytes))
	}
	fmt.Fprintf(&b, "\n## Shards\n\n| shard | namespaces | total | copied | skipped | failed | verify failed | moved |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Shards {
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %s |\n", s.ID, strings.Join(s.Namespaces, ", "), s.Total, s.Copied, s.Skipped, s.Failed, s.VerifyFailed, progress.HumanBytes(s.Bytes))
	}
	if failed := r.Failures(); len(failed) > 0 {
		fmt.Fprintf(&b, "\n## Failed images (%d)\n\n| source | target | shard | error | what to do |\n|---|---|---|---|---|\n", len(failed))
		for _, f := range failed {
			fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", f.Source, f.Target, f.Shard, mdCell(f.Error), mdCell(f.Advice))
		}
	}
	fmt.Fprintf(&b, "\nMoved: the %s.\n", BytesMeaning)
	fmt.Fprintf(&b, "\nEvery image is listed in report.json; per-shard logs are under shards/<id>/; report.html is this report to look at and print.\n")
	return b.String()
}

// mdCell makes s safe in a Markdown table cell.
func mdCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ")
}

// NoNamespace names the images of single-component repositories
// ("busybox") in the namespace summaries.
const NoNamespace = "(no namespace)"

// Namespace sums the images of one source namespace.
type Namespace struct {
	Name                                    string
	Total, Copied, Skipped, Failed, Planned int
	Bytes                                   int64
}

// Namespaces sums the images per source namespace, sorted by name.
func (r Report) Namespaces() []Namespace {
	byName := map[string]*Namespace{}
	var names []string
	for _, im := range r.Images {
		name := NoNamespace
		if ref, err := imageref.Parse(im.Source); err == nil && ref.Namespace() != "" {
			name = ref.Namespace()
		}
		n, ok := byName[name]
		if !ok {
			n = &Namespace{Name: name}
			byName[name] = n
			names = append(names, name)
		}
		n.Total++
		n.Bytes += im.Bytes
		switch im.Status {
		case contract.StatusCopied:
			n.Copied++
		case contract.StatusSkipped:
			n.Skipped++
		case contract.StatusPlanned:
			n.Planned++
		default:
			n.Failed++
		}
	}
	sort.Strings(names)
	out := make([]Namespace, 0, len(names))
	for _, name := range names {
		out = append(out, *byName[name])
	}
	return out
}

// Failure is a failed image with what to do about it.
type Failure struct {
	Image
	Advice string
}

// Failures are the failed images, in the report's order, each with advice.
func (r Report) Failures() []Failure {
	var out []Failure
	for _, im := range r.Images {
		if im.Status == contract.StatusFailed {
			out = append(out, Failure{Image: im, Advice: Advice(im)})
		}
	}
	return out
}

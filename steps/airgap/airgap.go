// Package airgap carries a migration's plan and audit across a
// disconnected (air-gapped) move. Phase one (registry to oci:DIR) leaves
// its run directory's plan and report inside the layout, under
// regmigrate/export/; phase two (oci:DIR to the new registry) reads them
// back: it moves exactly the images phase one wrote, pinned to the digests
// phase one read from the legacy registry, so that its verification
// proves the new registry holds what the legacy one held, and its report
// links phase one's (PhaseOne).
package airgap

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/inputs"
	"github.com/regmigrate/regmigrate/steps/ocilayout"
	"github.com/regmigrate/regmigrate/steps/report"
)

// RecordDir is where, inside a layout, phase one's run directory (or a
// copy of its plan and report) lives.
const RecordDir = "regmigrate/export"

// LinkFile is phase two's record of phase one, in its run directory.
const LinkFile = "phase-one.json"

// RecordPath is the record directory of the layout in dir.
func RecordPath(layoutDir string) string {
	return filepath.Join(layoutDir, filepath.FromSlash(RecordDir))
}

// carried are the files of a run directory copied into the layout.
var carried = []string{contract.ImagesFile, contract.DigestsFile, contract.ShardsFile, contract.ExportFile, contract.ScopeFile,
	contract.RunFile, contract.HistoryFile, contract.ReportJSON, contract.ReportMD, contract.ReportHTML}

// Record copies a run directory's plan and report into the layout, unless
// the run directory is the layout's record directory already.
func Record(layoutDir, runDir string) error {
	dst := RecordPath(layoutDir)
	a, _ := filepath.Abs(runDir)
	b, _ := filepath.Abs(dst)
	if a == b {
		return nil
	}
	for _, f := range carried {
		body, err := os.ReadFile(filepath.Join(runDir, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("carrying %s into %s: %w", f, dst, err)
		}
		if err := artifacts.WriteFile(filepath.Join(dst, f), body); err != nil {
			return fmt.Errorf("carrying %s into %s: %w", f, dst, err)
		}
	}
	return nil
}

// PhaseOne is what phase two knows of phase one.
type PhaseOne struct {
	Layout string
	Report report.Report
	// SHA256 of phase one's report.json as carried.
	ReportSHA256 string
}

// Read reads phase one's report from the layout; fs.ErrNotExist when the
// layout carries none (another tool wrote it).
func Read(layoutDir string) (*PhaseOne, error) {
	p := filepath.Join(RecordPath(layoutDir), contract.ReportJSON)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var rep report.Report
	if err := artifacts.ReadJSON(p, &rep); err != nil {
		return nil, fmt.Errorf("phase one's report %s: %w", p, err)
	}
	sum := sha256.Sum256(b)
	return &PhaseOne{Layout: layoutDir, Report: rep, ReportSHA256: "sha256:" + hex.EncodeToString(sum[:])}, nil
}

// Entries are the images phase one wrote into the layout, as list entries
// on host (the layout's reference host), each pinned to the digest phase
// one read from the legacy registry. Images phase one failed are not in
// the layout: they come back as problems.
func (p *PhaseOne) Entries(host string) (entries []inputs.Entry, problems []string) {
	for _, im := range p.Report.Images {
		if im.Status != contract.StatusCopied && im.Status != contract.StatusSkipped {
			problems = append(problems, fmt.Sprintf("%s: not in the layout: phase one %s it (%s); run phase one again for it", im.Source, im.Status, im.Error))
			continue
		}
		t, err := imageref.Parse(im.Target)
		if err != nil || t.Tag == "" || !imageref.ValidDigest(im.Digest) {
			problems = append(problems, fmt.Sprintf("phase one's report names %q (digest %q): not a tagged image with a digest", im.Target, im.Digest))
			continue
		}
		t.Registry, t.Digest = host, im.Digest
		entries = append(entries, inputs.Entry{Source: t, File: filepath.Join(p.Layout, RecordDir, contract.ReportJSON)})
	}
	return entries, problems
}

// Link is what phase two's report says of phase one.
func (p *PhaseOne) Link() report.PhaseLink {
	r := p.Report
	return report.PhaseLink{
		Layout: p.Layout, Report: filepath.Join(p.Layout, RecordDir, contract.ReportJSON), ReportSHA256: p.ReportSHA256,
		Source: r.Source, Target: r.Target, Started: r.Started, Finished: r.Finished,
		Total: r.Total, Copied: r.Copied, Skipped: r.Skipped, Failed: r.Failed, Verified: r.Verified,
	}
}

// WriteLink records phase one in phase two's run directory (read by the
// report).
func WriteLink(runDir string, l report.PhaseLink) error {
	return artifacts.WriteJSON(filepath.Join(runDir, LinkFile), l)
}

// ReadLink reads phase two's record of phase one; nil when there is none.
func ReadLink(runDir string) (*report.PhaseLink, error) {
	var l report.PhaseLink
	err := artifacts.ReadJSON(filepath.Join(runDir, LinkFile), &l)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// Pin sets, on listed entries that name a tag without a digest, the
// digest phase one recorded for that tag.
func Pin(listed, carried []inputs.Entry) []inputs.Entry {
	digests := map[string]string{}
	for _, e := range carried {
		digests[e.Source.Repository+":"+e.Source.Tag] = e.Source.Digest
	}
	out := make([]inputs.Entry, len(listed))
	for i, e := range listed {
		if !e.AllTags && e.Source.Tag != "" && e.Source.Digest == "" {
			e.Source.Digest = digests[e.Source.Repository+":"+e.Source.Tag]
		}
		out[i] = e
	}
	return out
}

// Pack makes one layout of what a Workflow's shards wrote into the layout
// in layoutDir at once (each its own index part): it merges the parts
// into index.json (ocilayout.Merge) and carries the run directory's plan
// and report into the layout (Record), as a local run leaves them, so
// that phase two (`regmigrate run --from oci:DIR`) reads it the same way.
// A layout whose run left no report (the report step failed) still gets
// its index and what the plan holds.
func Pack(layoutDir, runDir string) (ocilayout.MergeResult, error) {
	res, err := ocilayout.Merge(layoutDir)
	if err != nil {
		return res, err
	}
	if err := Record(layoutDir, runDir); err != nil {
		return res, err
	}
	return res, nil
}

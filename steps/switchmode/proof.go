package switchmode

import (
	"fmt"
	"strings"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/report"
)

// Proof is what a verify report proves: which images are on the target,
// and whether the whole scope passed.
type Proof struct {
	// Passed: every image in scope is on the target and verified, and the
	// scope itself had no errors. Needed to switch to modern.
	Passed bool
	// Why, when it did not pass.
	Why string
	// Source and Target are the report's registry locations.
	Source, Target imageref.Location

	byTag    map[string]proven // "ns/repo:tag" under Source
	byDigest map[string]proven // "ns/repo@sha256:..." under Source
}

type proven struct {
	target string // "ns/repo" under Target
	tag    string
	digest string
}

// ProofFromReport reads a verify report (report.json of a run).
func ProofFromReport(r report.Report) (Proof, error) {
	src, err := imageref.ParseLocation(r.Source)
	if err != nil {
		return Proof{}, fmt.Errorf("the report's source %q: %w", r.Source, err)
	}
	dst, err := imageref.ParseLocation(r.Target)
	if err != nil {
		return Proof{}, fmt.Errorf("the report's target %q: %w", r.Target, err)
	}
	p := Proof{Source: src, Target: dst, byTag: map[string]proven{}, byDigest: map[string]proven{}}
	switch {
	case r.DryRun:
		p.Why = "the report is from a dry run"
	case r.Interrupted != "":
		p.Why = fmt.Sprintf("the run was interrupted (%s): the report is partial", r.Interrupted)
	case len(r.ScopeErrors) > 0:
		p.Why = fmt.Sprintf("the scope had %d error(s), first: %s", len(r.ScopeErrors), r.ScopeErrors[0])
	case r.Total == 0:
		p.Why = "the report has no images"
	case r.Failed > 0:
		p.Why = fmt.Sprintf("%d of %d images failed", r.Failed, r.Total)
	case !r.Verified:
		p.Why = fmt.Sprintf("%d of %d images are not verified", r.Total-r.VerifyPassed, r.Total)
	default:
		p.Passed = true
	}
	for _, im := range r.Images {
		if im.Status != contract.StatusCopied && im.Status != contract.StatusSkipped {
			continue // failed (verify failures included) or only planned
		}
		s, err1 := imageref.Parse(im.Source)
		t, err2 := imageref.Parse(im.Target)
		if err1 != nil || err2 != nil || im.Digest == "" {
			continue
		}
		srel, ok1 := under(src, s)
		trel, ok2 := under(dst, t)
		if !ok1 || !ok2 {
			continue
		}
		pv := proven{target: trel, tag: t.Tag, digest: im.Digest}
		if s.Tag != "" {
			p.byTag[srel+":"+s.Tag] = pv
		}
		p.byDigest[srel+"@"+im.Digest] = pv
	}
	return p, nil
}

// Images counts the images the proof covers.
func (p Proof) Images() int { return len(p.byTag) }

// under returns r's repository relative to the location, if r is there.
func under(l imageref.Location, r imageref.Ref) (string, bool) {
	if r.Registry != l.Registry {
		return "", false
	}
	if l.Namespace == "" {
		return r.Repository, true
	}
	rel, ok := strings.CutPrefix(r.Repository, l.Namespace+"/")
	return rel, ok
}

// Mapper turns workload image references on the legacy registry into
// references on the target, for images the proof covers.
type Mapper struct {
	// From is the legacy registry as workloads name it; To is the target
	// as workloads should name it. Empty: the report's source and target.
	From, To imageref.Location
	Proof    Proof
}

// Map returns the new reference for img. ours is false when img is not on
// the legacy registry (left alone); ok is false when it is ours but verify
// did not prove it present on the target (why says so).
func (m Mapper) Map(img string) (to string, ours, ok bool, why string) {
	from, target := m.From, m.To
	if from.Registry == "" {
		from = m.Proof.Source
	}
	if target.Registry == "" {
		target = m.Proof.Target
	}
	r, err := imageref.Parse(img)
	if err != nil {
		return "", false, false, ""
	}
	rel, mine := under(from, r)
	if !mine {
		return "", false, false, ""
	}
	implicit := r.Tag == "" && r.Digest == ""
	if implicit {
		r.Tag = "latest"
	}
	var pv proven
	var found bool
	if r.Tag != "" {
		pv, found = m.Proof.byTag[rel+":"+r.Tag]
		if found && r.Digest != "" && r.Digest != pv.digest {
			return "", true, false, fmt.Sprintf("pinned to %s, but the verified tag is %s", r.Digest, pv.digest)
		}
	} else {
		pv, found = m.Proof.byDigest[rel+"@"+r.Digest]
	}
	if !found {
		return "", true, false, "not proven present on the target by the verify report"
	}
	n := imageref.Ref{Registry: target.Registry, Repository: pv.target, Tag: r.Tag, Digest: r.Digest}
	if target.Namespace != "" {
		n.Repository = target.Namespace + "/" + pv.target
	}
	if r.Tag != "" {
		n.Tag = pv.tag
	}
	if implicit && n.Tag == "latest" {
		n.Tag = ""
	}
	return n.String(), true, true, ""
}

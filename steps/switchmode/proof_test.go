package switchmode

import (
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/report"
)

var (
	dA = "sha256:" + strings.Repeat("a", 64)
	dB = "sha256:" + strings.Repeat("b", 64)
	dC = "sha256:" + strings.Repeat("c", 64)
)

func passing() report.Report {
	return report.Report{
		Source: "legacy.example:5000", Target: "new.example/mirror", Total: 3, Copied: 2, Skipped: 1, Verified: true, VerifyPassed: 3,
		Images: []report.Image{
			{Source: "legacy.example:5000/shop/api:v1", Target: "new.example/mirror/shop/api:v1", Digest: dA, Status: contract.StatusCopied},
			{Source: "legacy.example:5000/shop/web:latest", Target: "new.example/mirror/shop/web:latest", Digest: dB, Status: contract.StatusSkipped},
			{Source: "legacy.example:5000/shop/bad:v1", Target: "new.example/mirror/shop/bad:v1", Digest: dC, Status: contract.StatusFailed},
		},
	}
}

func TestProofPassesOnlyAFullyVerifiedReport(t *testing.T) {
	p, err := ProofFromReport(passing())
	if err != nil || !p.Passed {
		t.Fatalf("passing report: %+v %v", p, err)
	}
	for name, mut := range map[string]func(*report.Report){
		"failed":       func(r *report.Report) { r.Failed = 1 },
		"not verified": func(r *report.Report) { r.Verified = false; r.VerifyPassed = 2 },
		"dry run":      func(r *report.Report) { r.DryRun = true },
		"scope error":  func(r *report.Report) { r.ScopeErrors = []string{"shop/gone: not found"} },
		"empty":        func(r *report.Report) { r.Total = 0 },
	} {
		r := passing()
		mut(&r)
		p, err := ProofFromReport(r)
		if err != nil || p.Passed || p.Why == "" {
			t.Errorf("%s: passed=%v why=%q err=%v, want not passed with a reason", name, p.Passed, p.Why, err)
		}
	}
	if _, err := ProofFromReport(report.Report{Source: "", Target: "x"}); err == nil {
		t.Error("a report without a source: want an error")
	}
}

func TestMapperRewritesOnlyProvenImages(t *testing.T) {
	p, _ := ProofFromReport(passing())
	m := Mapper{Proof: p}
	for _, tc := range []struct {
		in, want  string
		ours, ok  bool
		whyPrefix string
	}{
		{in: "legacy.example:5000/shop/api:v1", want: "new.example/mirror/shop/api:v1", ours: true, ok: true},
		{in: "legacy.example:5000/shop/api@" + dA, want: "new.example/mirror/shop/api@" + dA, ours: true, ok: true},
		{in: "legacy.example:5000/shop/api:v1@" + dA, want: "new.example/mirror/shop/api:v1@" + dA, ours: true, ok: true},
		{in: "legacy.example:5000/shop/web", want: "new.example/mirror/shop/web", ours: true, ok: true}, // implicit latest stays implicit
		{in: "legacy.example:5000/shop/api:v1@" + dB, ours: true, whyPrefix: "pinned to"},
		{in: "legacy.example:5000/shop/bad:v1", ours: true, whyPrefix: "not proven"},
		{in: "legacy.example:5000/shop/api@" + dC, ours: true, whyPrefix: "not proven"},
		{in: "docker.io/library/nginx:1.27"},
		{in: "legacy.example:5001/shop/api:v1"},
	} {
		to, ours, ok, why := m.Map(tc.in)
		if to != tc.want || ours != tc.ours || ok != tc.ok || !strings.HasPrefix(why, tc.whyPrefix) {
			t.Errorf("Map(%s) = %q ours=%v ok=%v why=%q; want %q ours=%v ok=%v why %q...", tc.in, to, ours, ok, why, tc.want, tc.ours, tc.ok, tc.whyPrefix)
		}
	}
	// Workloads may name the registries differently from the run (an
	// in-cluster service name, a public name for the target).
	m.From, _ = imageref.ParseLocation("registry.legacy.svc:5000")
	m.To, _ = imageref.ParseLocation("registry.new.svc/platform")
	if to, _, ok, _ := m.Map("registry.legacy.svc:5000/shop/api:v1"); !ok || to != "registry.new.svc/platform/shop/api:v1" {
		t.Errorf("renamed registries: %q ok=%v", to, ok)
	}
}

func TestDiffSaysWhatChanges(t *testing.T) {
	r := Result{Mode: ModeModern, DryRun: true, Clusters: []ClusterResult{{
		Cluster: "east", Changed: true, Before: Record{Mode: ModeLegacy}, After: Record{Mode: ModeModern, Source: "a", Target: "b"},
		Objects: []Object{{Kind: "deployment", Namespace: "shop", Name: "api", Action: ActionWouldRewrite, PullSecret: "pull",
			Changes: []Change{{Container: "containers/api", From: "a/shop/api:v1", To: "b/shop/api:v1"}}}},
	}}}
	d := Diff(r)
	for _, want := range []string{"dry run", "deployment shop/api: would-rewrite", "-  containers/api: a/shop/api:v1", "+  containers/api: b/shop/api:v1", "+  imagePullSecrets: pull", "+++ mode record: modern"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
}

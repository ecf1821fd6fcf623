package switchmode

import (
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/report"
)

// TestReportReadsTheCutoverRecord: the report (which links no Kubernetes
// client) reads switch.json through package switchresult, with switch.diff;
// what Write writes is what it shows.
func TestReportReadsTheCutoverRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := Result{
		Mode: ModeModern, Forced: true, Time: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), Rewritten: 2, Pending: 1, Unchanged: 3, Reported: 1, Failed: 1, Unproven: 4,
		Clusters: []ClusterResult{{
			Cluster: "prod", Changed: true, Errors: []string{"1 workload(s) not switched"},
			Before:  Record{Mode: ModeLegacy, Source: "legacy:5000", Target: "new:5000", Migration: "m"},
			After:   Record{Mode: ModeModern, PreviousMode: ModeLegacy, Source: "legacy:5000", Target: "new:5000", Migration: "m", Time: "2026-11-30T08:00:00Z"},
			Objects: []Object{{Kind: "Deployment", Namespace: "team-a", Name: "api", Action: "rewritten", Changes: []Change{{Container: "containers/api", From: "legacy:5000/a:v1", To: "new:5000/a:v1"}}}},
		}},
	}
	if err := Write(dir, res); err != nil {
		t.Fatal(err)
	}
	c, err := report.ReadCutover(artifacts.Dir(dir))
	if err != nil || c == nil {
		t.Fatalf("ReadCutover: %v, %v", c, err)
	}
	cl := c.Clusters[0]
	if c.Mode != res.Mode || !c.Forced || !c.Time.Equal(res.Time) || c.Rewritten != 2 || c.Pending != 1 || c.Unchanged != 3 || c.Reported != 1 || c.Failed != 1 || c.Unproven != 4 ||
		cl.Cluster != "prod" || !cl.Changed || cl.Before.Mode != ModeLegacy || cl.After.Mode != ModeModern || cl.After.PreviousMode != ModeLegacy || cl.After.Migration != "m" ||
		len(cl.Errors) != 1 || len(cl.Objects) != 1 || cl.Objects[0].Action != "rewritten" || cl.Objects[0].Name != "api" || c.Diff != Diff(res) {
		t.Errorf("the report reads %+v from %+v", c, res)
	}
}

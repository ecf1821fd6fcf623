package approval_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/approval"
	"github.com/regmigrate/regmigrate/steps/artifacts"
)

func TestTheDecisionIsRecorded(t *testing.T) {
	for _, tc := range []struct {
		decision, approver string
		rejected           bool
		by                 string
	}{
		{approval.Approve, " Jane Doe ", false, "by Jane Doe"},
		{approval.Reject, "Ops on call", true, "by Ops on call"},
		{approval.Reject, "", true, "by nobody (no decision was supplied: the approval timed out, or was resumed without one)"},
	} {
		dir := t.TempDir()
		r, err := approval.Write(approval.Options{RunDir: dir, Decision: tc.decision, Approver: tc.approver, Workflow: "m-cutover-x"})
		if errors.Is(err, approval.ErrRejected) != tc.rejected || (err != nil && !tc.rejected) {
			t.Errorf("%s by %q: error %v", tc.decision, tc.approver, err)
		}
		if tc.rejected && !strings.Contains(err.Error(), tc.by+": the cluster was not switched") {
			t.Errorf("error %q: want it to say who rejected", err)
		}
		got, rerr := approval.Read(artifacts.Dir(dir))
		if rerr != nil || got == nil || got.Decision != tc.decision || got.By() != tc.by || got.Workflow != "m-cutover-x" || got.Recorded != r.Recorded {
			t.Errorf("read back %+v %v, wrote %+v", got, rerr, r)
		}
	}
	if r, err := approval.Read(artifacts.Dir(t.TempDir())); r != nil || err != nil {
		t.Errorf("no approval.json: %+v %v, want nil", r, err)
	}
}

func TestAnUnknownDecisionIsRefused(t *testing.T) {
	_, err := approval.Write(approval.Options{RunDir: t.TempDir(), Decision: "YES"})
	if err == nil || !strings.Contains(err.Error(), `decision "YES": want approve or reject`) {
		t.Errorf("error %v", err)
	}
}

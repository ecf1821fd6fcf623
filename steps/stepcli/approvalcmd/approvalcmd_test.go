package approvalcmd_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/report"
	"github.com/regmigrate/regmigrate/steps/stepcli"
	"github.com/regmigrate/regmigrate/steps/stepcli/approvalcmd"
)

// TestTheDecisionLandsInTheReport: approval.json is written and
// report.html shows it; a rejection exits 1 saying who rejected, an
// unknown decision 2.
func TestTheDecisionLandsInTheReport(t *testing.T) {
	for _, tc := range []struct {
		decision string
		code     int
		html     string
		stderr   string
	}{
		{"approve", 0, "approved</span> by Jane Doe (platform)", ""},
		{"reject", 1, "rejected</span> by Jane Doe (platform)", "the cutover was rejected by Jane Doe (platform): the cluster was not switched"},
		{"maybe", 2, "", `decision "maybe": want approve or reject`},
	} {
		dir := t.TempDir()
		if err := artifacts.WriteJSON(filepath.Join(dir, contract.ReportJSON), report.Report{Total: 1, Copied: 1}); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		env := stepcli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
		code := stepcli.Main(context.Background(), env, "verify approval", approvalcmd.Run,
			[]string{"--run-dir=" + dir, "--decision=" + tc.decision, "--approver=Jane Doe (platform)", "--workflow=m-cutover-x"})
		if code != tc.code || !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("%s: exit %d, stderr %q", tc.decision, code, errb.String())
		}
		html, _ := os.ReadFile(filepath.Join(dir, contract.ReportHTML))
		if tc.html != "" && !strings.Contains(string(html), tc.html) {
			t.Errorf("%s: report.html lacks %q", tc.decision, tc.html)
		}
		if _, err := os.Stat(filepath.Join(dir, contract.ApprovalFile)); (err == nil) != (tc.html != "") {
			t.Errorf("%s: approval.json: %v", tc.decision, err)
		}
	}
}

package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/steps/approval"
	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/notify"
	"github.com/regmigrate/regmigrate/steps/report"
)

const token = "XOXB-SECRET-TOKEN"

// receiver is a webhook answering status, recording what it received.
func receiver(t *testing.T, status int) (*httptest.Server, *[][]byte) {
	t.Helper()
	var got [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, b)
		w.WriteHeader(status)
		io.WriteString(w, "you posted to "+r.URL.Path) // a server that echoes the secret path
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

// runDir holds a report with a failed shard and a rejected approval.
func runDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	rep := report.Report{Total: 5, Copied: 3, Skipped: 1, Failed: 1, Bytes: 2048, VerifyFailed: 0, Shards: []report.Shard{
		{ID: "ns-a", Total: 3, Copied: 3}, {ID: "ns-b", Total: 2, Skipped: 1, Failed: 1},
	}}
	if err := artifacts.WriteJSON(artifacts.Dir(dir).Path(contract.ReportJSON), rep); err != nil {
		t.Fatal(err)
	}
	if _, err := approval.Write(approval.Options{RunDir: dir, Decision: approval.Reject, Approver: "Jane", Workflow: "m-cutover-x"}); !errors.Is(err, approval.ErrRejected) {
		t.Fatal(err)
	}
	return dir
}

func TestPostsTheSummaryInEitherFormat(t *testing.T) {
	dir := runDir(t)
	for _, format := range notify.Formats {
		t.Run(format, func(t *testing.T) {
			srv, got := receiver(t, http.StatusOK)
			_, err := notify.Run(context.Background(), notify.Options{
				URL: srv.URL + "/hooks/" + token, Format: format, Migration: "m", Workflow: "m-cutover-x", Namespace: "ns", Status: "Failed",
				Failures:  `[{"displayName":"record-approval","message":"Error (exit code 1)","phase":"Failed"}]`,
				UIBaseURL: "https://argo.example.com/", RunDir: dir, ReportLocation: "key m-cutover-x/run/report.html",
				Now: time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC),
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(*got) != 1 {
				t.Fatalf("%d posts", len(*got))
			}
			body := (*got)[0]
			if format == notify.FormatJSON {
				var s notify.Summary
				if err := json.Unmarshal(body, &s); err != nil {
					t.Fatal(err)
				}
				if s.Status != "Failed" || s.Total != 5 || s.Copied != 3 || s.Failed != 1 || s.Bytes != 2048 || !s.HasReport ||
					strings.Join(s.FailedShards, ",") != "ns-b" || strings.Join(s.FailedNodes, ",") != "record-approval: Error (exit code 1)" ||
					s.WorkflowURL != "https://argo.example.com/workflows/ns/m-cutover-x" || s.Approval == nil || s.Approval.Approver != "Jane" {
					t.Errorf("summary %+v", s)
				}
				return
			}
			var slack struct{ Text string }
			if err := json.Unmarshal(body, &slack); err != nil {
				t.Fatal(err)
			}
			for _, w := range []string{
				"❌ regmigrate m: <https://argo.example.com/workflows/ns/m-cutover-x|m-cutover-x> Failed",
				"5 images: 3 copied, 1 skipped, 1 failed, 2.0 KiB; 0 failed verification", "failed shards: ns-b",
				"failed steps: record-approval: Error (exit code 1)", "cutover rejected by Jane", "report: key m-cutover-x/run/report.html",
			} {
				if !strings.Contains(slack.Text, w) {
					t.Errorf("Slack text lacks %q:\n%s", w, slack.Text)
				}
			}
		})
	}
}

// TestArgosQuotedFailures: {{workflow.failures}} reaches the step as a
// JSON string holding the list (Argo quotes it), or the list itself.
func TestArgosQuotedFailures(t *testing.T) {
	list := `[{"displayName":"m-x","message":"","phase":"Failed"},{"displayName":"mirror(0)","message":"Error (exit code 1)","phase":"Failed"}]`
	quoted, _ := json.Marshal(list)
	for _, f := range []string{list, string(quoted), `"null"`, "null", ""} {
		s, err := notify.Build(notify.Options{Workflow: "w", Status: "Failed", Failures: f})
		want := "mirror(0): Error (exit code 1)"
		if strings.Contains(f, "null") || f == "" {
			want = ""
		}
		if err != nil || strings.Join(s.FailedNodes, ";") != want {
			t.Errorf("failures %s: %v %v, want %q", f, s.FailedNodes, err, want)
		}
	}
}

func TestARunWithoutAReportIsSaidSo(t *testing.T) {
	srv, got := receiver(t, http.StatusNoContent)
	s, err := notify.Run(context.Background(), notify.Options{URL: srv.URL + "/" + token, Format: notify.FormatSlack, Migration: "m", Workflow: "w", Status: "Error", RunDir: t.TempDir(), Failures: "null"})
	if err != nil {
		t.Fatal(err)
	}
	if s.HasReport || s.Report != "" || len(*got) != 1 || !strings.Contains(string((*got)[0]), "no report: the run ended before it") {
		t.Errorf("summary %+v, posted %s", s, *got)
	}
}

// TestTheURLNeverShows: whatever goes wrong, the error says where the URL
// came from, never the URL; a refusal is final, a server error or a
// connection failure retryable.
func TestTheURLNeverShows(t *testing.T) {
	refused, _ := receiver(t, http.StatusForbidden)
	broken, _ := receiver(t, http.StatusBadGateway)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, tc := range []struct {
		url  string
		code int
	}{
		{refused.URL + "/hooks/" + token, contract.ExitFailed},
		{broken.URL + "/hooks/" + token, contract.ExitRetryable},
		{gone.URL + "/hooks/" + token, contract.ExitRetryable},
		{"ftp://hooks.example/" + token, contract.ExitFailed},
		{"", contract.ExitFailed},
	} {
		_, err := notify.Run(context.Background(), notify.Options{URL: tc.url, URLSource: "Secret hook, key url", Format: notify.FormatJSON, Workflow: "w", Status: "Succeeded"})
		if err == nil {
			t.Errorf("%q: no error", tc.url)
			continue
		}
		if strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "Secret hook, key url") {
			t.Errorf("%q: error %q: want it to name the Secret, not the URL", tc.url, err)
		}
		if got := contract.ExitCode(err); got != tc.code {
			t.Errorf("%q: exit %d, want %d (%v)", tc.url, got, tc.code, err)
		}
	}
}

func TestBadSettingsSayWhatToWrite(t *testing.T) {
	err := notify.Options{URL: "https://h.example/x", Format: "teams", Workflow: "w", Status: "s", UIBaseURL: "argo.example.com"}.Validate()
	for _, w := range []string{`format "teams": want json or slack`, `UI base URL "argo.example.com": want http(s)://HOST[/PATH]`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
}

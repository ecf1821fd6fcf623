// Package notify posts a Workflow's summary to a webhook when the Workflow
// ends (its exit handler): the status, the counts of report.json, the
// shards that failed, the nodes Argo saw fail, the approval if there was
// one, a link to the Workflow in the Argo UI and where the report is. The
// payload is regmigrate's own JSON (Summary) or Slack's incoming-webhook
// message. The webhook's URL is a secret (a Slack URL is its own
// credential): it is never logged and never part of an error.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/regmigrate/regmigrate/steps/approval"
	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/progress"
	"github.com/regmigrate/regmigrate/steps/report"
)

// Payload formats.
const (
	FormatJSON  = "json"  // Summary as JSON
	FormatSlack = "slack" // {"text": ..., "blocks": [...]}: Slack's incoming webhooks, and Mattermost's, Rocket.Chat's and Teams' Slack-compatible ones
)

// Formats are the payload formats.
var Formats = []string{FormatJSON, FormatSlack}

// DefaultTimeout bounds one post.
const DefaultTimeout = 30 * time.Second

// Options for Run.
type Options struct {
	// URL of the webhook: a secret.
	URL string
	// Where the URL came from, for errors ("Secret regmigrate-webhook,
	// key url"): errors name it, never the URL.
	URLSource string
	Format    string

	Migration, Workflow, Namespace string
	// Status is the Workflow's ({{workflow.status}}): Succeeded, Failed or Error.
	Status string
	// Failures is Argo's {{workflow.failures}}: a JSON list of the failed
	// nodes ("null" or empty when none failed).
	Failures string
	// UIBaseURL is the Argo UI's address (https://argo.example.com);
	// empty: no link.
	UIBaseURL string
	// RunDir is the run directory as the Workflow left it (report.json,
	// approval.json), if any; ReportLocation says where the report is kept
	// (the artifact repository's key).
	RunDir, ReportLocation string

	Client *http.Client // nil: http.DefaultClient
	Now    time.Time    // zero: time.Now()
}

// Validate checks what Run needs.
func (o Options) Validate() error {
	var errs []error
	if o.URL == "" {
		errs = append(errs, fmt.Errorf("no webhook URL (%s is empty)", o.source()))
	} else if u, err := url.Parse(o.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("the webhook URL in %s is not an http(s) URL: put https://HOST/PATH there", o.source()))
	}
	return errors.Join(append(errs, o.ValidateSettings())...)
}

// ValidateSettings checks everything but the URL: the format, the
// Workflow and the UI's address.
func (o Options) ValidateSettings() error {
	var errs []error
	switch o.Format {
	case FormatJSON, FormatSlack:
	default:
		errs = append(errs, fmt.Errorf("format %q: want %s", o.Format, strings.Join(Formats, " or ")))
	}
	if o.Workflow == "" || o.Status == "" {
		errs = append(errs, errors.New("the Workflow's name and status are required"))
	}
	if o.UIBaseURL != "" {
		if u, err := url.Parse(o.UIBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("UI base URL %q: want http(s)://HOST[/PATH]", o.UIBaseURL))
		}
	}
	return errors.Join(errs...)
}

func (o Options) source() string {
	if o.URLSource != "" {
		return o.URLSource
	}
	return "the webhook URL"
}

// Summary is what is posted (FormatJSON), and what the Slack message says.
type Summary struct {
	Migration string `json:"migration"`
	Workflow  string `json:"workflow"`
	Namespace string `json:"namespace"`
	Status    string `json:"status"`
	// WorkflowURL is the Workflow in the Argo UI; empty without a UI base URL.
	WorkflowURL string `json:"workflowURL,omitempty"`
	// Report is where the report is kept (the artifact repository's key
	// of report.html); empty when the run wrote none.
	Report string `json:"report,omitempty"`
	// Counts from report.json; HasReport is false when the run ended
	// before its report (then they are zero).
	HasReport    bool  `json:"hasReport"`
	Total        int   `json:"total"`
	Copied       int   `json:"copied"`
	Skipped      int   `json:"skipped"`
	Failed       int   `json:"failed"`
	Bytes        int64 `json:"bytes"`
	VerifyFailed int   `json:"verifyFailed"`
	// FailedShards are the shards with a failed image or a failed check.
	FailedShards []string `json:"failedShards"`
	// FailedNodes are the Argo nodes that failed, with their messages
	// ("displayName: message").
	FailedNodes []string `json:"failedNodes"`
	// Approval is the cutover's decision, when there was one.
	Approval *approval.Record `json:"approval,omitempty"`
	Finished time.Time        `json:"finished"`
}

// failure is an entry of {{workflow.failures}}.
type failure struct {
	DisplayName string `json:"displayName"`
	Message     string `json:"message"`
	Phase       string `json:"phase"`
}

// Build reads what the run left and makes the summary.
func Build(o Options) (Summary, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	s := Summary{
		Migration: o.Migration, Workflow: o.Workflow, Namespace: o.Namespace, Status: o.Status,
		FailedShards: []string{}, FailedNodes: []string{}, Finished: now.UTC(),
	}
	if o.UIBaseURL != "" {
		s.WorkflowURL = strings.TrimSuffix(o.UIBaseURL, "/") + "/workflows/" + url.PathEscape(o.Namespace) + "/" + url.PathEscape(o.Workflow)
	}
	// Argo quotes the list (a JSON string holding the JSON list) so that
	// its substitution keeps the inner quotes.
	f := strings.TrimSpace(o.Failures)
	var quoted string
	if strings.HasPrefix(f, `"`) && json.Unmarshal([]byte(f), &quoted) == nil {
		f = strings.TrimSpace(quoted)
	}
	if f != "" && f != "null" {
		var fs []failure
		if err := json.Unmarshal([]byte(f), &fs); err != nil {
			return s, fmt.Errorf("reading the Workflow's failures: %w", err)
		}
		// The nodes that say why: Argo also lists their parents (the
		// Workflow, the shard's DAG), which carry no message.
		for _, n := range fs {
			if n.Message != "" {
				s.FailedNodes = append(s.FailedNodes, n.DisplayName+": "+n.Message)
			}
		}
		sort.Strings(s.FailedNodes) // Argo lists them in no order
	}
	if o.RunDir == "" {
		return s, nil
	}
	dir := artifacts.Dir(o.RunDir)
	var rep report.Report
	switch err := artifacts.ReadJSON(dir.Path(contract.ReportJSON), &rep); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return s, fmt.Errorf("reading the report: %w", err)
	default:
		s.HasReport = true
		s.Total, s.Copied, s.Skipped, s.Failed, s.Bytes, s.VerifyFailed = rep.Total, rep.Copied, rep.Skipped, rep.Failed, rep.Bytes, rep.VerifyFailed
		for _, sh := range rep.Shards {
			if sh.Failed > 0 || sh.VerifyFailed > 0 {
				s.FailedShards = append(s.FailedShards, sh.ID)
			}
		}
		if o.ReportLocation != "" {
			s.Report = o.ReportLocation
		}
	}
	a, err := approval.Read(dir)
	if err != nil {
		return s, fmt.Errorf("reading the approval: %w", err)
	}
	s.Approval = a
	return s, nil
}

// Text is the summary in a few lines, as a chat shows it.
func (s Summary) Text() string {
	var b strings.Builder
	icon := map[string]string{"Succeeded": "✅", "Failed": "❌", "Error": "❌"}[s.Status]
	name := s.Workflow
	if s.WorkflowURL != "" {
		name = fmt.Sprintf("<%s|%s>", s.WorkflowURL, s.Workflow)
	}
	fmt.Fprintf(&b, "%s regmigrate %s: %s %s\n", strings.TrimSpace(icon), s.Migration, name, s.Status)
	if s.HasReport {
		fmt.Fprintf(&b, "%d images: %d copied, %d skipped, %d failed, %s; %d failed verification\n",
			s.Total, s.Copied, s.Skipped, s.Failed, progress.HumanBytes(s.Bytes), s.VerifyFailed)
	} else {
		b.WriteString("no report: the run ended before it\n")
	}
	if len(s.FailedShards) > 0 {
		fmt.Fprintf(&b, "failed shards: %s\n", strings.Join(s.FailedShards, ", "))
	}
	if len(s.FailedNodes) > 0 {
		fmt.Fprintf(&b, "failed steps: %s\n", strings.Join(s.FailedNodes, "; "))
	}
	if a := s.Approval; a != nil {
		fmt.Fprintf(&b, "cutover %s %s\n", map[string]string{approval.Approve: "approved", approval.Reject: "rejected"}[a.Decision], a.By())
	}
	if s.Report != "" {
		fmt.Fprintf(&b, "report: %s\n", s.Report)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Payload is the request body in a format.
func Payload(format string, s Summary) ([]byte, error) {
	switch format {
	case FormatJSON:
		return json.Marshal(s)
	case FormatSlack:
		return json.Marshal(map[string]any{
			"text": s.Text(),
			"blocks": []any{map[string]any{
				"type": "section",
				"text": map[string]string{"type": "mrkdwn", "text": s.Text()},
			}},
		})
	}
	return nil, fmt.Errorf("format %q: want %s", format, strings.Join(Formats, " or "))
}

// ErrRejected: the webhook answered with a status that a retry will not
// change (4xx but 408 and 429).
var ErrRejected = errors.New("the webhook refused the notification")

// Run builds the summary and posts it. An error is retryable (a
// connection or 5xx/408/429) unless it wraps ErrRejected or is about the
// options.
func Run(ctx context.Context, o Options) (Summary, error) {
	if err := o.Validate(); err != nil {
		return Summary{}, err
	}
	s, err := Build(o)
	if err != nil {
		return s, err
	}
	body, err := Payload(o.Format, s)
	if err != nil {
		return s, err
	}
	return s, post(ctx, o, body)
}

func post(ctx context.Context, o Options, body []byte) error {
	c := o.Client
	if c == nil {
		c = &http.Client{Timeout: DefaultTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("the webhook URL in %s: %s", o.source(), redact(err.Error(), o.URL))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "regmigrate/"+contract.Version)
	resp, err := c.Do(req)
	if err != nil {
		return &contract.ExitError{Code: contract.ExitRetryable, Err: fmt.Errorf("posting to the webhook of %s: %s", o.source(), redact(err.Error(), o.URL))}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("posting to the webhook of %s: %s: %s", o.source(), resp.Status, redact(strings.TrimSpace(string(msg)), o.URL))
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
		return &contract.ExitError{Code: contract.ExitRetryable, Err: err}
	}
	return fmt.Errorf("%w: %w", ErrRejected, err)
}

// redact removes the URL and its secret-bearing parts (path, query,
// user info) from a message.
func redact(msg, raw string) string {
	msg = strings.ReplaceAll(msg, raw, "<webhook URL>")
	if u, err := url.Parse(raw); err == nil {
		for _, part := range []string{u.RawQuery, u.EscapedPath(), u.Path, u.User.String()} {
			if len(part) > 1 && part != "/" {
				msg = strings.ReplaceAll(msg, part, "<redacted>")
			}
		}
		if b := path.Base(u.Path); len(b) > 3 {
			msg = strings.ReplaceAll(msg, b, "<redacted>")
		}
	}
	return msg
}

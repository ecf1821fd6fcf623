package spec

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Resources are a container's requests and limits, as Kubernetes writes
// them ("250m", "1", "128Mi", "1Gi").
type Resources struct {
	Requests ResourceList `json:"requests,omitempty"`
	Limits   ResourceList `json:"limits,omitempty"`
}

// ResourceList is an amount of CPU and memory.
type ResourceList struct {
	CPU    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
}

// Deadlines bound the pods and the Workflows in time (Go durations: "6h",
// "90m").
type Deadlines struct {
	// Step: each attempt of a step pod (activeDeadlineSeconds); default 6h.
	Step string `json:"step,omitempty"`
	// Workflow: a whole Workflow, the cutover's wait for its approval
	// included; default 72h.
	Workflow string `json:"workflow,omitempty"`
}

// TTL: how long a finished Workflow object stays in the cluster (its
// record stays in the workflow archive and its audit bundle in the
// artifact repository).
type TTL struct {
	AfterSuccess string `json:"afterSuccess,omitempty"` // default 168h
	AfterFailure string `json:"afterFailure,omitempty"` // default 336h
}

// Notify is the exit handler that posts each Workflow's summary (status,
// counts, failed shards, a link to the Workflow, where the report is) to
// a webhook.
type Notify struct {
	// WebhookSecret holds the webhook's URL (a Slack URL is its own
	// credential: it lives in a Secret, never in the spec or a parameter).
	WebhookSecret SecretKey `json:"webhookSecret"`
	// Format: json (regmigrate's summary, the default) or slack (Slack's
	// incoming-webhook message, which Mattermost and Rocket.Chat take too).
	Format string `json:"format,omitempty"`
	// UIURL is the Argo UI's address (https://argo.example.com), for a
	// link to the Workflow; empty: no link.
	UIURL string `json:"uiURL,omitempty"`
}

// SecretKey names a key of a Secret in the Workflows' namespace.
type SecretKey struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// Approval is the cutover's wait for a person's decision.
type Approval struct {
	// Timeout: how long the cutover waits (a Go duration); past it, the
	// cutover ends rejected and the cluster is not switched. Default 24h
	// (or half the workflow deadline when that is shorter); it must be
	// shorter than deadlines.workflow.
	Timeout string `json:"timeout,omitempty"`
}

// Notification formats.
var NotifyFormats = []string{"json", "slack"}

// StepNames are the steps StepResources may name (the templates whose
// pods run a step binary; workflows.StepTemplates, which a test keeps
// equal).
var StepNames = []string{"export", "mirror-shard", "backfill-shard", "verify-shard", "report", "record-approval", "switch-mode", "switch-back", "check-legacy", "notify", "pack-layout"}

// Duration parses a duration of the argo section ("" is 0).
func Duration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("%q: want a duration of at least a second, such as 90m, 6h or 168h", s)
	}
	return d, nil
}

// validate checks the argo section's pod settings; each error starts with
// the field it names (located to its line).
func (a Argo) validate() []error {
	var errs []error
	if a.Resources != nil {
		errs = append(errs, a.Resources.validate("argo.resources")...)
	}
	steps := make([]string, 0, len(a.StepResources))
	for s := range a.StepResources {
		steps = append(steps, s)
	}
	sort.Strings(steps)
	for _, s := range steps {
		if !slices.Contains(StepNames, s) {
			errs = append(errs, fmt.Errorf("argo.stepResources: step %q: want one of %s", s, strings.Join(StepNames, ", ")))
			continue
		}
		r := a.StepResources[s]
		errs = append(errs, r.validate(fmt.Sprintf("argo.stepResources (%s)", s))...)
	}
	if p := a.PriorityClassName; p != "" {
		if msgs := validation.IsDNS1123Subdomain(p); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("argo.priorityClassName %q: %s", p, strings.Join(msgs, "; ")))
		}
	}
	for _, d := range []struct{ field, v string }{
		{"argo.deadlines.step", a.Deadlines.Step}, {"argo.deadlines.workflow", a.Deadlines.Workflow},
		{"argo.ttl.afterSuccess", a.TTL.AfterSuccess}, {"argo.ttl.afterFailure", a.TTL.AfterFailure},
		{"argo.approval.timeout", a.Approval.Timeout},
	} {
		if _, err := Duration(d.v); err != nil {
			errs = append(errs, fmt.Errorf("%s %w", d.field, err))
		}
	}
	if n := a.Notify; n != nil {
		errs = append(errs, n.validate()...)
	}
	if v := a.LayoutVolume; v != nil {
		if v.ClaimName == "" {
			errs = append(errs, errors.New("argo.layoutVolume.claimName: want the name of a PersistentVolumeClaim in the Workflows' namespace, e.g. {claimName: regmigrate-export}"))
		} else if msgs := validation.IsDNS1123Subdomain(v.ClaimName); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("argo.layoutVolume.claimName %q: %s", v.ClaimName, strings.Join(msgs, "; ")))
		}
		if s := v.SubPath; s != "" && (strings.HasPrefix(s, "/") || s == ".." || strings.HasPrefix(s, "../") || strings.Contains(s, "/../")) {
			errs = append(errs, fmt.Errorf("argo.layoutVolume.subPath %q: want a relative path inside the claim", s))
		}
	}
	wd, err1 := Duration(a.Deadlines.Workflow)
	at, err2 := Duration(a.Approval.Timeout)
	if err1 == nil && err2 == nil && at > 0 && wd > 0 && at >= wd {
		errs = append(errs, fmt.Errorf("argo.approval.timeout %s: want less than argo.deadlines.workflow %s, which would end the cutover first", a.Approval.Timeout, a.Deadlines.Workflow))
	}
	return errs
}

func (n Notify) validate() []error {
	var errs []error
	if n.WebhookSecret.Name == "" || n.WebhookSecret.Key == "" {
		errs = append(errs, errors.New("argo.notify.webhookSecret: want the name and key of the Secret holding the webhook URL, e.g. {name: regmigrate-webhook, key: url} (kubectl create secret generic regmigrate-webhook --from-literal=url=https://...)"))
	} else {
		if msgs := validation.IsDNS1123Subdomain(n.WebhookSecret.Name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("argo.notify.webhookSecret.name %q: %s", n.WebhookSecret.Name, strings.Join(msgs, "; ")))
		}
		if msgs := validation.IsConfigMapKey(n.WebhookSecret.Key); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("argo.notify.webhookSecret.key %q: %s", n.WebhookSecret.Key, strings.Join(msgs, "; ")))
		}
	}
	if n.Format != "" && !slices.Contains(NotifyFormats, n.Format) {
		errs = append(errs, fmt.Errorf("argo.notify.format %q: want %s", n.Format, strings.Join(NotifyFormats, " or ")))
	}
	if n.UIURL != "" {
		if u, err := url.Parse(n.UIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("argo.notify.uiURL %q: want the Argo UI's address, http(s)://HOST[/PATH]", n.UIURL))
		}
	}
	return errs
}

func (r Resources) validate(field string) []error {
	var errs []error
	parse := func(kind, what, v string) (resource.Quantity, bool) {
		if v == "" {
			return resource.Quantity{}, false
		}
		q, err := resource.ParseQuantity(v)
		if err != nil || q.Sign() <= 0 {
			example := "128Mi, 1Gi"
			if what == "cpu" {
				example = "250m, 1"
			}
			errs = append(errs, fmt.Errorf("%s: %s.%s %q: want a positive quantity such as %s", field, kind, what, v, example))
			return resource.Quantity{}, false
		}
		return q, true
	}
	for _, what := range []string{"cpu", "memory"} {
		req, lim := r.Requests.CPU, r.Limits.CPU
		if what == "memory" {
			req, lim = r.Requests.Memory, r.Limits.Memory
		}
		rq, okR := parse("requests", what, req)
		lq, okL := parse("limits", what, lim)
		if okR && okL && rq.Cmp(lq) > 0 {
			errs = append(errs, fmt.Errorf("%s: requests.%s %s is more than limits.%s %s", field, what, req, what, lim))
		}
	}
	return errs
}

// Package decommission is the gate before the legacy registry is switched
// off: it lists everything in a cluster still tied to it (workload specs,
// pods that run, ReplicaSets, Jobs and Pods nobody owns, ImageStream tags
// whose reference points at it, pull secrets that hold credentials for
// it). The gate is green only when the list is empty.
package decommission

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/owners"
	"github.com/regmigrate/regmigrate/steps/workloads"
)

// Files the gate writes beside switch.json.
const (
	ResultFile   = "check.json"
	MarkdownFile = "check.md"
)

// What a finding is about.
const (
	WhatWorkload    = "workload"         // a Deployment, StatefulSet, DaemonSet or CronJob's template
	WhatUnowned     = "unowned"          // a ReplicaSet, Job or Pod no controller owns: recreate it
	WhatPod         = "pod"              // a pod that runs (or will run) a legacy image
	WhatImageStream = "imagestream"      // an ImageStream tag whose reference points at the legacy registry
	WhatPullSecret  = "pull-secret"      // a Secret holding credentials for the legacy registry
	WhatSpecTag     = "imagestream-spec" // an ImageStream spec tag importing from the legacy registry
)

// Finding is one thing still tied to the legacy registry.
type Finding struct {
	What      string `json:"what"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Field: the container (containers/NAME), the tag, or the auth entry.
	Field string `json:"field"`
	// Reference: the legacy image reference (the registry host for a
	// pull secret; never its content).
	Reference string `json:"reference"`
	// Owner: the GitOps manager, when one manages the object.
	Owner string `json:"owner,omitempty"`
}

// ClusterResult is one cluster's findings.
type ClusterResult struct {
	Cluster  string    `json:"cluster"`
	Findings []Finding `json:"findings"`
	// Errors: what could not be checked (a kind that could not be listed):
	// the gate is not green while any is left.
	Errors []string `json:"errors,omitempty"`
	// Skipped: what was not there to check (no Image API).
	Skipped []string `json:"skipped,omitempty"`
}

// Result is check.json.
type Result struct {
	Legacy   string          `json:"legacy"`
	Time     time.Time       `json:"time"`
	Clusters []ClusterResult `json:"clusters"`
	// Remaining counts the findings; Clean: none left and nothing that
	// could not be checked.
	Remaining int  `json:"remaining"`
	Clean     bool `json:"clean"`
}

// Cluster is one cluster to check.
type Cluster struct {
	Name   string
	Client dynamic.Interface
	// ImageAPI: the Image API's group and version (zero: no Image API,
	// ImageStreams not checked).
	ImageAPI schema.GroupVersion
	// ImageAPIError: the Image API could not be discovered (the gate is
	// red: ImageStreams could not be checked).
	ImageAPIError string
}

// Options for Check.
type Options struct {
	Clusters   []Cluster
	Legacy     imageref.Location
	Namespaces []string // all when empty
	Now        func() time.Time
}

var secretsGVR = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// Check lists what is still tied to the legacy registry in every cluster.
func Check(ctx context.Context, o Options) Result {
	if o.Now == nil {
		o.Now = time.Now
	}
	res := Result{Legacy: o.Legacy.String(), Time: o.Now().UTC()}
	for _, c := range o.Clusters {
		res.Clusters = append(res.Clusters, o.one(ctx, c))
	}
	res.Clean = true
	for _, c := range res.Clusters {
		res.Remaining += len(c.Findings)
		if len(c.Findings) > 0 || len(c.Errors) > 0 {
			res.Clean = false
		}
	}
	return res
}

// ExitCode: 0 only when nothing is left.
func (r Result) ExitCode() int {
	if r.Clean {
		return contract.ExitOK
	}
	return contract.ExitFailed
}

// Summary is the one line the gate prints last.
func (r Result) Summary() string {
	if r.Clean {
		return fmt.Sprintf("legacy registry %s: nothing left that uses it in %d cluster(s); it can be switched off", r.Legacy, len(r.Clusters))
	}
	errs := 0
	for _, c := range r.Clusters {
		errs += len(c.Errors)
	}
	return fmt.Sprintf("legacy registry %s: %d thing(s) still tied to it, %d check(s) that could not run, in %d cluster(s); do not switch it off yet", r.Legacy, r.Remaining, errs, len(r.Clusters))
}

func (o Options) one(ctx context.Context, c Cluster) ClusterResult {
	cr := ClusterResult{Cluster: c.Name}
	namespaces := o.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	for _, ns := range namespaces {
		for _, k := range workloads.Kinds {
			list, err := c.Client.Resource(k.GVR).Namespace(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				cr.Errors = append(cr.Errors, listError(k.GVR.Resource, ns, err))
				continue
			}
			for i := range list.Items {
				cr.Findings = append(cr.Findings, o.workload(k, &list.Items[i])...)
			}
		}
		if c.ImageAPI.Group != "" {
			f, err := o.imageStreams(ctx, c, ns)
			if err != nil {
				cr.Errors = append(cr.Errors, listError("imagestreams ("+c.ImageAPI.Group+")", ns, err))
			}
			cr.Findings = append(cr.Findings, f...)
		}
		f, err := o.pullSecrets(ctx, c, ns)
		if err != nil {
			cr.Errors = append(cr.Errors, listError("secrets", ns, err))
		}
		cr.Findings = append(cr.Findings, f...)
	}
	switch {
	case c.ImageAPIError != "":
		cr.Errors = append(cr.Errors, "ImageStreams: "+c.ImageAPIError)
	case c.ImageAPI.Group == "":
		cr.Skipped = append(cr.Skipped, "ImageStreams: the cluster serves no Image API")
	}
	sort.SliceStable(cr.Findings, func(i, j int) bool {
		a, b := cr.Findings[i], cr.Findings[j]
		if a.What != b.What {
			return a.What < b.What
		}
		return a.Kind+"/"+a.Namespace+"/"+a.Name+"/"+a.Field < b.Kind+"/"+b.Namespace+"/"+b.Name+"/"+b.Field
	})
	return cr
}

func listError(what, ns string, err error) string {
	if ns == "" {
		ns = "all namespaces"
	}
	msg := fmt.Sprintf("listing %s in %s: %v", what, ns, err)
	if apierrors.IsForbidden(err) {
		msg += ": the gate needs list on deployments, statefulsets, daemonsets, replicasets (apps), cronjobs, jobs (batch), pods, secrets and imagestreams (manifests/ has the ClusterRole regmigrate-switch-mode)"
	}
	return msg
}

// workload: a workload's template, an unowned ReplicaSet, Job or Pod, and
// pods that run. ReplicaSets and Jobs a controller owns are left to their
// owner's template (and their pods, if they run, are found as pods).
func (o Options) workload(k workloads.Kind, obj *unstructured.Unstructured) []Finding {
	what := WhatWorkload
	owned := len(obj.GetOwnerReferences()) > 0
	switch {
	case k.Name == "pod":
		phase, _, _ := unstructured.NestedString(obj.Object, "status", "phase")
		if phase == "Succeeded" || phase == "Failed" {
			return nil // it will not pull again
		}
		what = WhatPod
		if !owned {
			what = WhatUnowned
		}
	case !k.Rewritable:
		if owned {
			return nil
		}
		what = WhatUnowned
	}
	spec, ok, _ := unstructured.NestedMap(obj.Object, k.Spec...)
	if !ok {
		return nil
	}
	owner := ""
	if ow := owners.Of(obj); ow.GitOps() {
		owner = ow.App()
	}
	var out []Finding
	for _, c := range workloads.Containers(spec) {
		if workloads.OnRegistry(c.Image, o.Legacy) {
			out = append(out, Finding{What: what, Kind: k.Name, Namespace: obj.GetNamespace(), Name: obj.GetName(), Field: c.ID, Reference: c.Image, Owner: owner})
		}
	}
	return out
}

// imageStreams: the current reference of every status tag, and spec tags
// importing from the legacy registry.
func (o Options) imageStreams(ctx context.Context, c Cluster, ns string) ([]Finding, error) {
	list, err := c.Client.Resource(c.ImageAPI.WithResource("imagestreams")).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, is := range list.Items {
		tags, _, _ := unstructured.NestedSlice(is.Object, "status", "tags")
		for _, t := range tags {
			m, _ := t.(map[string]any)
			tag, _ := m["tag"].(string)
			items, _ := m["items"].([]any)
			if len(items) == 0 {
				continue
			}
			cur, _ := items[0].(map[string]any) // the newest event is the tag's image
			ref, _ := cur["dockerImageReference"].(string)
			if workloads.OnRegistry(ref, o.Legacy) {
				out = append(out, Finding{What: WhatImageStream, Kind: "imagestream", Namespace: is.GetNamespace(), Name: is.GetName(), Field: "tag " + tag, Reference: ref})
			}
		}
		specTags, _, _ := unstructured.NestedSlice(is.Object, "spec", "tags")
		for _, t := range specTags {
			m, _ := t.(map[string]any)
			tag, _ := m["name"].(string)
			from, _ := m["from"].(map[string]any)
			if kind, _ := from["kind"].(string); kind != "DockerImage" {
				continue
			}
			ref, _ := from["name"].(string)
			if workloads.OnRegistry(ref, o.Legacy) {
				out = append(out, Finding{What: WhatSpecTag, Kind: "imagestream", Namespace: is.GetNamespace(), Name: is.GetName(), Field: "spec tag " + tag, Reference: ref})
			}
		}
	}
	return out, nil
}

// pullSecrets: docker config Secrets with an auth entry for the legacy
// registry. Only the host is reported, never anything of the credential.
func (o Options) pullSecrets(ctx context.Context, c Cluster, ns string) ([]Finding, error) {
	var out []Finding
	for _, typ := range []struct{ typ, key string }{{"kubernetes.io/dockerconfigjson", ".dockerconfigjson"}, {"kubernetes.io/dockercfg", ".dockercfg"}} {
		list, err := c.Client.Resource(secretsGVR).Namespace(ns).List(ctx, metav1.ListOptions{FieldSelector: "type=" + typ.typ})
		if err != nil {
			return out, err
		}
		for _, s := range list.Items {
			data, _ := s.Object["data"].(map[string]any)
			enc, _ := data[typ.key].(string)
			for _, host := range authHosts(enc, typ.key == ".dockerconfigjson") {
				if host == o.Legacy.Registry {
					out = append(out, Finding{What: WhatPullSecret, Kind: "secret", Namespace: s.GetNamespace(), Name: s.GetName(), Field: typ.key, Reference: host})
				}
			}
		}
	}
	return out, nil
}

// authHosts: the registry hosts a docker config names (keys may be URLs).
func authHosts(enc string, wrapped bool) []string {
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil
	}
	auths := map[string]json.RawMessage{}
	if wrapped {
		var cfg struct {
			Auths map[string]json.RawMessage `json:"auths"`
		}
		if json.Unmarshal(b, &cfg) != nil {
			return nil
		}
		auths = cfg.Auths
	} else if json.Unmarshal(b, &auths) != nil {
		return nil
	}
	var hosts []string
	for k := range auths {
		h := strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
		h, _, _ = strings.Cut(h, "/")
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	return hosts
}

// Markdown is check.md, for the audit bundle.
func (r Result) Markdown() string {
	var b strings.Builder
	verdict := "GREEN: nothing left uses it; it can be switched off"
	if !r.Clean {
		verdict = "RED: do not switch it off yet"
	}
	fmt.Fprintf(&b, "# Legacy registry %s: decommission check\n\n%s (%s).\n", r.Legacy, verdict, r.Time.Format(time.RFC3339))
	for _, c := range r.Clusters {
		fmt.Fprintf(&b, "\n## Cluster %s: %d left\n\n", c.Cluster, len(c.Findings))
		for _, e := range c.Errors {
			fmt.Fprintf(&b, "- could not check: %s\n", e)
		}
		for _, s := range c.Skipped {
			fmt.Fprintf(&b, "- not checked: %s\n", s)
		}
		if len(c.Findings) == 0 {
			continue
		}
		if len(c.Errors)+len(c.Skipped) > 0 {
			b.WriteString("\n")
		}
		b.WriteString("| what | object | field | reference | managed by |\n|---|---|---|---|---|\n")
		for _, f := range c.Findings {
			fmt.Fprintf(&b, "| %s | %s/%s/%s | %s | `%s` | %s |\n", f.What, f.Kind, f.Namespace, f.Name, f.Field, f.Reference, f.Owner)
		}
	}
	return b.String()
}

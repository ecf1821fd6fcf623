// Package workloads finds the images that a cluster's workloads use
// (seed 001's `config` step): the containers and init containers of
// Deployments, StatefulSets, DaemonSets, CronJobs, Jobs, ReplicaSets and
// Pods, in chosen namespaces (all when none given), keeping only images on
// the legacy registry.
package workloads

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/regmigrate/regmigrate/steps/imageref"
)

// Kind is a workload kind and where its pod spec is.
type Kind struct {
	GVR  schema.GroupVersionResource
	Name string   // deployment, cronjob, ...
	Spec []string // path to the pod spec
	// Rewritable: changing the pod template changes the running pods (a
	// controller rolls them). ReplicaSets, Jobs and Pods are not: an
	// unowned one is reported by the cutover, not changed.
	Rewritable bool
}

// Kinds are the workload kinds whose containers use images.
var Kinds = []Kind{
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "deployment", []string{"spec", "template", "spec"}, true},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, "statefulset", []string{"spec", "template", "spec"}, true},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, "daemonset", []string{"spec", "template", "spec"}, true},
	{schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}, "cronjob", []string{"spec", "jobTemplate", "spec", "template", "spec"}, true},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}, "replicaset", []string{"spec", "template", "spec"}, false},
	{schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, "job", []string{"spec", "template", "spec"}, false},
	{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "pod", []string{"spec"}, false},
}

// KindOf finds a workload kind by its Kubernetes kind (Deployment, ...).
func KindOf(kind string) (Kind, bool) {
	for _, k := range Kinds {
		if k.Name == strings.ToLower(kind) {
			return k, true
		}
	}
	return Kind{}, false
}

// Container is one container of a pod spec.
type Container struct {
	ID    string // containers/NAME or initContainers/NAME
	Image string
}

// ContainerFields are the pod spec's container lists, init containers
// first, as the kubelet runs them.
var ContainerFields = []string{"initContainers", "containers"}

// Containers lists a pod spec's containers, init containers first.
func Containers(spec map[string]any) []Container {
	var out []Container
	for _, field := range ContainerFields {
		cs, _, _ := unstructured.NestedSlice(spec, field)
		for _, c := range cs {
			m, _ := c.(map[string]any)
			name, _ := m["name"].(string)
			img, _ := m["image"].(string)
			out = append(out, Container{field + "/" + name, img})
		}
	}
	return out
}

// Images lists the images the workloads of namespaces (all when empty)
// use that live on the legacy registry, sorted and de-duplicated, with
// where each is used.
func Images(ctx context.Context, cfg *rest.Config, legacy imageref.Location, namespaces []string) (map[string][]string, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	found := map[string][]string{}
	for _, ns := range namespaces {
		for _, k := range Kinds {
			list, err := dyn.Resource(k.GVR).Namespace(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("listing %s in %q: %w", k.GVR.Resource, ns, err)
			}
			for _, obj := range list.Items {
				spec, ok, _ := unstructured.NestedMap(obj.Object, k.Spec...)
				if !ok {
					continue
				}
				where := k.Name + "/" + obj.GetNamespace() + "/" + obj.GetName()
				for _, c := range Containers(spec) {
					if OnRegistry(c.Image, legacy) {
						found[c.Image] = append(found[c.Image], where)
					}
				}
			}
		}
	}
	for img := range found {
		sort.Strings(found[img])
	}
	return found, nil
}

// OnRegistry reports whether an image reference is on the legacy registry
// (and under its namespace, when the location has one).
func OnRegistry(img string, legacy imageref.Location) bool {
	r, err := imageref.Parse(img)
	if err != nil || r.Registry != legacy.Registry {
		return false
	}
	return legacy.Namespace == "" || strings.HasPrefix(r.Repository, legacy.Namespace+"/")
}

// ListFile renders the images as an image list (`ns/repo:tag` relative to
// the registry, `@digest` kept), one a line, for `regmigrate run --images`.
func ListFile(images map[string][]string) []byte {
	var lines []string
	for img := range images {
		r, _ := imageref.Parse(img)
		r.Registry = ""
		if r.Tag == "" && r.Digest == "" {
			r.Tag = "latest"
		}
		lines = append(lines, r.String())
	}
	sort.Strings(lines)
	return []byte(strings.Join(lines, "\n") + "\n")
}

// ImagesJSON renders image-migrator's images.json (seed 001): each source
// repository:tag mapped to the same path on the target, for people who
// want to edit the rules.
func ImagesJSON(images map[string][]string, target imageref.Location) ([]byte, error) {
	rules := map[string]string{}
	for img := range images {
		r, _ := imageref.Parse(img)
		if r.Tag == "" {
			if r.Digest != "" {
				continue // image-migrator rules take tags
			}
			r.Tag = "latest"
		}
		r.Digest = ""
		dst := r
		dst.Registry = target.Registry
		if target.Namespace != "" {
			dst.Repository = target.Namespace + "/" + r.Repository
		}
		rules[r.String()] = dst.Repo() + ":" + r.Tag
	}
	return json.MarshalIndent(rules, "", "  ")
}

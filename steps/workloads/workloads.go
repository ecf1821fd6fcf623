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

// kinds and where their pod spec is.
var kinds = []struct {
	gvr  schema.GroupVersionResource
	spec []string
}{
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, []string{"spec", "template", "spec"}},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, []string{"spec", "template", "spec"}},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, []string{"spec", "template", "spec"}},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}, []string{"spec", "template", "spec"}},
	{schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}, []string{"spec", "jobTemplate", "spec", "template", "spec"}},
	{schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, []string{"spec", "template", "spec"}},
	{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, []string{"spec"}},
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
		for _, k := range kinds {
			list, err := dyn.Resource(k.gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("listing %s in %q: %w", k.gvr.Resource, ns, err)
			}
			for _, obj := range list.Items {
				spec, ok, _ := unstructured.NestedMap(obj.Object, k.spec...)
				if !ok {
					continue
				}
				where := strings.TrimSuffix(k.gvr.Resource, "s") + "/" + obj.GetNamespace() + "/" + obj.GetName()
				for _, field := range []string{"initContainers", "containers"} {
					cs, _, _ := unstructured.NestedSlice(spec, field)
					for _, c := range cs {
						m, _ := c.(map[string]any)
						img, _ := m["image"].(string)
						if onRegistry(img, legacy) {
							found[img] = append(found[img], where)
						}
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

// onRegistry reports whether an image reference is on the legacy registry
// (and under its namespace, when the location has one).
func onRegistry(img string, legacy imageref.Location) bool {
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

package switchmode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/gitops"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/switchresult"
	"github.com/regmigrate/regmigrate/steps/workloads"
)

// Source is the change one application's source needs.
type Source = switchresult.Source

// GitOpsDir holds, beside switch.json, one folder per application: the
// kustomize Component to commit.
const GitOpsDir = "gitops"

// sources works out, for the objects Argo CD, Flux or Helm manage, the
// change their source needs: a kustomize Component (checked by rendering
// the live objects with it) per Argo CD Application or Flux
// Kustomization, the values naming legacy images per Helm release.
func sources(ctx context.Context, c dynamic.Interface, objs []Object, m Mapper, from, to imageref.Location) []Source {
	type group struct {
		src  Source
		objs []Object
	}
	groups := map[string]*group{}
	var keys []string
	for _, ob := range objs {
		if !ob.Owner.GitOps() || len(ob.Changes) == 0 {
			continue
		}
		key := ob.Owner.App()
		g, ok := groups[key]
		if !ok {
			g = &group{src: Source{Manager: ob.Owner.Manager, Name: ob.Owner.Name, Namespace: ob.Owner.Namespace}}
			groups[key] = g
			keys = append(keys, key)
		}
		g.src.Objects = append(g.src.Objects, ob.Ref())
		g.objs = append(g.objs, ob)
	}
	sort.Strings(keys)
	var out []Source
	for _, key := range keys {
		g := groups[key]
		switch g.src.Manager {
		case switchresult.ManagerArgoCD, switchresult.ManagerFluxKustomize:
			kustomizeSource(ctx, c, &g.src, g.objs)
		default:
			mapImage := func(img string) (string, bool) {
				to, _, ok, _ := m.Map(img)
				return to, ok
			}
			vals, err := gitops.HelmValues(ctx, c, g.src.Namespace, g.src.Name, from, to, mapImage)
			g.src.Values = vals
			if err != nil {
				g.src.Error = err.Error()
			} else if len(vals) == 0 {
				g.src.Error = "no value of the release names the legacy registry: the images come from the chart's templates; change them there"
			}
		}
		out = append(out, g.src)
	}
	return out
}

// kustomizeSource fills the images overrides and checks them on the live
// objects.
func kustomizeSource(ctx context.Context, c dynamic.Interface, src *Source, objs []Object) {
	var changes []Change
	want := map[string]map[string]string{}
	var live []*unstructured.Unstructured
	for _, ob := range objs {
		changes = append(changes, ob.Changes...)
		w := map[string]string{}
		for _, ch := range ob.Changes {
			w[ch.Container] = ch.To
		}
		want[ob.Ref()] = w
		k, _ := workloads.KindOf(ob.Kind)
		u, err := c.Resource(k.GVR).Namespace(ob.Namespace).Get(ctx, ob.Name, metav1.GetOptions{})
		if err != nil {
			src.Error = fmt.Sprintf("reading %s to check the patch: %v", ob.Ref(), err)
			return
		}
		if rec, ok := readRecord(u); ok {
			// Rewritten live (--include-managed): the source still has
			// the original images; check the patch on those.
			restoreOriginals(k, u, rec)
		}
		live = append(live, u)
	}
	images, err := gitops.Images(changes)
	src.Images = images
	if err != nil {
		src.Error = err.Error()
		return
	}
	comp, err := gitops.Component(appLabel(src), images)
	if err != nil {
		src.Error = err.Error()
		return
	}
	if err := gitops.Check(comp, live, want); err != nil {
		src.Error = "the kustomize patch does not render the target's images: " + err.Error()
		src.Images = images
	}
}

// restoreOriginals puts the record's original images back in memory.
func restoreOriginals(k workloads.Kind, u *unstructured.Unstructured, rec record) {
	spec := mustSpec(k, u)
	orig := map[string]string{}
	for _, ch := range rec.Changes {
		orig[ch.Container] = ch.From
	}
	for _, field := range workloads.ContainerFields {
		cs, _, _ := unstructured.NestedSlice(spec, field)
		for _, c := range cs {
			m, _ := c.(map[string]any)
			name, _ := m["name"].(string)
			if img, ok := orig[field+"/"+name]; ok {
				m["image"] = img
			}
		}
		if len(cs) > 0 {
			spec[field] = cs
		}
	}
	_ = unstructured.SetNestedMap(u.Object, spec, k.Spec...)
}

func appLabel(s *Source) string {
	return (&switchresult.Owner{Manager: s.Manager, Name: s.Name, Namespace: s.Namespace}).App()
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// sourceDir is the folder of one application's patch, relative to
// switch.json's folder.
func sourceDir(cluster string, clusters int, s Source) string {
	name := s.Manager + "-"
	if s.Namespace != "" {
		name += s.Namespace + "-"
	}
	name = unsafeName.ReplaceAllString(name+s.Name, "_")
	if clusters > 1 {
		return filepath.Join(GitOpsDir, unsafeName.ReplaceAllString(cluster, "_"), name)
	}
	return filepath.Join(GitOpsDir, name)
}

// nameFiles sets the File of each kustomize source that has a patch.
func nameFiles(r *Result) {
	for ci := range r.Clusters {
		cl := &r.Clusters[ci]
		for si := range cl.Sources {
			s := &cl.Sources[si]
			if len(s.Images) > 0 && s.Error == "" {
				s.File = filepath.ToSlash(filepath.Join(sourceDir(cl.Cluster, len(r.Clusters), *s), gitops.KustomizationFile))
			}
		}
	}
}

// writeSources writes each kustomize source's Component and README.
func writeSources(dir string, r Result) error {
	for _, cl := range r.Clusters {
		for _, s := range cl.Sources {
			if s.File == "" {
				continue
			}
			rel := filepath.Dir(filepath.FromSlash(s.File))
			comp, err := gitops.Component(appLabel(&s), s.Images)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Join(dir, rel), 0o755); err != nil {
				return err
			}
			if err := artifacts.WriteFile(filepath.Join(dir, rel, gitops.KustomizationFile), comp); err != nil {
				return err
			}
			if err := artifacts.WriteFile(filepath.Join(dir, rel, gitops.ReadmeFile), gitops.Readme(appLabel(&s), rel, s.Objects)); err != nil {
				return err
			}
		}
	}
	return nil
}

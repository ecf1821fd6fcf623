// Package gitops writes the cutover as a change to the source of truth of
// the objects Argo CD, Flux or Helm manage: kustomize images overrides per
// application (a kustomize Component, rendered and checked with
// kustomize's own API before it is written), and the Helm values that
// carry legacy images per release.
package gitops

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/switchresult"
	"github.com/regmigrate/regmigrate/steps/workloads"
)

// KustomizeImage is one images: entry.
type KustomizeImage = switchresult.KustomizeImage

// Component files.
const (
	KustomizationFile = "kustomization.yaml"
	ReadmeFile        = "README.md"
)

// Images works out the kustomize images overrides that turn every From
// of changes into its To: newName always; newTag when the target's tag
// differs; digest when the workload pinned one. One entry per image name:
// two containers naming the same image differently (a tag here, another
// tag there) are an error, since kustomize overrides by name.
func Images(changes []switchresult.Change) ([]KustomizeImage, error) {
	byName := map[string]KustomizeImage{}
	var errs []error
	for _, c := range changes {
		from, err := imageref.Parse(c.From)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.From, err))
			continue
		}
		to, err := imageref.Parse(c.To)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.To, err))
			continue
		}
		im := KustomizeImage{Name: from.Repo(), NewName: to.Repo()}
		if from.Digest != "" {
			im.Digest = to.Digest // pinned in the workload: pinned in the source
		}
		if to.Tag != "" && to.Tag != from.Tag {
			im.NewTag = to.Tag
		}
		if prev, ok := byName[im.Name]; ok && prev != im {
			if prev.NewName == im.NewName && prev.NewTag == "" && im.NewTag == "" {
				// Same name, one pinned and one by tag: override the name
				// only, each keeps its tag or digest.
				im.Digest = ""
			} else {
				errs = append(errs, fmt.Errorf("%s is used as %s and as %s: kustomize overrides an image by name; give the containers one reference", im.Name, describe(prev), describe(im)))
				continue
			}
		}
		byName[im.Name] = im
	}
	out := make([]KustomizeImage, 0, len(byName))
	for _, im := range byName {
		out = append(out, im)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errors.Join(errs...)
}

func describe(im KustomizeImage) string {
	s := im.NewName
	if im.NewTag != "" {
		s += ":" + im.NewTag
	}
	if im.Digest != "" {
		s += "@" + im.Digest
	}
	return s
}

// Component renders the kustomize Component carrying the overrides: a
// kustomization.yaml to commit beside the application's and list under
// its components:.
func Component(app string, images []KustomizeImage) ([]byte, error) {
	doc := map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1alpha1",
		"kind":       "Component",
		"images":     images,
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	head := "# Written by regmigrate switch-mode for " + app + ": the legacy registry's images\n" +
		"# replaced by the target's. Commit this folder beside the application's\n" +
		"# kustomization.yaml and add it under components: (see README.md).\n"
	return append([]byte(head), b...), nil
}

// Readme says how to use the component.
func Readme(app, dir string, objects []string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: the registry cutover in Git\n\n", app)
	b.WriteString("regmigrate switch-mode left these objects alone, because their manager would put the legacy images back:\n\n")
	for _, o := range objects {
		fmt.Fprintf(&b, "- %s\n", o)
	}
	fmt.Fprintf(&b, "\nCommit `%s/` into the application's repository (say, as `regmigrate/` beside its\n`kustomization.yaml`), and list it there:\n\n", path.Base(dir))
	b.WriteString("```yaml\ncomponents:\n  - regmigrate\n```\n\n")
	b.WriteString("`kustomize build` then renders the target registry's images (digests kept where the\nworkloads pinned one); the next sync deploys them.\n")
	return []byte(b.String())
}

// Check renders objects (the live manifests of one application) with the
// component through kustomize (krusty, in memory) and fails unless every
// container then names the image want gives it (KIND/NAMESPACE/NAME →
// container ID → image). It proves the patch does what it says before a
// person commits it.
func Check(component []byte, objects []*unstructured.Unstructured, want map[string]map[string]string) error {
	fs := filesys.MakeFsInMemory()
	var resources []string
	for i, obj := range objects {
		clean := map[string]any{
			"apiVersion": obj.GetAPIVersion(),
			"kind":       obj.GetKind(),
			"metadata":   map[string]any{"name": obj.GetName(), "namespace": obj.GetNamespace()},
			"spec":       obj.Object["spec"],
		}
		b, err := yaml.Marshal(clean)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("r%d.yaml", i)
		if err := fs.WriteFile("/app/"+name, b); err != nil {
			return err
		}
		resources = append(resources, name)
	}
	k, _ := yaml.Marshal(map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
		"resources": resources, "components": []string{"../regmigrate"},
	})
	if err := fs.WriteFile("/app/"+KustomizationFile, k); err != nil {
		return err
	}
	if err := fs.WriteFile("/regmigrate/"+KustomizationFile, component); err != nil {
		return err
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/app")
	if err != nil {
		return fmt.Errorf("kustomize build with the component: %w", err)
	}
	got := map[string]map[string]string{}
	for _, r := range m.Resources() {
		// Through JSON: kustomize's maps hold ints, which unstructured's
		// helpers refuse.
		b, err := r.MarshalJSON()
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(b); err != nil {
			return err
		}
		kind, ok := workloads.KindOf(u.GetKind())
		if !ok {
			continue
		}
		spec, ok, _ := unstructured.NestedMap(u.Object, kind.Spec...)
		if !ok {
			continue
		}
		imgs := map[string]string{}
		for _, c := range workloads.Containers(spec) {
			imgs[c.ID] = c.Image
		}
		got[kind.Name+"/"+u.GetNamespace()+"/"+u.GetName()] = imgs
	}
	var errs []error
	for obj, cs := range want {
		for id, img := range cs {
			if g := got[obj][id]; g != img {
				errs = append(errs, fmt.Errorf("%s %s renders %q, want %q", obj, id, g, img))
			}
		}
	}
	return errors.Join(errs...)
}

package manifests_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/regmigrate/regmigrate/manifests"
	"github.com/regmigrate/regmigrate/workflows"
)

const (
	namespace       = "regmigrate"
	backfillRole    = "regmigrate-backfill"
	executorRole    = "regmigrate-executor"
	switchModeRole  = "regmigrate-switch-mode"
	artifactRepos   = "artifact-repositories"
	defaultRepoAnno = "workflows.argoproj.io/default-artifact-repository"
)

// obj is one rendered object: its identity and its YAML.
type obj struct {
	apiVersion, kind, name, namespace string
	yaml                              []byte
}

func (o obj) id() string { return o.kind + "/" + o.name }

// render builds a kustomization directory (relative to this package) from
// disk, as `kubectl apply -k` would.
func render(t *testing.T, dir string) []obj {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []obj
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		objs = append(objs, obj{r.GetApiVersion(), r.GetKind(), r.GetName(), r.GetNamespace(), y})
	}
	return objs
}

func decode[T any](t *testing.T, o obj) *T {
	t.Helper()
	v := new(T)
	if err := yaml.UnmarshalStrict(o.yaml, v); err != nil {
		t.Fatalf("%s: %v\n%s", o.id(), err, o.yaml)
	}
	return v
}

func find(t *testing.T, objs []obj, kind, name string) obj {
	t.Helper()
	for _, o := range objs {
		if o.kind == kind && o.name == name {
			return o
		}
	}
	t.Fatalf("no %s/%s rendered", kind, name)
	return obj{}
}

// ruleKey is one (API group, resource) pair a role grants verbs on.
type ruleKey struct{ group, resource string }

func flatten(t *testing.T, what string, rules []rbacv1.PolicyRule) map[ruleKey][]string {
	t.Helper()
	got := map[ruleKey][]string{}
	for i, r := range rules {
		all := slices.Concat(r.APIGroups, r.Resources, r.Verbs, r.ResourceNames, r.NonResourceURLs)
		for _, s := range all {
			if strings.Contains(s, "*") {
				t.Errorf("%s rule %d: wildcard %q", what, i, s)
			}
		}
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("%s rule %d: nonResourceURLs %v", what, i, r.NonResourceURLs)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				k := ruleKey{g, res}
				got[k] = append(got[k], r.Verbs...)
			}
		}
	}
	for k := range got {
		sort.Strings(got[k])
		got[k] = slices.Compact(got[k])
	}
	return got
}

func checkRules(t *testing.T, what string, rules []rbacv1.PolicyRule, want map[ruleKey][]string) {
	t.Helper()
	got := flatten(t, what, rules)
	for k, v := range want {
		w := slices.Sorted(slices.Values(v))
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: %s %s: verbs %v, want exactly %v", what, k.group, k.resource, got[k], w)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected grant %v on %s %s", what, v, k.group, k.resource)
		}
	}
}

func TestRender(t *testing.T) {
	// What the generated Workflow expects of the cluster, read from the
	// generator rather than restated here.
	wf, err := workflows.Workflow(workflows.Plan{
		Namespace: namespace, Source: "legacy.example:5000", Target: "registry.example", ImageTag: "v1.2.3",
		ArtifactRepositoryRef: &workflows.ArtifactRepositoryRef{ConfigMap: artifactRepos, Key: "audit"},
	})
	if err != nil {
		t.Fatal(err)
	}
	sa := wf.Spec.ServiceAccountName
	if sa != workflows.DefaultServiceAccount {
		t.Fatalf("generated Workflow runs as %q, want the default %q", sa, workflows.DefaultServiceAccount)
	}

	for _, tc := range []struct{ dir, group string }{
		{"base", "image.openshift.io"}, // the placeholder
		{"overlays/acp", "image.alauda.io"},
		{"overlays/openshift", "image.openshift.io"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			objs := render(t, tc.dir)

			// Exactly these objects, namespaced ones in the namespace.
			want := []string{
				"ClusterRole/" + backfillRole, "ClusterRoleBinding/" + backfillRole,
				"ClusterRole/" + switchModeRole, "ClusterRoleBinding/" + switchModeRole,
				"ConfigMap/" + artifactRepos, "Namespace/" + namespace,
				"Role/" + executorRole, "RoleBinding/" + executorRole, "ServiceAccount/" + sa,
				"WorkflowTemplate/regmigrate-example", "CronWorkflow/" + workflows.DeltaCronName("regmigrate-example"),
			}
			// The CronWorkflow runs the template: it lints against it.
			var templates []*wfv1.WorkflowTemplate
			for _, o := range objs {
				if o.kind == "WorkflowTemplate" {
					templates = append(templates, decode[wfv1.WorkflowTemplate](t, o))
				}
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.id())
				clusterScoped := o.kind == "Namespace" || strings.HasPrefix(o.kind, "Cluster")
				if !clusterScoped && o.namespace != namespace {
					t.Errorf("%s: namespace %q, want %q", o.id(), o.namespace, namespace)
				}
				if clusterScoped && o.namespace != "" {
					t.Errorf("%s: cluster-scoped with namespace %q", o.id(), o.namespace)
				}
				if o.kind == "Secret" {
					s := decode[corev1.Secret](t, o)
					if len(s.Data) > 0 || len(s.StringData) > 0 {
						t.Errorf("%s: a Secret with values", o.id())
					}
				}
				if o.apiVersion == "argoproj.io/v1alpha1" {
					if _, err := workflows.Lint(tc.dir+"/"+o.id(), o.yaml, templates...); err != nil {
						t.Error(err)
					}
				}
			}
			sort.Strings(got)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("rendered %v\nwant       %v", got, want)
			}

			// The Image API access of the backfill step and of verify's
			// ImageStreamTag check (get imagestreamtags and images), in
			// this platform's group.
			cr := decode[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", backfillRole))
			for i, r := range cr.Rules {
				if !slices.Equal(r.APIGroups, []string{tc.group}) {
					t.Errorf("ClusterRole rule %d: apiGroups %v, want [%s]", i, r.APIGroups, tc.group)
				}
			}
			checkRules(t, "ClusterRole "+backfillRole, cr.Rules, map[ruleKey][]string{
				{tc.group, "imagestreams"}:        {"get", "create"},
				{tc.group, "imagestreamtags"}:     {"get"},
				{tc.group, "images"}:              {"get"},
				{tc.group, "imagestreammappings"}: {"create"},
			})

			// switch-mode: update only the four kinds it rewrites, list the
			// ones it reports, and its own record.
			sm := decode[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", switchModeRole))
			checkRules(t, "ClusterRole "+switchModeRole, sm.Rules, map[ruleKey][]string{
				{"apps", "deployments"}:  {"get", "list", "update"},
				{"apps", "statefulsets"}: {"get", "list", "update"},
				{"apps", "daemonsets"}:   {"get", "list", "update"},
				{"batch", "cronjobs"}:    {"get", "list", "update"},
				{"apps", "replicasets"}:  {"list"},
				{"batch", "jobs"}:        {"list"},
				{"", "pods"}:             {"list"},
				{"", "configmaps"}:       {"get", "update", "create"},
				// Helm's release Secrets, the gate's pull secrets and
				// ImageStreams: read, never written.
				{"", "secrets"}:                        {"list"},
				{"image.openshift.io", "imagestreams"}: {"list"},
				{"image.alauda.io", "imagestreams"}:    {"list"},
			})
			smb := decode[rbacv1.ClusterRoleBinding](t, find(t, objs, "ClusterRoleBinding", switchModeRole))
			if smb.RoleRef.Name != switchModeRole || !slices.Equal(smb.Subjects, []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: namespace}}) {
				t.Errorf("ClusterRoleBinding %s: %+v %+v", switchModeRole, smb.RoleRef, smb.Subjects)
			}

			// Argo's emissary executor, and the resource steps that read
			// the delta CronWorkflow (delta, cutover, rollback), suspend
			// it (cutover) and resume it (rollback): in the workflow
			// namespace only.
			role := decode[rbacv1.Role](t, find(t, objs, "Role", executorRole))
			checkRules(t, "Role "+executorRole, role.Rules, map[ruleKey][]string{
				{"argoproj.io", "workflowtaskresults"}: {"create", "patch"},
				{"argoproj.io", "cronworkflows"}:       {"get", "patch"},
			})

			// Both bindings grant their role to the Workflow's ServiceAccount.
			saSubject := rbacv1.Subject{Kind: "ServiceAccount", Name: sa, Namespace: namespace}
			crb := decode[rbacv1.ClusterRoleBinding](t, find(t, objs, "ClusterRoleBinding", backfillRole))
			if want := (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: backfillRole}); crb.RoleRef != want {
				t.Errorf("ClusterRoleBinding roleRef %+v, want %+v", crb.RoleRef, want)
			}
			if !slices.Equal(crb.Subjects, []rbacv1.Subject{saSubject}) {
				t.Errorf("ClusterRoleBinding subjects %+v, want [%+v]", crb.Subjects, saSubject)
			}
			rb := decode[rbacv1.RoleBinding](t, find(t, objs, "RoleBinding", executorRole))
			if want := (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: executorRole}); rb.RoleRef != want {
				t.Errorf("RoleBinding roleRef %+v, want %+v", rb.RoleRef, want)
			}
			if !slices.Equal(rb.Subjects, []rbacv1.Subject{saSubject}) {
				t.Errorf("RoleBinding subjects %+v, want [%+v]", rb.Subjects, saSubject)
			}

			// The artifact repository the Workflow names: the default key
			// exists, is an S3 repository Argo can read, and references its
			// credentials by Secret name only.
			cm := decode[corev1.ConfigMap](t, find(t, objs, "ConfigMap", wf.Spec.ArtifactRepositoryRef.ConfigMap))
			def := cm.Annotations[defaultRepoAnno]
			if def == "" {
				t.Fatalf("ConfigMap %s: no %s annotation", cm.Name, defaultRepoAnno)
			}
			for _, key := range []string{def, wf.Spec.ArtifactRepositoryRef.Key} {
				data, ok := cm.Data[key]
				if !ok {
					t.Errorf("ConfigMap %s: no key %q", cm.Name, key)
					continue
				}
				var repo wfv1.ArtifactRepository
				if err := yaml.UnmarshalStrict([]byte(data), &repo); err != nil {
					t.Fatalf("ConfigMap %s key %s: %v", cm.Name, key, err)
				}
				s3 := repo.S3
				if s3 == nil || s3.Bucket == "" || s3.Endpoint == "" {
					t.Fatalf("ConfigMap %s key %s: want an S3 repository with bucket and endpoint, got %+v", cm.Name, key, repo)
				}
				for _, sel := range []*corev1.SecretKeySelector{s3.AccessKeySecret, s3.SecretKeySecret} {
					if sel == nil || sel.Name == "" || sel.Key == "" {
						t.Errorf("ConfigMap %s key %s: S3 credentials must be a Secret reference, got %+v", cm.Name, key, sel)
					}
				}
			}
		})
	}
}

// TestEmbedded checks that manifests.FS holds exactly the tree on disk.
func TestEmbedded(t *testing.T) {
	embedded := map[string][]byte{}
	err := fs.WalkDir(manifests.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(manifests.FS, p)
		embedded[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, root := range []string{"base", "overlays"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			n++
			disk, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if b, ok := embedded[filepath.ToSlash(p)]; !ok || !bytes.Equal(b, disk) {
				t.Errorf("%s: not embedded as on disk", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != len(embedded) {
		t.Errorf("%d files on disk, %d embedded", n, len(embedded))
	}
}

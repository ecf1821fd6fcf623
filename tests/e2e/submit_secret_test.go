package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
)

// The source registry's password, given to submit only through the
// environment (${LEGACY_PASSWORD} in auth.json); it must reach the Secret
// and nothing else.
const legacyPassword = "Pa55-from-the-submitters-env"

// credentialsSpec writes a migration spec whose scope is two image lists
// on this machine and whose credentials are an image-migrator auth.json
// (the source's password from the environment) and a docker config.json
// (the target's).
func credentialsSpec(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"lists/team-a.txt": "team-a/web:v1\nteam-a/api\n",
		"lists/team-b.txt": "NAME        TAG   DIGEST\nteam-b/db   v2    <none>\n",
		"auth.json":        `{"legacy.example:5000": {"username": "migrator", "password": "${LEGACY_PASSWORD}", "insecure": true}}`,
		"config.json":      `{"auths": {"new.example:5000": {"auth": "` + base64.StdEncoding.EncodeToString([]byte("writer:target-pass")) + `"}}}`,
		"migration.yaml": `apiVersion: regmigrate.io/v1alpha1
kind: Migration
metadata: {name: creds}
source: {registry: "legacy.example:5000"}
target: {registry: "new.example:5000"}
images:
  lists: [lists/team-a.txt, lists/team-b.txt]
auth:
  imageMigratorAuth: auth.json
  authFile: config.json
argo:
  imageTag: v1.2.3
`,
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "migration.yaml")
}

var (
	secretsGVR   = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	workflowsGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"}
	cronGVR      = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "cronworkflows"}
)

// migrationSecrets lists the Secrets submit created for the migration.
func migrationSecrets(t *testing.T, dyn dynamic.Interface) []unstructured.Unstructured {
	t.Helper()
	l, err := dyn.Resource(secretsGVR).Namespace("default").List(context.Background(), metav1.ListOptions{LabelSelector: "regmigrate.io/migration=creds"})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// TestSubmitCreatesTheCredentialsSecret: `submit --create-secret` turns the
// spec's auth.json (${ENV} resolved from the submitter's environment) and
// config.json into one kubernetes.io/dockerconfigjson Secret in the
// Workflow's namespace, names it in the Workflow, and makes the Workflow
// (or CronWorkflow) its owner; the image lists travel inside the object.
// The password appears in the Secret only: not in the object, stdout or
// stderr. A Workflow that cannot be created leaves no Secret behind. All
// through a real kube-apiserver.
func TestSubmitCreatesTheCredentialsSecret(t *testing.T) {
	t.Parallel()
	cluster := kubeapi.Start(t)
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	spec := credentialsSpec(t)
	env := map[string]string{"LEGACY_PASSWORD": legacyPassword}
	submit := func(extra ...string) (int, string, string) {
		return runCLI(t, env, append([]string{"submit", "-f", spec, "--argo-kubeconfig", cluster.AdminKubeconfig, "--namespace-for-workflow", "default"}, extra...)...)
	}
	leaks := func(what, s string) {
		t.Helper()
		for _, secret := range []string{legacyPassword, base64.StdEncoding.EncodeToString([]byte("migrator:" + legacyPassword)), "target-pass"} {
			if strings.Contains(s, secret) {
				t.Errorf("%s carries a credential", what)
			}
		}
	}

	// Only the CronWorkflow CRD at first: creating the Workflow fails after
	// its Secret was created, and the Secret is deleted again.
	installArgoCRDs(t, cluster, "cronworkflows")
	code, stdout, stderr := submit("--create-secret")
	if code == contract.ExitOK || !strings.Contains(stderr, "creating the workflow in namespace default") {
		t.Fatalf("submit without the Workflow CRD: exit %d, stderr %q; want a failure creating the workflow", code, stderr)
	}
	leaks("stdout and stderr", stdout+stderr)
	if s := migrationSecrets(t, dyn); len(s) != 0 {
		t.Errorf("a failed submit left %d Secrets", len(s))
	}

	installArgoCRDs(t, cluster, "workflows")
	for _, tc := range []struct {
		name  string
		args  []string
		owner schema.GroupVersionResource
		kind  string
	}{
		{"workflow", nil, workflowsGVR, "Workflow"},
		{"cron", []string{"--cron", "0 */6 * * *"}, cronGVR, "CronWorkflow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]bool{}
			for _, s := range migrationSecrets(t, dyn) {
				before[s.GetName()] = true
			}
			code, stdout, stderr := submit(append([]string{"--create-secret"}, tc.args...)...)
			if code != contract.ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			leaks("stdout and stderr", stdout+stderr)
			var secret *unstructured.Unstructured
			for _, s := range migrationSecrets(t, dyn) {
				if !before[s.GetName()] {
					secret = &s
				}
			}
			if secret == nil {
				t.Fatal("no new Secret labelled regmigrate.io/migration=creds")
			}
			if !strings.Contains(stdout, "secret/"+secret.GetName()+" created in namespace default with credentials for legacy.example:5000, new.example:5000") {
				t.Errorf("stdout %q: want the Secret's name and the registries it covers", stdout)
			}
			if typ, _, _ := unstructured.NestedString(secret.Object, "type"); typ != "kubernetes.io/dockerconfigjson" {
				t.Errorf("Secret type %q", typ)
			}
			data, _, _ := unstructured.NestedString(secret.Object, "data", ".dockerconfigjson")
			raw, err := base64.StdEncoding.DecodeString(data)
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Auths map[string]struct{ Auth string }
			}
			if err := json.Unmarshal(raw, &cfg); err != nil {
				t.Fatalf("the Secret's .dockerconfigjson is no docker config: %v", err)
			}
			for host, userPass := range map[string]string{"legacy.example:5000": "migrator:" + legacyPassword, "new.example:5000": "writer:target-pass"} {
				if got, _ := base64.StdEncoding.DecodeString(cfg.Auths[host].Auth); string(got) != userPass {
					t.Errorf("the Secret's credentials for %s are not the files' (with ${LEGACY_PASSWORD} resolved)", host)
				}
			}

			// The created object: it names the Secret, owns it, and carries
			// the lists but no credential.
			objs, err := dyn.Resource(tc.owner).Namespace("default").List(context.Background(), metav1.ListOptions{LabelSelector: "regmigrate.io/migration=creds"})
			if err != nil || len(objs.Items) != 1 {
				t.Fatalf("%s objects: %d (%v), want 1", tc.kind, len(objs.Items), err)
			}
			obj := objs.Items[0]
			refs := secret.GetOwnerReferences()
			if len(refs) != 1 || refs[0].Kind != tc.kind || refs[0].Name != obj.GetName() || refs[0].UID != obj.GetUID() || refs[0].APIVersion != "argoproj.io/v1alpha1" {
				t.Errorf("the Secret's owners %+v, want the %s %s (uid %s)", refs, tc.kind, obj.GetName(), obj.GetUID())
			}
			b, _ := json.Marshal(obj.Object)
			leaks("the "+tc.kind, string(b))
			var spec wfv1.WorkflowSpec
			var path []string
			if tc.kind == "CronWorkflow" {
				path = []string{"spec", "workflowSpec"}
			} else {
				path = []string{"spec"}
			}
			m, _, _ := unstructured.NestedMap(obj.Object, path...)
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &spec); err != nil {
				t.Fatal(err)
			}
			var mounted bool
			for _, v := range spec.Volumes {
				mounted = mounted || v.Secret != nil && v.Secret.SecretName == secret.GetName()
			}
			if !mounted {
				t.Errorf("the %s does not mount Secret %s: %+v", tc.kind, secret.GetName(), spec.Volumes)
			}
			inputs := map[string]string{}
			for _, tmpl := range spec.Templates {
				if tmpl.Name == contract.StepExport {
					for _, a := range tmpl.Inputs.Artifacts {
						if a.Raw != nil {
							inputs[filepath.Base(a.Path)] = a.Raw.Data
						}
					}
				}
			}
			if inputs["0-team-a.txt"] != "team-a/web:v1\nteam-a/api\n" || !strings.Contains(inputs["1-team-b.txt"], "team-b/db   v2") {
				t.Errorf("export's inline inputs %q: want both lists as written", inputs)
			}
		})
	}
}

// TestSubmitCredentialsErrors: a spec that names credentials needs
// --create-secret or --secret, not both; --create-secret needs files and
// their variables. Each is exit 2 with what to do, and nothing is created.
func TestSubmitCredentialsErrors(t *testing.T) {
	t.Parallel()
	cluster := kubeapi.Start(t)
	installArgoCRDs(t, cluster, "workflows")
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	spec := credentialsSpec(t)
	base := []string{"submit", "--argo-kubeconfig", cluster.AdminKubeconfig, "--namespace-for-workflow", "default"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"neither flag", map[string]string{"LEGACY_PASSWORD": legacyPassword}, []string{"-f", spec},
			[]string{"auth.authFile (", "auth.imageMigratorAuth (", "add --create-secret", "--secret NAME"}},
		{"both flags", map[string]string{"LEGACY_PASSWORD": legacyPassword}, []string{"-f", spec, "--create-secret", "--secret", "x"},
			[]string{"--secret and --create-secret: give one"}},
		{"variable not set", nil, []string{"-f", spec, "--create-secret"},
			[]string{"--create-secret", "LEGACY_PASSWORD", "empty or not set"}},
		{"no credential files", nil, []string{"--from", "a.example", "--to", "b.example", "--image-tag", "v1", "--create-secret"},
			[]string{"--create-secret builds the Secret from the spec's credential files, and none is named"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.env, append(append([]string(nil), base...), tc.args...)...)
			if code != contract.ExitUsage || stdout != "" {
				t.Errorf("exit %d, stdout %q: want %d and nothing printed", code, stdout, contract.ExitUsage)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			if strings.Contains(stderr, legacyPassword) {
				t.Error("the password reached stderr")
			}
		})
	}
	if s := migrationSecrets(t, dyn); len(s) != 0 {
		t.Errorf("%d Secrets created", len(s))
	}
	if wfs, err := dyn.Resource(workflowsGVR).Namespace("default").List(context.Background(), metav1.ListOptions{}); err != nil || len(wfs.Items) != 0 {
		t.Errorf("%d Workflows created (%v)", len(wfs.Items), err)
	}
}

package workflows_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/stepcli/exportcmd"
	"github.com/regmigrate/regmigrate/workflows"
)

// exportTemplate returns the export step's template of an object.
func exportTemplate(t *testing.T, obj any) wfv1.Template {
	t.Helper()
	var ts []wfv1.Template
	switch o := obj.(type) {
	case *wfv1.Workflow:
		ts = o.Spec.Templates
	case *wfv1.CronWorkflow:
		ts = o.Spec.WorkflowSpec.Templates
	case *wfv1.WorkflowTemplate:
		ts = o.Spec.Templates
	}
	for _, tmpl := range ts {
		if tmpl.Name == contract.StepExport {
			return tmpl
		}
	}
	t.Fatalf("%T has no export template", obj)
	return wfv1.Template{}
}

// TestInputsTravelInsideTheWorkflow: the lists and rules of the
// generating machine are raw input artifacts of the export step, in every
// kind of object that exports, at the paths export's own parser reads from
// its args; nothing refers to a file someone would have to upload.
func TestInputsTravelInsideTheWorkflow(t *testing.T) {
	p := plans()["lists"]
	want := map[string]string{} // pod path -> content
	for i, in := range append(append([]workflows.Input(nil), p.Scope.Lists...), *p.Scope.Rules) {
		want[fmt.Sprintf("%s/%d-%s", workflows.InputsDir, i, in.Name)] = in.Data
	}
	wf, err := workflows.Workflow(p)
	if err != nil {
		t.Fatal(err)
	}
	cron, err := workflows.CronWorkflow(p, "0 2 * * *")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := workflows.Template(p)
	if err != nil {
		t.Fatal(err)
	}
	cut, err := workflows.Cutover(p)
	if err != nil {
		t.Fatal(err)
	}
	for kind, obj := range map[string]any{"workflow": wf, "cron": cron, "template": tmpl, "cutover": cut} {
		if err := workflows.Validate(obj); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		export := exportTemplate(t, obj)
		got := map[string]string{}
		for _, a := range export.Inputs.Artifacts {
			if a.Raw == nil || a.S3 != nil {
				t.Errorf("%s: input %s is not inline: %+v", kind, a.Name, a.ArtifactLocation)
				continue
			}
			got[a.Path] = a.Raw.Data
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: export's inputs %v, want %v", kind, got, want)
		}
		f, err := exportcmd.Parse(substitute(obj)(export.Container.Args), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range append(append([]string(nil), f.Images...), f.Rules) {
			if _, ok := want[file]; !ok {
				t.Errorf("%s: export reads %s, which no input artifact writes", kind, file)
			}
		}
		if len(f.Images) != 2 || f.Rules == "" {
			t.Errorf("%s: export --images %v --rules %q, want two lists and the rules", kind, f.Images, f.Rules)
		}
	}
}

// TestInputsAreBounded: at MaxInlineInputs (counted JSON-encoded, as Argo
// stores them) the export step's template, as the controller hands it to
// the pod in ARGO_TEMPLATE with the artifact repository's location, stays
// under the 128 KiB above which the controller needs a ConfigMap its stock
// RBAC cannot create; one byte more is refused with what to do.
func TestInputsAreBounded(t *testing.T) {
	// '"' and '<' take 2 and 6 bytes encoded: the bound counts them so.
	line := `team-a/app:v1 "quoted" <tag>` + "\n"
	encoded := func(s string) int { b, _ := json.Marshal(s); return len(b) - 2 }
	data := strings.Repeat(line, workflows.MaxInlineInputs/encoded(line))
	pad := workflows.MaxInlineInputs - encoded(data)
	data += strings.Repeat("x", pad)
	if encoded(data) != workflows.MaxInlineInputs {
		t.Fatalf("test data is %d bytes encoded", encoded(data))
	}
	p := plans()["lists"]
	p.Scope.Lists = []workflows.Input{{Name: "a.txt", Data: data[:len(data)/2]}, {Name: "b.txt", Data: data[len(data)/2:]}}
	p.Scope.Rules = nil
	wf, err := workflows.Workflow(p)
	if err != nil {
		t.Fatalf("inputs at the bound: %v", err)
	}
	if err := workflows.Validate(wf); err != nil {
		t.Fatal(err)
	}
	// What the controller puts in ARGO_TEMPLATE: the template with its
	// input artifacts (parameters cleared) and the archive location.
	export := exportTemplate(t, wf)
	tmpl := export.DeepCopy()
	tmpl.Inputs = wfv1.Inputs{Artifacts: tmpl.Inputs.Artifacts}
	repo := wfv1.ArtifactRepository{S3: &wfv1.S3ArtifactRepository{
		S3Bucket: wfv1.S3Bucket{
			Bucket: "regmigrate-audit-bucket-with-a-long-name", Endpoint: "s3.eu-central-1.amazonaws.com", Region: "eu-central-1",
			AccessKeySecret: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "regmigrate-artifacts-s3"}, Key: "accessKey"},
			SecretKeySecret: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "regmigrate-artifacts-s3"}, Key: "secretKey"},
		},
		KeyFormat: "regmigrate/{{workflow.namespace}}/{{workflow.name}}/{{pod.name}}",
	}}
	tmpl.ArchiveLocation = repo.ToArtifactLocation()
	b, err := json.Marshal(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	const argoMaxEnvVarLen = 131072 // workflow/controller/workflowpod.go maxEnvVarLen
	t.Logf("export template at the bound: %d bytes in ARGO_TEMPLATE (limit %d)", len(b), argoMaxEnvVarLen)
	if len(b) > argoMaxEnvVarLen-8<<10 {
		t.Errorf("export template at the bound is %d bytes: want 8 KiB or more under %d", len(b), argoMaxEnvVarLen)
	}

	p.Scope.Lists[1].Data += "y"
	_, err = workflows.Workflow(p)
	if !errors.Is(err, workflows.ErrInputsTooLarge) {
		t.Fatalf("one byte over the bound: %v, want ErrInputsTooLarge", err)
	}
	for _, w := range []string{"a.txt 50.0 KiB", "b.txt 50.0 KiB", "at most 100.0 KiB", "ns/repo copies every tag", "split the migration", "catalog"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

func TestInputsWithArgoExpressionsAreRefused(t *testing.T) {
	p := plans()["lists"]
	p.Scope.Lists = []workflows.Input{{Name: "images.txt", Data: "team-a/app:v1\n# {{workflow.name}}\n"}}
	_, err := workflows.Workflow(p)
	if err == nil || !strings.Contains(err.Error(), "images.txt, line 2") {
		t.Errorf("a list holding {{: %v, want an error naming the file and line", err)
	}
}

// TestInputPathsNeedNoQuoting: a file name with spaces or a path in it
// becomes a plain name in the pod; two files of one name stay apart.
func TestInputPathsNeedNoQuoting(t *testing.T) {
	p := plans()["lists"]
	p.Scope.Lists = []workflows.Input{{Name: "my list (1).txt", Data: "a/b:c\n"}, {Name: "..hidden", Data: "a/b:d\n"}, {Name: "my list (1).txt", Data: "a/b:e\n"}}
	wf, err := workflows.Workflow(p)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, a := range exportTemplate(t, wf).Inputs.Artifacts {
		paths = append(paths, path.Base(a.Path))
	}
	if got := strings.Join(paths, " "); got != "0-my_list__1_.txt 1-hidden 2-my_list__1_.txt 3-images.json" {
		t.Errorf("input paths %s", got)
	}
}

// TestArtifactsTakeTheRepositorysLocation: every artifact that is not
// inline names a key and nothing else, and Argo's executor (its own
// Relocate, as newDriverArt calls it) turns it into a location of whatever
// kind the artifact repository is, S3, MinIO, GCS or Azure, with that key.
func TestArtifactsTakeTheRepositorysLocation(t *testing.T) {
	repos := map[string]wfv1.ArtifactRepository{
		"s3":    {S3: &wfv1.S3ArtifactRepository{S3Bucket: wfv1.S3Bucket{Bucket: "audit", Endpoint: "s3.amazonaws.com"}, KeyFormat: "{{workflow.name}}/{{pod.name}}"}},
		"minio": {S3: &wfv1.S3ArtifactRepository{S3Bucket: wfv1.S3Bucket{Bucket: "audit", Endpoint: "minio.minio:9000", Insecure: ptr(true)}}},
		"gcs":   {GCS: &wfv1.GCSArtifactRepository{GCSBucket: wfv1.GCSBucket{Bucket: "audit"}, KeyFormat: "runs/{{workflow.name}}"}},
		"azure": {Azure: &wfv1.AzureArtifactRepository{AzureBlobContainer: wfv1.AzureBlobContainer{Endpoint: "https://acct.blob.core.windows.net", Container: "audit"}}},
	}
	n := 0
	for name, obj := range objects(t) {
		for _, tmpl := range templates(obj) {
			for _, a := range append(append(wfv1.Artifacts(nil), tmpl.Inputs.Artifacts...), tmpl.Outputs.Artifacts...) {
				if a.Raw != nil {
					continue
				}
				n++
				key, err := a.GetKey()
				if err != nil || key == "" {
					t.Fatalf("%s/%s: artifact %s has no key: %v", name, tmpl.Name, a.Name, err)
				}
				if a.HasLocation() || a.S3 == nil || a.S3.S3Bucket != (wfv1.S3Bucket{}) {
					t.Errorf("%s/%s: artifact %s names more than a key: %+v", name, tmpl.Name, a.Name, a.ArtifactLocation)
				}
				for kind, repo := range repos {
					loc := a.ArtifactLocation.DeepCopy()
					if err := loc.Relocate(repo.ToArtifactLocation()); err != nil {
						t.Fatalf("%s: relocating %s onto %s: %v", name, a.Name, kind, err)
					}
					got, err := loc.GetKey()
					if err != nil || got != key || !loc.HasLocation() {
						t.Errorf("%s/%s onto %s: key %q (%v), location %+v; want key %q and the repository's location", name, a.Name, kind, got, err, loc, key)
					}
					if isS3 := loc.S3 != nil; isS3 != (repo.S3 != nil) || (repo.GCS != nil) != (loc.GCS != nil) || (repo.Azure != nil) != (loc.Azure != nil) {
						t.Errorf("%s/%s onto %s: location %+v is not of the repository's kind", name, a.Name, kind, loc)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no artifact checked")
	}
}

func ptr[T any](v T) *T { return &v }

// TestStepImageTagDefaultsOnlyToARelease: without a tag, a release build
// uses its own version and a development build is refused (no image was
// ever published with its tag). Sets contract.Version: not parallel.
func TestStepImageTagDefaultsOnlyToARelease(t *testing.T) {
	saved := contract.Version
	t.Cleanup(func() { contract.Version = saved })
	p := plans()["catalog"]
	p.ImageTag = ""
	for _, v := range []string{"dev", "0a1b2c3", "v1.2.3-4-g0a1b2c3-dirty"} {
		contract.Version = v
		if _, err := workflows.Workflow(p); !errors.Is(err, workflows.ErrNoImageTag) || !strings.Contains(err.Error(), v) {
			t.Errorf("version %q, no tag: %v, want ErrNoImageTag naming the version", v, err)
		}
	}
	contract.Version = "v1.2.3"
	wf, err := workflows.Workflow(p)
	if err != nil {
		t.Fatal(err)
	}
	if img := exportTemplate(t, wf).Container.Image; img != workflows.DefaultImagePrefix+"/export:v1.2.3" {
		t.Errorf("release build's default image %s", img)
	}
	p.ImageTag = "-bad:tag"
	if _, err := workflows.Workflow(p); err == nil || !strings.Contains(err.Error(), "-bad:tag") {
		t.Errorf("invalid tag: %v", err)
	}
}

// TestValidateIsSafeForConcurrentUse: Argo's validator keeps a global
// counter; Validate serializes it (the race detector checks, as in
// parallel tests that submit).
func TestValidateIsSafeForConcurrentUse(t *testing.T) {
	wf, err := workflows.Workflow(plans()["backfill"])
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- workflows.Validate(wf.DeepCopy()) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

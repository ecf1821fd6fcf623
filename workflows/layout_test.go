package workflows_test

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"

	"github.com/regmigrate/regmigrate/steps/stepcli/mirrorcmd"
	"github.com/regmigrate/regmigrate/workflows"
)

func mountAt(t *wfv1.Template, dir string) *corev1.VolumeMount {
	for i, m := range t.Container.VolumeMounts {
		if m.MountPath == dir {
			return &t.Container.VolumeMounts[i]
		}
	}
	return nil
}

// Phase one on a volume: the claim is mounted at the layout's directory
// where the layout is written (export creates it, every shard's mirror
// writes into it, then pack-layout) and
// read (verify-shard, read-only), nowhere else; each shard writes its own
// index part named by its id; pack-layout runs after the report, also
// when the report failed (an image failed), and verify reads every blob.
func TestShardsWriteOneLayoutOnTheVolume(t *testing.T) {
	wf, err := workflows.Workflow(plans()["layout"])
	if err != nil {
		t.Fatal(err)
	}
	var claim string
	for _, v := range wf.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claim != "regmigrate-export" {
		t.Errorf("the Workflow's volume claim is %q, want regmigrate-export", claim)
	}
	for name, want := range map[string]string{"mirror-shard": "rw", "verify-shard": "ro", "pack-layout": "rw", "export": "rw", "report": ""} {
		tmpl := templateNamed(wf, name)
		if tmpl == nil {
			t.Fatalf("no template %s", name)
		}
		m, got := mountAt(tmpl, "/export"), ""
		if m != nil {
			got = map[bool]string{true: "ro", false: "rw"}[m.ReadOnly]
			if m.SubPath != "site-a" {
				t.Errorf("%s mounts the claim's %q, want its subPath site-a", name, m.SubPath)
			}
		}
		if got != want {
			t.Errorf("%s mounts /export %q, want %q", name, got, want)
		}
	}
	mirror := templateNamed(wf, "mirror-shard")
	f, err := mirrorcmd.Parse(substitute(wf)(mirror.Container.Args), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if loc, err := f.Layout(); err != nil || loc.String() != "oci:/export" {
		t.Errorf("mirror-shard's layout %v (%v), want oci:/export", loc, err)
	}
	if !slices.Contains(mirror.Container.Args, "--layout-part={{inputs.parameters.shard}}") {
		t.Errorf("mirror-shard's args %q name no part of its own", mirror.Container.Args)
	}
	var pack *wfv1.DAGTask
	for i, task := range wf.Spec.Templates[0].DAG.Tasks {
		if task.Name == "pack-layout" {
			pack = &wf.Spec.Templates[0].DAG.Tasks[i]
		}
	}
	if pack == nil || pack.Depends != "report.Succeeded || report.Failed" {
		t.Errorf("the pack-layout task %+v, want one after the report, whether it passed or failed", pack)
	}
	if got := wf.Spec.Arguments.GetParameterByName(workflows.ParamVerifyMode); got == nil || got.Value.String() != "full" {
		t.Errorf("verify mode %v, want full (every blob on the volume read and hashed again)", got)
	}
}

// Phase two on a volume: export and mirror read the layout, read-only;
// nothing packs.
func TestShardsReadTheLayoutOnTheVolume(t *testing.T) {
	wf, err := workflows.Workflow(plans()["fromlayout"])
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"export": true, "mirror-shard": true, "verify-shard": false} {
		m := mountAt(templateNamed(wf, name), "/export")
		if (m != nil) != want || (m != nil && !m.ReadOnly) {
			t.Errorf("%s mounts /export: %+v, want a read-only mount: %v", name, m, want)
		}
	}
	if templateNamed(wf, "pack-layout") != nil {
		t.Error("a Workflow that reads a layout packs it")
	}
	if args := templateNamed(wf, "mirror-shard").Container.Args; slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--layout-part") }) {
		t.Errorf("a shard reading the layout writes a part: %q", args)
	}
}

// What a Workflow cannot do with a layout is refused, saying what to do.
func TestLayoutRefusals(t *testing.T) {
	base := plans()["layout"]
	for name, tc := range map[string]struct {
		edit func(*workflows.Plan)
		want string
		is   error
	}{
		"no volume":      {func(p *workflows.Plan) { p.Layout = nil }, "argo.layoutVolume: {claimName: NAME}", workflows.ErrNoLayoutVolume},
		"source, no vol": {func(p *workflows.Plan) { p.Layout, p.Source, p.Target = nil, "oci:/export", "new.example" }, "the source oci:/export", workflows.ErrNoLayoutVolume},
		"an archive":     {func(p *workflows.Plan) { p.Target = "oci-archive:/export/a.tar" }, "not oci-archive", nil},
		"relative":       {func(p *workflows.Plan) { p.Target = "oci:export" }, "an absolute, clean path", nil},
		"the work dir":   {func(p *workflows.Plan) { p.Target = "oci:/work/export" }, "the pods use /work", nil},
		"backfill":       {func(p *workflows.Plan) { p.Backfill = &workflows.Backfill{} }, "backfilled from the new registry, in phase two", nil},
		"no layout":      {func(p *workflows.Plan) { p.Target = "new.example" }, "neither the source nor the target is an oci:DIR", nil},
	} {
		p := base
		tc.edit(&p)
		_, err := workflows.Workflow(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}

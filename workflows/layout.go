package workflows

import (
	"errors"
	"fmt"
	"path"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/stepcli/packcmd"
)

// LayoutVolume is the PersistentVolumeClaim that holds an OCI image layout
// the migration writes (target oci:DIR: phase one of a disconnected move)
// or reads (source oci:DIR: phase two). The claim is mounted at DIR in the
// pods that touch the layout. Writing, every shard's mirror pod writes
// into it at once: blobs into the one blobs/ directory (each whole, by
// digest, renamed into place), index entries into the shard's own part
// (regmigrate/parts/<shard>.json); verify-shard reads the layout with its
// part; after the report, pack-layout merges the parts into index.json
// and carries the plan and report into regmigrate/export/, as
// `regmigrate run --to oci:DIR` does. Several nodes mount the claim at
// once when the shards land on several nodes: it needs ReadWriteMany (or
// ReadWriteOnce with every pod on one node).
type LayoutVolume struct {
	ClaimName string
	// SubPath inside the claim (empty: its root).
	SubPath string
}

// ErrNoLayoutVolume: the source or the target is an oci:DIR and the plan
// names no volume for it.
var ErrNoLayoutVolume = errors.New("an OCI layout in a Workflow needs a PersistentVolumeClaim to live on")

// ErrCutoverToLayout: a cutover switches the platform to the target, and
// a layout is no registry the platform could pull from.
var ErrCutoverToLayout = errors.New("the target is an OCI layout (phase one of a disconnected move), which the platform cannot pull from: " +
	"generate the cutover from phase two's spec (the layout as the source, the new registry as the target)")

const (
	tmplPack  = packcmd.Name // pack-layout
	volLayout = "layout"
)

// layoutSide is the layout of the plan, if a side is one: its location
// and whether the migration writes it (the target).
func (p Plan) layoutSide() (loc imageref.Location, write bool) {
	if l, err := imageref.ParseLocation(p.Target); err == nil && l.Transport != "" {
		return l, true
	}
	if l, err := imageref.ParseLocation(p.Source); err == nil && l.Transport != "" {
		return l, false
	}
	return imageref.Location{}, false
}

// writesLayout: the target is a layout on the plan's volume.
func (p Plan) writesLayout() bool {
	l, w := p.layoutSide()
	return w && l.Transport != ""
}

// readsLayout: the source is a layout on the plan's volume.
func (p Plan) readsLayout() bool {
	l, w := p.layoutSide()
	return !w && l.Transport != ""
}

// reserved are the pods' own paths, where a layout may not be mounted.
var reserved = []string{WorkDir, TmpDir, AuthDir, BinDir, "/etc", "/proc", "/sys", "/dev", "/var/run/argo"}

// checkLayout refuses a layout the Workflow cannot hold.
func (p Plan) checkLayout() error {
	loc, write := p.layoutSide()
	if loc.Transport == "" {
		if p.Layout != nil {
			return errors.New("plan: a layout volume is named, and neither the source nor the target is an oci:DIR: remove argo.layoutVolume, or give --to oci:DIR (or --from oci:DIR)")
		}
		return nil
	}
	side := "source"
	if write {
		side = "target"
	}
	if loc.Transport != imageref.TransportOCI {
		return fmt.Errorf("plan: the %s %s: a Workflow writes and reads an OCI image layout (oci:DIR) on a volume, not %s: "+
			"give oci:DIR, and make the archive from it where the volume is (`regmigrate run --from oci:DIR --to %s:FILE` is not a move; tar the directory, or run phase one locally with --to %s:FILE)",
			side, loc, loc.Transport, loc.Transport, loc.Transport)
	}
	if write && p.Backfill != nil {
		return fmt.Errorf("plan: the target %s is an OCI layout: the Image API is backfilled from the new registry, in phase two (the layout as the source): remove cluster from phase one's spec", loc)
	}
	if p.Layout == nil || p.Layout.ClaimName == "" {
		return fmt.Errorf("plan: the %s %s: %w: name one in the spec, argo.layoutVolume: {claimName: NAME} (mounted at %s in the pods that touch the layout), "+
			"or run the disconnected move with `regmigrate run` where the media is (README: Disconnected / air gap)", side, loc, ErrNoLayoutVolume, loc.Path)
	}
	dir := loc.Path
	if !path.IsAbs(dir) || path.Clean(dir) != dir || dir == "/" {
		return fmt.Errorf("plan: the %s %s: in a Workflow the layout's directory is where its volume is mounted in the pods: give an absolute, clean path such as oci:/export", side, loc)
	}
	for _, r := range reserved {
		if dir == r || strings.HasPrefix(dir, r+"/") || strings.HasPrefix(r, dir+"/") {
			return fmt.Errorf("plan: the %s %s: the pods use %s for themselves: mount the layout elsewhere, such as oci:/export", side, loc, r)
		}
	}
	if s := p.Layout.SubPath; s != "" && (path.IsAbs(s) || strings.HasPrefix(path.Clean(s), "..")) {
		return fmt.Errorf("plan: layout volume subPath %q: want a relative path inside the claim", s)
	}
	return nil
}

// layoutFlags: the flag that gives a step the layout (and, for a shard
// writing it, its own index part).
func (p Plan) layoutFlags(f *flags, part bool) {
	loc, write := p.layoutSide()
	if loc.Transport == "" {
		return
	}
	f.str("layout", loc.String())
	if part && write {
		f.str("layout-part", "{{inputs.parameters."+paramShard+"}}")
	}
}

// layoutMount mounts the layout's claim at its directory.
func (p Plan) layoutMount(readOnly bool) corev1.VolumeMount {
	loc, _ := p.layoutSide()
	return corev1.VolumeMount{Name: volLayout, MountPath: loc.Path, SubPath: p.Layout.SubPath, ReadOnly: readOnly}
}

func (p Plan) layoutVolume() corev1.Volume {
	return corev1.Volume{Name: volLayout, VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: p.Layout.ClaimName},
	}}
}

// packTemplate merges the shards' index parts and carries the run's plan
// and report into the layout.
func (p Plan) packTemplate() wfv1.Template {
	loc, _ := p.layoutSide()
	var f flags
	f.str("layout", loc.Path)
	f.str("run-dir", RunDir)
	f.str("log-format", "json")
	t := p.container(tmplPack, contract.StepVerify, append([]string{packcmd.Name}, f...), step{
		inputs: wfv1.Inputs{Artifacts: wfv1.Artifacts{inArtifact(artRun, RunDir, runKey)}},
		counts: []string{"images", "parts"},
		layout: layoutWrite,
	})
	return t
}

// How a step's pod mounts the layout.
type layoutAccess int

const (
	layoutNone layoutAccess = iota
	layoutRead
	layoutWrite
)

//go:build e2e

package argoe2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// The claim the layout lives on: a hostPath PersistentVolume on the node,
// bound by the controller-manager as any static PV.
const layoutClaim = "regmigrate-export"

// scenarioLayoutOnAVolume is scenario 10 (issue 15, point 5): phase one of
// a disconnected move as a Workflow, `--to oci:/export` with
// argo.layoutVolume naming a PersistentVolumeClaim. Every shard's mirror
// pod writes into the one layout at once, each its own index part;
// pack-layout merges them into index.json and carries the plan and report
// in. On the volume (read from the node's disk, as a person with the media
// would): every tag named with the source's digest, whole for
// go-containerregistry's layout package, no part left, phase one's report
// verified inside. Phase two as a Workflow too (`--from oci:/export`,
// the claim read-only): every image lands on the new registry with its
// source digest, and the report links phase one's.
func scenarioLayoutOnAVolume(t *testing.T, e *env) {
	ctx := context.Background()
	namespaces := []string{"media-a", "media-b", "media-c"}
	seeded := e.seed(t, regtest.Corpus{Namespaces: namespaces, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 8 << 10,
		MultiArch: true, Signature: true})
	volume := filepath.Join(e.dir, "export-volume")
	if err := os.MkdirAll(volume, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(volume, 0o777); err != nil { // the pods run as 65532; a hostPath keeps the directory's owner
		t.Fatal(err)
	}
	pv := fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata: {name: e2e-export}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {namespace: %[1]s, name: %[2]s}
  hostPath: {path: %[3]s, type: Directory}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: e2e-export
  resources: {requests: {storage: 1Gi}}
`, namespace, layoutClaim, volume)
	pvFile := filepath.Join(e.dir, "export-volume.yaml")
	if err := os.WriteFile(pvFile, []byte(pv), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := e.node.Kubectl(ctx, "apply", "-f", pvFile); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() { e.node.Kubectl(context.Background(), "delete", "-f", pvFile, "--wait=false") })

	spec := func(name, source, target string) string {
		p := filepath.Join(e.dir, name+".yaml")
		s := fmt.Sprintf(`apiVersion: regmigrate.io/v1alpha1
kind: Migration
metadata:
  name: %s
source:
  registry: %q
target:
  registry: %q
shards:
  minSize: 1
filters:
  includeNamespaces: [%s]
argo:
  layoutVolume: {claimName: %s}
`, name, source, target, strings.Join(namespaces, ", "), layoutClaim)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Phase one: the legacy registry to the layout on the volume.
	name := e.submit(t, ctx, spec("e2e-to-media", e.src.Host, "oci:/export"))
	wf := e.waitWorkflow(t, ctx, name, wfTimeout)
	if wf.Status.Phase != wfv1.WorkflowSucceeded {
		out, _ := e.argo(ctx, "get", name)
		t.Fatalf("phase one %s: %s (%s)\n%s", name, wf.Status.Phase, wf.Status.Message, out)
	}
	finished = append(finished, name)
	shards := 0
	for _, n := range wf.Status.Nodes {
		if n.TemplateName == "mirror-shard" && n.Type == wfv1.NodeTypePod && n.Phase == wfv1.NodeSucceeded {
			shards++
		}
	}
	if shards < len(namespaces) {
		t.Errorf("%d mirror-shard pods succeeded, want one per namespace (%d) writing the layout", shards, len(namespaces))
	}
	if n := nodeOf(wf, "pack-layout"); n == nil || n.Phase != wfv1.NodeSucceeded || output(n, "parts") != fmt.Sprint(shards) {
		t.Errorf("pack-layout: %+v, want it to have merged %d parts", n, shards)
	}

	b, err := os.ReadFile(filepath.Join(volume, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatalf("index.json on the volume: %v", err)
	}
	names := map[string]string{}
	for _, m := range idx.Manifests {
		if n := m.Annotations["org.opencontainers.image.ref.name"]; n != "" {
			names[n] = m.Digest
		}
	}
	for ref, want := range seeded.Tags {
		if names[ref] != want {
			t.Errorf("the layout on the volume names %s as %q, the source has %s", ref, names[ref], want)
		}
	}
	if parts, _ := filepath.Glob(filepath.Join(volume, "regmigrate", "parts", "*")); len(parts) != 0 {
		t.Errorf("index parts left on the volume: %v", parts)
	}
	p, err := layout.FromPath(volume)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.MediaType.IsIndex() {
			child, err := ii.ImageIndex(d.Digest)
			if err == nil {
				err = validate.Index(child, validate.Fast)
			}
			if err != nil {
				t.Errorf("%s: %v", d.Digest, err)
			}
		}
	}
	var rep1 struct {
		Total    int
		Verified bool
	}
	b, err = os.ReadFile(filepath.Join(volume, "regmigrate", "export", contract.ReportJSON))
	if err != nil || json.Unmarshal(b, &rep1) != nil || !rep1.Verified || rep1.Total != len(seeded.Tags) {
		t.Errorf("phase one's report on the volume: %s (%v); want %d images verified", b, err, len(seeded.Tags))
	}

	// Phase two: the layout on the volume to the new registry.
	name2 := e.submit(t, ctx, spec("e2e-from-media", "oci:/export", e.dst.Host))
	wf2 := e.waitWorkflow(t, ctx, name2, wfTimeout)
	if wf2.Status.Phase != wfv1.WorkflowSucceeded {
		out, _ := e.argo(ctx, "get", name2)
		t.Fatalf("phase two %s: %s (%s)\n%s", name2, wf2.Status.Phase, wf2.Status.Message, out)
	}
	finished = append(finished, name2)
	e.assertOnTarget(t, seeded.Tags)
	var rep2 struct {
		Total    int
		PhaseOne *struct{ Source string }
	}
	if err := json.Unmarshal(e.s3Get(t, name2+"/run/"+contract.ReportJSON), &rep2); err != nil || rep2.PhaseOne == nil || rep2.PhaseOne.Source != e.src.Host || rep2.Total != len(seeded.Tags) {
		t.Errorf("phase two's report: %+v (%v); want %d images and phaseOne from %s", rep2, err, len(seeded.Tags), e.src.Host)
	}
}

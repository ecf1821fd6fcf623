package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// TestAirGapStepsOnASharedLayout runs the step commands as the pods of a
// Workflow with argo.layoutVolume do, on one directory standing for the
// PersistentVolumeClaim: export, every shard's mirror at the same time
// (each with its own index part), verify per shard (reading every blob),
// the report, then pack-layout. The packed layout is what `regmigrate run
// --to oci:DIR` leaves: every tag named with the source's digest, whole
// for go-containerregistry's layout package and for skopeo, the plan and
// report inside. Phase two, with the steps again (the layout as the
// source, read-only): every digest lands on the new registry, and the
// report links phase one's.
func TestAirGapStepsOnASharedLayout(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, src, airgapCorpus)
	volume := filepath.Join(t.TempDir(), "export")
	run1 := t.TempDir()
	insecure := src.Host + "," + dst.Host

	if code := runStep(t, nil, contract.StepExport, "--from", src.Host, "--to", "oci:"+volume, "--insecure", insecure,
		"--out", run1, "--min-shard-size", "1", "--layout", "oci:"+volume); code != contract.ExitOK {
		t.Fatalf("export exit %d", code)
	}
	ids := shardIDs(t, run1)
	if len(ids) < 2 {
		t.Fatalf("%d shards: want one per namespace, written at once", len(ids))
	}
	codes := make([]int, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = runStep(t, nil, contract.StepMirror, "--shard-dir", filepath.Join(run1, contract.ShardsDir, id), "--insecure", insecure,
				"--layout", "oci:"+volume, "--layout-part", id)
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if codes[i] != contract.ExitOK {
			t.Fatalf("mirror-shard %s exit %d", id, codes[i])
		}
		if code := runStep(t, nil, contract.StepVerify, "--shard-dir", filepath.Join(run1, contract.ShardsDir, id), "--mode", "full",
			"--insecure", insecure, "--layout", "oci:"+volume, "--layout-part", id); code != contract.ExitOK {
			t.Fatalf("verify %s exit %d", id, code)
		}
	}
	if code := runStep(t, nil, contract.StepVerify, "--run-dir", run1); code != contract.ExitOK {
		t.Fatalf("report exit %d", code)
	}
	if code := runStep(t, nil, contract.StepVerify, "pack-layout", "--layout", volume, "--run-dir", run1); code != contract.ExitOK {
		t.Fatalf("pack-layout exit %d", code)
	}
	names := layoutNames(t, volume)
	for ref, want := range seeded.Tags {
		if got := names[ref]; got != want {
			t.Errorf("the packed layout names %s as %q, the source has %s", ref, got, want)
		}
	}
	if parts, _ := filepath.Glob(filepath.Join(volume, "regmigrate", "parts", "*")); len(parts) != 0 {
		t.Errorf("index parts left after pack-layout: %v", parts)
	}
	assertLayoutWhole(t, volume, seeded)
	assertSkopeoReadsLayout(t, volume, seeded)
	rep1 := readReport(t, filepath.Join(volume, "regmigrate", "export"))
	if !rep1.Verified || rep1.Failed != 0 || rep1.Total != len(seeded.Tags) {
		t.Errorf("phase one's report in the layout: verified %v, failed %d, total %d; want %d verified", rep1.Verified, rep1.Failed, rep1.Total, len(seeded.Tags))
	}

	// Phase two, from the layout on the volume.
	run2 := t.TempDir()
	if code := runStep(t, nil, contract.StepExport, "--from", "oci:"+volume, "--to", dst.Host, "--insecure", insecure,
		"--out", run2, "--layout", "oci:"+volume); code != contract.ExitOK {
		t.Fatalf("phase two export exit %d", code)
	}
	for _, id := range shardIDs(t, run2) {
		sd := filepath.Join(run2, contract.ShardsDir, id)
		if code := runStep(t, nil, contract.StepMirror, "--shard-dir", sd, "--insecure", insecure, "--layout", "oci:"+volume); code != contract.ExitOK {
			t.Fatalf("phase two mirror-shard %s exit %d", id, code)
		}
		if code := runStep(t, nil, contract.StepVerify, "--shard-dir", sd, "--insecure", insecure); code != contract.ExitOK {
			b, _ := os.ReadFile(filepath.Join(sd, contract.VerifyResult))
			t.Fatalf("phase two verify %s exit %d\n%s", id, code, b)
		}
	}
	if code := runStep(t, nil, contract.StepVerify, "--run-dir", run2); code != contract.ExitOK {
		t.Fatalf("phase two report exit %d", code)
	}
	assertDeep(t, dst, seeded)
	var rep2 struct {
		Total    int
		PhaseOne *struct{ Source string }
	}
	b, _ := os.ReadFile(filepath.Join(run2, contract.ReportJSON))
	if err := json.Unmarshal(b, &rep2); err != nil || rep2.PhaseOne == nil || rep2.PhaseOne.Source != src.Host || rep2.Total != len(seeded.Tags) {
		t.Errorf("phase two's report: %s (%v); want %d images and phaseOne from %s", b, err, len(seeded.Tags), src.Host)
	}
}

func shardIDs(t *testing.T, runDir string) []string {
	t.Helper()
	var ids []string
	b, err := os.ReadFile(filepath.Join(runDir, contract.ShardIDsParam))
	if err != nil || json.Unmarshal(b, &ids) != nil {
		t.Fatalf("shard-ids.json %q: %v", b, err)
	}
	return ids
}

package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/regmigrate/regmigrate/generator/runner"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/inputs"
	"github.com/regmigrate/regmigrate/steps/ocilayout"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// The layout benchmarks copy the bench corpus registry -> oci:DIR and
// oci:DIR -> registry with regmigrate's engine, beside its own registry ->
// registry cold copy and beside the peers that write layouts (skopeo copy
// --all per image, as the skopeo runbook does; crane pull --format oci of
// every tag in one process), in the same run. Compare the ratios.
//
//	go test -run '^$' -bench Layout -count 3 ./tests/e2e
func BenchmarkLayoutCold(b *testing.B) {
	src, refs := benchSource(b)
	// one layout written once, the source of layout -> registry
	ready := filepath.Join(b.TempDir(), "ready")
	regmigrateLayout(b, src.Host, imageref.Location{Registry: imageref.TransportHost("oci"), Transport: "oci", Path: ready}, refs, "")
	b.Run("regmigrate/registry-registry", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			dst := regtest.StartDistribution(b, regtest.Options{})
			b.StartTimer()
			regmigrateCopy(b, src.Host, dst.Host, refs)
		}
	})
	for _, mode := range []string{"", "auto"} {
		name := "regmigrate/registry-layout"
		if mode == "" {
			name += "-verify-full"
		} else {
			name += "-verify-" + mode
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				dir := filepath.Join(b.TempDir(), "layout")
				regmigrateLayout(b, src.Host, imageref.Location{Registry: imageref.TransportHost("oci"), Transport: "oci", Path: dir}, refs, mode)
			}
		})
	}
	b.Run("regmigrate/layout-registry", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			dst := regtest.StartDistribution(b, regtest.Options{})
			b.StartTimer()
			fromLayout(b, ready, dst.Host, refs)
		}
	})
	b.Run("crane/pull-format-oci", func(b *testing.B) {
		crane := buildCrane(b)
		args := []string{"pull", "--format", "oci", "--annotate-ref", "--insecure"}
		for _, r := range refs {
			args = append(args, src.Host+"/"+r)
		}
		for b.Loop() {
			dir := filepath.Join(b.TempDir(), "crane")
			if out, err := exec.Command(crane, append(args, dir)...).CombinedOutput(); err != nil {
				b.Fatalf("crane: %v\n%s", err, out)
			}
		}
	})
	b.Run("skopeo/copy-all-per-image", func(b *testing.B) {
		for b.Loop() {
			dir := filepath.Join(b.TempDir(), "skopeo")
			for _, r := range refs {
				if out, err := exec.Command("skopeo", "copy", "--all", "--quiet", "--src-tls-verify=false", "docker://"+src.Host+"/"+r, "oci:"+dir+":"+r).CombinedOutput(); err != nil {
					b.Fatalf("skopeo: %v\n%s", err, out)
				}
			}
		}
	})
}

func layoutClient(b *testing.B, dir string, write bool) *registry.Client {
	b.Helper()
	c := registry.New(registry.Options{Insecure: anyHost})
	l, err := ocilayout.Open(context.Background(), dir, ocilayout.Options{Create: write})
	if err != nil {
		b.Fatal(err)
	}
	c.Attach(imageref.TransportHost("oci"), l)
	return c
}

func regmigrateLayout(b *testing.B, src string, to imageref.Location, refs []string, mode string) {
	b.Helper()
	var entries []inputs.Entry
	for _, r := range refs {
		ref, _ := imageref.Parse(r)
		entries = append(entries, inputs.Entry{Source: ref})
	}
	rep, err := runner.Run(context.Background(), runner.Options{
		Client: layoutClient(b, to.Path, true), VerifyMode: mode,
		Export: export.Options{From: imageref.Location{Registry: src}, To: to, Entries: entries},
		Out:    filepath.Join(b.TempDir(), "run"),
	})
	if err != nil || rep.Failed != 0 {
		b.Fatalf("regmigrate: %v (%d failed)", err, rep.Failed)
	}
}

func fromLayout(b *testing.B, dir, dst string, refs []string) {
	b.Helper()
	host := imageref.TransportHost("oci")
	var entries []inputs.Entry
	for _, r := range refs {
		ref, _ := imageref.Parse(r)
		ref.Registry = host
		entries = append(entries, inputs.Entry{Source: ref})
	}
	rep, err := runner.Run(context.Background(), runner.Options{
		Client: layoutClient(b, dir, false),
		Export: export.Options{From: imageref.Location{Registry: host, Transport: "oci", Path: dir}, To: imageref.Location{Registry: dst}, Entries: entries},
		Out:    filepath.Join(b.TempDir(), "run"),
	})
	if err != nil || rep.Failed != 0 {
		b.Fatalf("regmigrate: %v (%d failed)", err, rep.Failed)
	}
}

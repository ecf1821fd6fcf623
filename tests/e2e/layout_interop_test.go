package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

var (
	craneOnce sync.Once
	cranePath string
	craneErr  error
)

// buildCrane builds go-containerregistry's crane (the version go.mod pins)
// once per test binary.
func buildCrane(t testing.TB) string {
	t.Helper()
	craneOnce.Do(func() {
		dir, err := os.MkdirTemp("", "crane-bin-")
		if err != nil {
			craneErr = err
			return
		}
		cranePath = filepath.Join(dir, "crane")
		out, err := exec.Command("go", "build", "-o", cranePath, "github.com/google/go-containerregistry/cmd/crane").CombinedOutput()
		if err != nil {
			craneErr = &buildError{out: string(out), err: err}
		}
	})
	if craneErr != nil {
		t.Fatalf("building crane: %v", craneErr)
	}
	return cranePath
}

func tool(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

// ociTyped are the seeded tags whose manifests have OCI media types (what
// skopeo reads from and writes to a layout without converting), as the
// registry serves them; indexes left out (skopeo 1.9 refuses to write
// this corpus's indexes, whose children are Docker manifests, unconverted).
func ociTyped(t *testing.T, r *regtest.Registry, seeded regtest.Seeded) []string {
	t.Helper()
	var out []string
	for _, ref := range sortedRefs(seeded.Tags) {
		nr, err := name.ParseReference(r.Host+"/"+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		d, err := remote.Get(nr, r.RemoteOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(d.MediaType), "application/vnd.oci.") || strings.Contains(ref, "nested") {
			continue
		}
		if strings.Contains(ref, ":sha256-") {
			continue // a signature travels with its image, which may be left out here
		}
		if d.MediaType.IsIndex() {
			continue // skopeo 1.9 converts this corpus's indexes (Docker children), digests lost
		}
		out = append(out, ref)
	}
	return out
}

// Layouts written by tools no one here wrote, and ours read by them:
// crane pull --format oci (every tag of the corpus, ref.name with the
// registry host) and skopeo copy to oci:DIR:ns/repo:tag are migrated to a
// registry by regmigrate, every digest the source's; skopeo copies from a
// layout regmigrate wrote to a registry, digests preserved.
func TestLayoutsOfOtherTools(t *testing.T) {
	t.Parallel()
	crane := buildCrane(t)
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatalf("skopeo is not installed (make deps installs Debian's skopeo): %v", err)
	}
	src := servers["olareg"](t)
	seeded := seed(t, src, airgapCorpus)

	t.Run("crane", func(t *testing.T) {
		t.Parallel()
		dst := servers["distribution-v3-token"](t)
		dir := filepath.Join(t.TempDir(), "crane")
		args := []string{"pull", "--format", "oci", "--annotate-ref", "--insecure"}
		for _, ref := range sortedRefs(seeded.Tags) {
			args = append(args, src.Host+"/"+ref)
		}
		tool(t, crane, append(args, dir)...)
		spec, _ := writeSpec(t, src, dst, "")
		out := filepath.Join(t.TempDir(), "run")
		if code, _, _ := runCLI(t, nil, "run", "-f", spec, "--from", "oci:"+dir, "--out", out, "--progress", "none"); code != contract.ExitOK {
			t.Fatalf("exit %d, want 0", code)
		}
		if r := readReport(t, out); !r.Verified || r.Failed != 0 || r.Total < len(seeded.Tags) {
			t.Errorf("report: verified %v, %d images, failed %d; crane pulled %d tags", r.Verified, r.Total, r.Failed, len(seeded.Tags))
		}
		assertMirrored(t, dst.Host, seeded.Tags, dst.RemoteOptions()...)
	})

	t.Run("skopeo", func(t *testing.T) {
		t.Parallel()
		refs := ociTyped(t, src, seeded)
		if len(refs) < 3 {
			t.Fatalf("the corpus has %d OCI-typed tags (%v): too few to prove anything", len(refs), refs)
		}
		dir := filepath.Join(t.TempDir(), "skopeo")
		want := map[string]string{}
		for _, ref := range refs {
			tool(t, skopeo, "copy", "--all", "--preserve-digests", "--quiet", "--src-tls-verify=false", "docker://"+src.Host+"/"+ref, "oci:"+dir+":"+ref)
			want[ref] = seeded.Tags[ref]
		}
		dst := servers["olareg"](t)
		spec, _ := writeSpec(t, src, dst, "")
		out := filepath.Join(t.TempDir(), "run")
		if code, _, _ := runCLI(t, nil, "run", "-f", spec, "--from", "oci:"+dir, "--out", out, "--progress", "none"); code != contract.ExitOK {
			t.Fatalf("exit %d, want 0", code)
		}
		assertMirrored(t, dst.Host, want, dst.RemoteOptions()...)

		// The other way: skopeo copies from a layout regmigrate wrote.
		ours := filepath.Join(t.TempDir(), "ours")
		if code, _, _ := runCLI(t, nil, "run", "-f", spec, "--from", src.Host, "--images", writeFile(t, filepath.Join(t.TempDir(), "images.txt"), strings.Join(sortedRefs(seeded.Tags), "\n")+"\n"),
			"--to", "oci:"+ours, "--progress", "none"); code != contract.ExitOK {
			t.Fatalf("phase one: exit %d", code)
		}
		back := servers["olareg"](t)
		for _, ref := range refs {
			tool(t, skopeo, "copy", "--all", "--preserve-digests", "--quiet", "--dest-tls-verify=false", "oci:"+ours+":"+ref, "docker://"+back.Host+"/"+ref)
		}
		assertMirrored(t, back.Host, want, back.RemoteOptions()...)
	})
}

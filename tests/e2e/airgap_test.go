package e2e

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// airgapCorpus has every kind of image the engine moves: Docker and OCI
// media types, multi-arch and nested indexes, a cosign signature tag, a
// Helm chart, an OCI 1.1 referrer, a zstd layer.
var airgapCorpus = regtest.Corpus{
	Namespaces: []string{"team-a", "team-b"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 16 << 10,
	MultiArch: true, Nested: true, Signature: true, HelmChart: true, Referrer: true, Zstd: true,
}

// layoutNames reads index.json as a user would (jq '.manifests[]'): the
// ref.name of every entry and its digest.
func layoutNames(t *testing.T, dir string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
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
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range idx.Manifests {
		if n := m.Annotations["org.opencontainers.image.ref.name"]; n != "" {
			out[n] = m.Digest
		}
	}
	return out
}

// Phase one (registry -> oci:DIR) and phase two (oci:DIR -> registry) of a
// disconnected move, with the whole corpus: the layout names every tag by
// its full ns/repo:tag with the source's digest, stores each blob once,
// reads back whole with go-containerregistry's layout package and with
// skopeo, carries phase one's plan and report; phase two lands every
// digest on the new registry, links phase one in its report, and reruns
// of both phases find everything in place.
func TestAirGapTwoPhases(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2]string{
		{"distribution-2.8", "olareg"},
		{"olareg", "distribution-v3-token"},
	} {
		t.Run(pair[0]+"->oci->"+pair[1], func(t *testing.T) {
			t.Parallel()
			src, dst := servers[pair[0]](t), servers[pair[1]](t)
			seeded := seed(t, src, airgapCorpus)
			var list string
			if pair[0] == "olareg" { // no catalog API
				list = writeFile(t, filepath.Join(t.TempDir(), "images.txt"), strings.Join(sortedRefs(seeded.Tags), "\n")+"\n")
			}
			spec, authFile := writeSpec(t, src, dst, list)
			media := filepath.Join(t.TempDir(), "media", "export")

			// Phase one: the plan and report go inside the layout by default.
			if code, _, _ := runCLI(t, nil, "run", "-f", spec, "--to", "oci:"+media, "--progress", "none"); code != contract.ExitOK {
				t.Fatalf("phase one: exit %d, want 0", code)
			}
			rec := filepath.Join(media, "regmigrate", "export")
			rep1 := readReport(t, rec)
			if !rep1.Verified || rep1.Failed != 0 || rep1.Copied == 0 {
				t.Fatalf("phase one report: verified %v, copied %d, failed %d", rep1.Verified, rep1.Copied, rep1.Failed)
			}
			names := layoutNames(t, media)
			for ref, want := range seeded.Tags {
				if got := names[ref]; got != want {
					t.Errorf("layout names %s as %q, the source has %s", ref, got, want)
				}
			}
			assertLayoutWhole(t, media, seeded)
			assertSkopeoReadsLayout(t, media, seeded)

			// Rerun of phase one: everything in place.
			if code, _, _ := runCLI(t, nil, "run", "-f", spec, "--to", "oci:"+media, "--progress", "none"); code != contract.ExitOK {
				t.Fatalf("phase one rerun: exit %d", code)
			}
			if r := readReport(t, rec); r.Copied != 0 || r.Failed != 0 {
				t.Errorf("phase one rerun copied %d, failed %d: want everything skipped", r.Copied, r.Failed)
			}

			// Phase two, on the other side: the spec's target, from the layout.
			out2 := filepath.Join(t.TempDir(), "phase2")
			if code, _, _ := runCLI(t, nil, "run", "-f", spec, "--from", "oci:"+media, "--out", out2, "--progress", "none"); code != contract.ExitOK {
				t.Fatalf("phase two: exit %d, want 0", code)
			}
			rep2 := readReport(t, out2)
			if !rep2.Verified || rep2.Failed != 0 || rep2.Copied == 0 {
				t.Fatalf("phase two report: verified %v, copied %d, failed %d", rep2.Verified, rep2.Copied, rep2.Failed)
			}
			assertDeep(t, dst, seeded)
			assertSkopeoReads(t, dst, authFile, seeded)
			// Phase two's report links phase one's, by path and digest.
			var link struct {
				PhaseOne *struct {
					Report, ReportSHA256, Source string
					Total                        int
					Verified                     bool
				}
			}
			b, _ := os.ReadFile(filepath.Join(out2, contract.ReportJSON))
			if err := json.Unmarshal(b, &link); err != nil || link.PhaseOne == nil {
				t.Fatalf("phase two's report has no phaseOne: %v", err)
			}
			p1, err := os.ReadFile(filepath.Join(rec, contract.ReportJSON))
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("sha256:%x", sha256.Sum256(p1)); link.PhaseOne.ReportSHA256 != want || link.PhaseOne.Source != src.Host || !link.PhaseOne.Verified {
				t.Errorf("phaseOne = %+v, want phase one's report %s (%s) from %s, verified", *link.PhaseOne, want, rec, src.Host)
			}
			md, _ := os.ReadFile(filepath.Join(out2, contract.ReportMD))
			if !strings.Contains(string(md), "phase one ("+src.Host) {
				t.Errorf("report.md does not mention phase one:\n%s", md)
			}
			if html, _ := os.ReadFile(filepath.Join(out2, contract.ReportHTML)); !strings.Contains(string(html), "<dt>Phase one</dt>") || !strings.Contains(string(html), link.PhaseOne.ReportSHA256) {
				t.Errorf("report.html does not link phase one")
			}
			// Phase two's scope is phase one's images, every one of them.
			if rep2.Total != rep1.Total {
				t.Errorf("phase two moved %d images, phase one %d", rep2.Total, rep1.Total)
			}
			if code, _, _ := runCLI(t, nil, "run", "-f", spec, "--from", "oci:"+media, "--out", out2, "--progress", "none"); code != contract.ExitOK {
				t.Fatalf("phase two rerun: exit %d", code)
			}
			if r := readReport(t, out2); r.Copied != 0 || r.Failed != 0 {
				t.Errorf("phase two rerun copied %d, failed %d: want everything skipped", r.Copied, r.Failed)
			}
		})
	}
}

// assertLayoutWhole reads the layout with go-containerregistry's layout
// package (not ours): every tagged image and index validates, each blob's
// content against its digest; and each file under blobs/ is stored once,
// named by its content's digest.
func assertLayoutWhole(t *testing.T, dir string, seeded regtest.Seeded) {
	t.Helper()
	p, err := layout.FromPath(dir)
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
		name := d.Annotations["org.opencontainers.image.ref.name"]
		if name != "" && strings.HasPrefix(name, "team-a/charts/") {
			continue // a Helm chart: not an image ggcr validates
		}
		if d.MediaType.IsIndex() {
			child, err := ii.ImageIndex(d.Digest)
			if err == nil {
				err = validate.Index(child, validate.Fast)
			}
			if err != nil {
				t.Errorf("%s (%s): %v", name, d.Digest, err)
			}
			continue
		}
		img, err := ii.Image(d.Digest)
		if err == nil {
			if _, err = img.Manifest(); err == nil && name != "" && !strings.Contains(name, "sha256-") {
				err = validate.Image(img, validate.Fast)
			}
		}
		if err != nil {
			t.Errorf("%s (%s): %v", name, d.Digest, err)
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no blobs in %s: %v", dir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(b)); got != filepath.Base(f) {
			t.Errorf("%s holds content with digest %s", f, got)
		}
	}
}

// assertSkopeoReadsLayout reads every tag of the layout with skopeo
// (oci:DIR:ns/repo:tag): the bytes it reads have the source's digest.
// Debian's skopeo (containers/image 5.2x) looks only at index.json entries
// of OCI media types: images that are Docker manifests or manifest lists
// keep their media type (their digest depends on it) and are left out.
func assertSkopeoReadsLayout(t *testing.T, dir string, seeded regtest.Seeded) {
	t.Helper()
	bin, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatalf("skopeo is not installed (make deps installs Debian's skopeo): %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Manifests []struct {
			MediaType   string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	docker := map[string]bool{}
	for _, m := range idx.Manifests {
		if strings.Contains(m.MediaType, "docker") {
			docker[m.Annotations["org.opencontainers.image.ref.name"]] = true
		}
	}
	read := 0
	for ref, want := range seeded.Tags {
		if docker[ref] {
			continue
		}
		read++
		cmd := exec.Command(bin, "inspect", "--raw", "oci:"+dir+":"+ref)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		raw, err := cmd.Output()
		if err != nil {
			t.Errorf("skopeo inspect --raw oci:%s:%s: %v\n%s", dir, ref, err, stderr.String())
			continue
		}
		if got := fmt.Sprintf("sha256:%x", sha256.Sum256(raw)); got != want {
			t.Errorf("skopeo reads %s in the layout as %s, the source has %s", ref, got, want)
		}
	}
	if read < len(seeded.Tags)/2 {
		t.Errorf("skopeo read %d of the %d tags: the corpus has more of OCI media types", read, len(seeded.Tags))
	}
}

// largestBlob is the biggest file under blobs/ (a layer).
func largestBlob(t *testing.T, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	var best string
	var size int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.Size() > size {
			best, size = f, st.Size()
		}
	}
	if best == "" {
		t.Fatalf("no blob in %s", dir)
	}
	return best
}

// damage flips a byte in the middle of a file, as a bad sector would.
func damage(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A layout on removable media: an interrupted phase one (tags missing from
// index.json, a half-written blob left) is finished by the same command;
// a damaged blob file is found and named by verify, and mended by the next
// run; phase two from a damaged layout fails the images that need the
// file, naming it, and copies the others.
func TestAirGapResumeAndDamage(t *testing.T) {
	t.Parallel()
	src, dst := servers["distribution-2.8"](t), servers["olareg"](t)
	seeded := seed(t, src, airgapCorpus)
	spec, _ := writeSpec(t, src, dst, "")
	media := filepath.Join(t.TempDir(), "export")
	phase1 := []string{"run", "-f", spec, "--to", "oci:" + media, "--progress", "none"}
	// A dry run plans every image and writes nothing to the media.
	code, stdout, stderr := runCLI(t, nil, append(phase1, "--dry-run", "--out", filepath.Join(t.TempDir(), "dry"))...)
	if code != contract.ExitOK || strings.Count(stdout, "\n+ ") < len(seeded.Tags)/2 {
		t.Errorf("dry run: exit %d, plan:\n%s\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(media); err == nil {
		t.Errorf("the dry run created %s", media)
	}
	if code, _, _ := runCLI(t, nil, phase1...); code != contract.ExitOK {
		t.Fatalf("phase one: exit %d", code)
	}
	rec := filepath.Join(media, "regmigrate", "export")

	// As an interrupted run leaves it: half the tags not yet in index.json,
	// a blob being written.
	idxPath := filepath.Join(media, "index.json")
	b, err := os.ReadFile(idxPath)
	if err != nil {
		t.Fatal(err)
	}
	var idx map[string]any
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	all := idx["manifests"].([]any)
	var kept []any
	dropped := 0
	for i, m := range all {
		name, _ := m.(map[string]any)["annotations"].(map[string]any)["org.opencontainers.image.ref.name"].(string)
		if name != "" && i%2 == 0 && !strings.Contains(name, "sha256-") {
			dropped++
			continue
		}
		kept = append(kept, m)
	}
	idx["manifests"] = kept
	b, _ = json.Marshal(idx)
	if err := os.WriteFile(idxPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(media, "blobs", "sha256", ".tmp-"+strings.Repeat("0", 64)+"-abc")
	if err := os.WriteFile(stray, []byte("half a layer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, nil, phase1...); code != contract.ExitOK {
		t.Fatalf("resumed phase one: exit %d", code)
	}
	if r := readReport(t, rec); r.Copied != dropped || r.Failed != 0 || !r.Verified {
		t.Errorf("resumed phase one copied %d, failed %d, verified %v: want the %d tags missing from index.json copied", r.Copied, r.Failed, r.Verified, dropped)
	}
	names := layoutNames(t, media)
	for ref, want := range seeded.Tags {
		if names[ref] != want {
			t.Errorf("after the resumed run the layout names %s as %q, want %s", ref, names[ref], want)
		}
	}
	if _, err := os.Stat(stray); err == nil {
		t.Errorf("the half-written blob %s is still there", stray)
	}

	// A damaged file: verify reads every blob of the layout and names it.
	bad := largestBlob(t, media)
	damage(t, bad)
	code, _, stderr = runCLI(t, nil, append(phase1, "--verify", "full")...)
	if code == contract.ExitOK {
		t.Fatalf("verify passed over the damaged %s", bad)
	}
	md, _ := os.ReadFile(filepath.Join(rec, contract.ReportMD))
	if !strings.Contains(string(md), bad) && !strings.Contains(stderr, bad) {
		t.Errorf("neither report.md nor stderr names the damaged file %s:\n%s\n%s", bad, md, stderr)
	}
	// The next run writes the blob again from the source.
	if code, _, _ := runCLI(t, nil, append(phase1, "--verify", "full")...); code != contract.ExitOK {
		t.Fatalf("repairing run: exit %d", code)
	}
	if sum, _ := os.ReadFile(bad); fmt.Sprintf("%x", sha256.Sum256(sum)) != filepath.Base(bad) {
		t.Errorf("%s is still damaged after the repairing run", bad)
	}

	// Phase two from a damaged layout: the images that need the file fail,
	// naming it; the others land.
	damage(t, bad)
	out2 := filepath.Join(t.TempDir(), "phase2")
	code, _, _ = runCLI(t, nil, "run", "-f", spec, "--from", "oci:"+media, "--out", out2, "--progress", "none")
	if code == contract.ExitOK {
		t.Fatalf("phase two passed reading the damaged %s", bad)
	}
	rep := readReport(t, out2)
	if rep.Failed == 0 || rep.Copied == 0 {
		t.Fatalf("phase two: copied %d, failed %d: want the images that need %s failed and the others copied", rep.Copied, rep.Failed, bad)
	}
	for _, im := range rep.Images {
		if im.Status == contract.StatusFailed && !strings.Contains(im.Error, bad) {
			t.Errorf("%s failed without naming the damaged file: %s", im.Target, im.Error)
		}
	}
}

package e2e

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/regmigrate/regmigrate/steps/contract"
)

// The archives of the skopeo runbook: phase one to an oci-archive cut
// into parts for media with a size limit (docker/migrator's
// MIGRATION_INCREMENT), joined by cat and read by skopeo, and read in its
// parts by phase two, every digest the source's; a docker save archive
// with several images and a dir: folder skopeo wrote, as sources.
func TestArchives(t *testing.T) {
	t.Parallel()
	src := servers["olareg"](t)
	corpus := airgapCorpus
	corpus.LayerSize = 200 << 10
	seeded := seed(t, src, corpus)
	list := writeFile(t, filepath.Join(t.TempDir(), "images.txt"), strings.Join(sortedRefs(seeded.Tags), "\n")+"\n")

	t.Run("oci-archive split", func(t *testing.T) {
		t.Parallel()
		dst := servers["distribution-2.8"](t)
		spec, _ := writeSpec(t, src, dst, list)
		file := filepath.Join(t.TempDir(), "media", "export.tar")
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if code, _, _ := runCLI(t, nil, "run", "-f", spec, "--to", "oci-archive:"+file, "--split-size", "1MiB", "--progress", "none"); code != contract.ExitOK {
			t.Fatalf("phase one: exit %d", code)
		}
		parts, _ := filepath.Glob(file + ".[0-9][0-9][0-9]")
		if len(parts) < 2 {
			t.Fatalf("%d parts for a %d-byte corpus cut at 1 MiB: want several", len(parts), seeded.Bytes)
		}
		var whole []byte
		for _, p := range parts {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > 1<<20 {
				t.Errorf("%s has %d bytes, over the 1 MiB asked", p, len(b))
			}
			whole = append(whole, b...)
		}
		// cat FILE.* > FILE, then skopeo reads it.
		joined := writeFile(t, filepath.Join(t.TempDir(), "joined.tar"), string(whole))
		read := 0
		for _, ref := range ociTyped(t, src, seeded) {
			out, err := exec.Command("skopeo", "inspect", "--raw", "oci-archive:"+joined+":"+ref).Output()
			if err != nil {
				t.Errorf("skopeo inspect --raw oci-archive:%s:%s: %v", joined, ref, err)
				continue
			}
			read++
			if got := fmt.Sprintf("sha256:%x", sha256.Sum256(out)); got != seeded.Tags[ref] {
				t.Errorf("skopeo reads %s in the archive as %s, the source has %s", ref, got, seeded.Tags[ref])
			}
		}
		if read < 3 {
			t.Errorf("skopeo read %d images of the archive", read)
		}
		// Phase two reads the parts as they are.
		out2 := filepath.Join(t.TempDir(), "phase2")
		if code, _, _ := runCLI(t, nil, "run", "-f", spec, "--from", "oci-archive:"+file, "--out", out2, "--progress", "none"); code != contract.ExitOK {
			t.Fatalf("phase two: exit %d", code)
		}
		if r := readReport(t, out2); !r.Verified || r.Failed != 0 {
			t.Errorf("phase two: verified %v, failed %d", r.Verified, r.Failed)
		}
		assertDeep(t, dst, seeded)
	})

	t.Run("docker-archive", func(t *testing.T) {
		t.Parallel()
		dst := servers["olareg"](t)
		// docker save of two images, as go-containerregistry's tarball
		// package writes it (docker's format: manifest.json, RepoTags).
		imgs := map[name.Reference]v1.Image{}
		configs := map[string]string{}
		for _, ref := range []string{"legacy.example/team-a/web:1.0", "legacy.example/team-b/db:2.1"} {
			img, err := random.Image(64<<10, 2)
			if err != nil {
				t.Fatal(err)
			}
			tag, _ := name.NewTag(ref)
			imgs[tag] = img
			cfg, _ := img.ConfigName()
			configs[strings.TrimPrefix(ref, "legacy.example/")] = cfg.String()
		}
		file := filepath.Join(t.TempDir(), "saved.tar")
		if err := tarball.MultiRefWriteToFile(file, imgs); err != nil {
			t.Fatal(err)
		}
		spec, _ := writeSpec(t, src, dst, "")
		out := filepath.Join(t.TempDir(), "run")
		if code, _, _ := runCLI(t, nil, "run", "-f", spec, "--from", "docker-archive:"+file, "--out", out, "--progress", "none"); code != contract.ExitOK {
			t.Fatalf("exit %d", code)
		}
		for ref, cfg := range configs {
			r, _ := name.ParseReference(dst.Host+"/"+ref, name.Insecure)
			img, err := remote.Image(r, dst.RemoteOptions()...)
			if err != nil {
				t.Errorf("%s not on the target: %v", ref, err)
				continue
			}
			if got, _ := img.ConfigName(); got.String() != cfg {
				t.Errorf("%s: image ID (config) %s on the target, %s in the archive", ref, got, cfg)
			}
		}
	})

	t.Run("dir", func(t *testing.T) {
		t.Parallel()
		dst := servers["olareg"](t)
		ref := ociTyped(t, src, seeded)[0]
		dir := filepath.Join(t.TempDir(), "webapp")
		if out, err := exec.Command("skopeo", "copy", "--quiet", "--preserve-digests", "--src-tls-verify=false", "docker://"+src.Host+"/"+ref, "dir:"+dir).CombinedOutput(); err != nil {
			t.Fatalf("skopeo copy to dir: %v\n%s", err, out)
		}
		spec, _ := writeSpec(t, src, dst, "")
		if code, _, _ := runCLI(t, nil, "run", "-f", spec, "--from", "dir:"+dir, "--out", filepath.Join(t.TempDir(), "run"), "--progress", "none"); code != contract.ExitOK {
			t.Fatalf("exit %d", code)
		}
		assertMirrored(t, dst.Host, map[string]string{"webapp:latest": seeded.Tags[ref]}, dst.RemoteOptions()...)
	})
}

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/verify"
	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// ownLayer is the digest of the last layer of ref (ns/repo:tag) on r: the
// layer no other image of the corpus has.
func ownLayer(t *testing.T, r *regtest.Registry, ref string) string {
	t.Helper()
	tr, err := name.ParseReference(r.Host+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(tr, r.RemoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := ls[len(ls)-1].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// storedBlob is where a filesystem distribution registry keeps a blob's
// bytes.
func storedBlob(r *regtest.Registry, digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(r.DataDir, "docker/registry/v2/blobs/sha256", hex[:2], hex, "data")
}

func imageLine(t *testing.T, rep reportJSON, suffix string) (status, errText string) {
	t.Helper()
	for _, im := range rep.Images {
		if strings.HasSuffix(im.Target, suffix) {
			return im.Status, im.Error
		}
	}
	t.Fatalf("no report line for %s", suffix)
	return "", ""
}

// A layer corrupted in place on the target and a layer deleted from it
// after a migration: `--verify full` reads every blob and fails both
// images by name; the next rerun copies them again, which repairs the
// deleted layer; the registry keeps its corrupt copy of a blob it already
// stores, and the report says so and what to delete; once that is done, a
// rerun repairs it, and `--verify full` passes with every blob read back
// with its digest.
func TestRunVerifyFullFindsDamageAndARerunRepairsIt(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, src, regtest.Corpus{Namespaces: []string{"team-a"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 16 << 10, MultiArch: true})
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"run", "--from", src.Host, "--to", dst.Host, "--insecure", "--out", out, "--progress", "none"}
	if code, _, _ := runCLI(t, nil, args...); code != contract.ExitOK {
		t.Fatalf("first run: exit %d", code)
	}

	corrupt := ownLayer(t, dst, "team-a/app1:v0")
	lost := ownLayer(t, dst, "team-a/app1:v1")
	b, err := os.ReadFile(storedBlob(dst, corrupt))
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(storedBlob(dst, corrupt), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(storedBlob(dst, lost)); err != nil {
		t.Fatal(err)
	}

	// A no-op rerun's default verification asks the tags only.
	runCLI(t, nil, args...)
	code, _, stderr := runCLI(t, nil, append(args, "--verify", "full")...)
	if code != contract.ExitFailed {
		t.Fatalf("--verify full: exit %d, want %d", code, contract.ExitFailed)
	}
	rep := readReport(t, out)
	if rep.Verified || rep.Failed != 2 {
		t.Fatalf("--verify full: verified %v, %d failed, want the two damaged images failed", rep.Verified, rep.Failed)
	}
	if st, e := imageLine(t, rep, "team-a/app1:v0"); st != contract.StatusFailed || !strings.Contains(e, corrupt) || !strings.Contains(e, "team-a/app1:v0") || !strings.Contains(e, "corrupt") {
		t.Errorf("corrupt image: %s %q, want failed naming the image and blob %s", st, e, corrupt)
	}
	if st, e := imageLine(t, rep, "team-a/app1:v1"); st != contract.StatusFailed || !strings.Contains(e, lost) || !strings.Contains(e, "missing") {
		t.Errorf("image with a deleted layer: %s %q, want failed naming the missing blob %s", st, e, lost)
	}
	if !strings.Contains(stderr, "did not verify") {
		t.Errorf("stderr does not say images did not verify:\n%s", stderr)
	}

	// The rerun copies both again.
	code, _, _ = runCLI(t, nil, args...)
	if code != contract.ExitFailed {
		t.Fatalf("repairing rerun: exit %d, want %d (the registry keeps the corrupt blob)", code, contract.ExitFailed)
	}
	rep = readReport(t, out)
	if st, e := imageLine(t, rep, "team-a/app1:v1"); st != contract.StatusCopied {
		t.Errorf("image with a deleted layer after the rerun: %s %q, want copied again and verified", st, e)
	}
	_, e := imageLine(t, rep, "team-a/app1:v0")
	if !strings.Contains(e, "still serves the corrupt copy") || !strings.Contains(e, "Delete the blob's data") {
		t.Errorf("corrupt image after the rerun: %q, want it to say the registry kept the corrupt copy and what to delete", e)
	}
	log, _ := os.ReadFile(filepath.Join(out, contract.ShardsDir, "ns-team-a", contract.MirrorLog))
	if n := len(regexp.MustCompile(`(?m)^Copied .*team-a/app1:v1 -> `).FindAll(log, -1)); n != 2 {
		t.Errorf("mirror.log has %d Copied lines for team-a/app1:v1, want 2 (the first copy and the repair)", n)
	}

	// Do what the report says.
	if err := os.Remove(storedBlob(dst, corrupt)); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, nil, args...); code != contract.ExitOK {
		t.Fatalf("rerun after the corrupt blob was deleted: exit %d, want 0", code)
	}
	if code, _, _ := runCLI(t, nil, append(args, "--verify", "full")...); code != contract.ExitOK {
		t.Fatalf("--verify full after the repair: exit %d, want 0", code)
	}
	if rep := readReport(t, out); rep.Copied != 0 || !rep.Verified {
		t.Errorf("after the repair: copied %d verified %v, want nothing copied and verified", rep.Copied, rep.Verified)
	}
	assertDeep(t, dst, seeded)
}

// The same failure gives the same exit code whichever registry it comes
// from and in whichever phase: transient ones 75 (a rerun may pass),
// integrity failures 1.
func TestExitCodesDoNotDependOnTheSideOrThePhase(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	corpus := regtest.Corpus{Namespaces: []string{"ns"}, ReposPerNS: 1, TagsPerRepo: 2, LayerSize: 8 << 10, MultiArch: true}
	seed(t, src, corpus)
	manifestsByDigest := regexp.MustCompile(`/manifests/sha256:`)
	blobs := regexp.MustCompile(`/blobs/sha256:`)
	for _, tc := range []struct {
		name        string
		srcFault    []faultproxy.Fault
		dstFault    []faultproxy.Fault
		code        int
		errContains string
	}{
		{"source blobs answer 503", []faultproxy.Fault{{Method: "GET", PathRegex: blobs, Kind: faultproxy.Status503, Times: -1}}, nil, contract.ExitRetryable, "503"},
		{"target uploads answer 503", nil, []faultproxy.Fault{{Method: "POST", PathRegex: regexp.MustCompile(`/blobs/uploads/`), Kind: faultproxy.Status503, Times: -1}}, contract.ExitRetryable, "503"},
		{"source connections reset on manifests", []faultproxy.Fault{{Method: "GET", PathRegex: manifestsByDigest, Kind: faultproxy.Reset, Times: -1}}, nil, contract.ExitRetryable, ""},
		{"target connections reset on manifest pushes", nil, []faultproxy.Fault{{Method: "PUT", PathRegex: regexp.MustCompile(`/manifests/`), Kind: faultproxy.Reset, Times: -1}}, contract.ExitRetryable, ""},
		{"source manifests with another digest", []faultproxy.Fault{{Method: "GET", PathRegex: manifestsByDigest, Kind: faultproxy.AlteredBody, Times: -1}}, nil, contract.ExitFailed, "digest mismatch"},
		{"source blobs with another digest", []faultproxy.Fault{{Method: "GET", PathRegex: blobs, Kind: faultproxy.AlteredBody, Times: -1}}, nil, contract.ExitFailed, "digest mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dst := regtest.StartDistribution(t, regtest.Options{})
			sp := faultproxy.New(t, "http://"+src.Host, tc.srcFault...)
			dp := faultproxy.New(t, "http://"+dst.Host, tc.dstFault...)
			out := filepath.Join(t.TempDir(), "run")
			code, _, _ := runCLI(t, nil, "run", "--from", sp.Host, "--to", dp.Host, "--insecure", "--out", out, "--progress", "none", "--retries", "2")
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			rep := readReport(t, out)
			if rep.Failed == 0 {
				t.Fatal("no image failed")
			}
			for _, im := range rep.Images {
				if im.Status == contract.StatusFailed && !strings.Contains(im.Error, tc.errContains) {
					t.Errorf("%s: %q, want it to say %q", im.Target, im.Error, tc.errContains)
				}
			}
		})
	}

	// The verification phase, as Argo runs it: the target goes away (or
	// loses a child manifest) between mirror-shard and verify.
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dst *regtest.Registry, px *faultproxy.Proxy, seeded regtest.Seeded)
		code   int
	}{
		{"target down during verify", func(t *testing.T, _ *regtest.Registry, px *faultproxy.Proxy, _ regtest.Seeded) { px.Close() }, contract.ExitRetryable},
		{"a child manifest missing", func(t *testing.T, dst *regtest.Registry, _ *faultproxy.Proxy, _ regtest.Seeded) {
			tr, _ := name.ParseReference(dst.Host+"/ns/app0:v0", name.Insecure)
			idx, err := remote.Index(tr, dst.RemoteOptions()...)
			if err != nil {
				t.Fatal(err)
			}
			im, _ := idx.IndexManifest()
			if err := remote.Delete(tr.Context().Digest(im.Manifests[0].Digest.String()), dst.RemoteOptions()...); err != nil {
				t.Fatal(err)
			}
		}, contract.ExitFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dst := regtest.StartDistribution(t, regtest.Options{})
			px := faultproxy.New(t, "http://"+dst.Host)
			dir := t.TempDir()
			insecure := src.Host + "," + px.Host
			if code := runStep(t, nil, contract.StepExport, "--from", src.Host, "--to", px.Host, "--insecure", insecure, "--out", dir); code != contract.ExitOK {
				t.Fatalf("export exit %d", code)
			}
			sd := filepath.Join(dir, contract.ShardsDir, "ns-ns")
			if code := runStep(t, nil, contract.StepMirror, "--shard-dir", sd, "--insecure", insecure); code != contract.ExitOK {
				t.Fatalf("mirror-shard exit %d", code)
			}
			tc.damage(t, dst, px, regtest.Seeded{})
			if code := runStep(t, nil, contract.StepVerify, "--shard-dir", sd, "--insecure", insecure, "--retries", "2"); code != tc.code {
				t.Errorf("verify --shard-dir: exit %d, want %d", code, tc.code)
			}
			var v verify.Result
			b, _ := os.ReadFile(filepath.Join(sd, contract.VerifyResult))
			if err := json.Unmarshal(b, &v); err != nil || v.OK() {
				t.Fatalf("verify.json %s (%v): want failures", b, err)
			}
			if code := runStep(t, nil, contract.StepVerify, "--run-dir", dir); code != tc.code {
				t.Errorf("verify --run-dir (the report): exit %d, want %d", code, tc.code)
			}
		})
	}
}

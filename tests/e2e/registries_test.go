package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// servers are the registry implementations the engine is tried against,
// each started the way a user would meet it.
var servers = map[string]func(t *testing.T) *regtest.Registry{
	// Debian's distribution 2.8: TLS and htpasswd (Basic), no referrers API.
	"distribution-2.8": func(t *testing.T) *regtest.Registry {
		return regtest.StartDistribution(t, regtest.Options{TLS: true, Auth: true})
	},
	// distribution v3 with bearer tokens from our issuer that live 2 s: a
	// migration outlives many of them.
	"distribution-v3-token": func(t *testing.T) *regtest.Registry {
		ti := regtest.StartTokenIssuer(t, regtest.TokenOptions{TTL: 2 * time.Second})
		return regtest.StartDistribution(t, regtest.Options{Version: regtest.DistributionV3Version, TLS: true, Token: ti})
	},
	// distribution v3 on S3 (gofakes3 on another host): blob GETs and HEADs
	// redirect to presigned URLs there.
	"distribution-v3-s3": func(t *testing.T) *regtest.Registry {
		return regtest.StartDistribution(t, regtest.Options{Version: regtest.DistributionV3Version, TLS: true, Auth: true, S3: true})
	},
	// olareg: an independent OCI 1.1 registry with the referrers API, plain HTTP.
	"olareg": func(t *testing.T) *regtest.Registry { return regtest.StartOlareg(t) },
}

// The project's corpus (Docker and OCI media types, multi-arch indexes, a
// nested index, a cosign signature tag, a Helm chart, an OCI 1.1 referrer,
// a zstd layer)
// migrated between pairs of independent registry implementations, through a
// migration.yaml as a user writes it (per-registry insecure, an authfile, a
// certs.d folder), then read back with go-containerregistry (crane's library)
// down to every blob, each checked against its digest.
func TestRunBetweenRegistryImplementations(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2]string{
		{"distribution-2.8", "distribution-v3-token"},
		{"distribution-v3-token", "olareg"},
		{"olareg", "distribution-v3-s3"},
		{"distribution-v3-s3", "distribution-2.8"},
	} {
		t.Run(pair[0]+"->"+pair[1], func(t *testing.T) {
			t.Parallel()
			src, dst := servers[pair[0]](t), servers[pair[1]](t)
			seeded := seed(t, src, regtest.Corpus{
				Namespaces: []string{"team-a", "team-b"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 16 << 10,
				MultiArch: true, Nested: true, Signature: true, HelmChart: true, Referrer: true, Zstd: true,
			})
			var list string
			if pair[0] == "olareg" {
				// olareg has no catalog API: the scope is a list, as for
				// GHCR or Docker Hub.
				list = writeFile(t, filepath.Join(t.TempDir(), "images.txt"), strings.Join(sortedRefs(seeded.Tags), "\n")+"\n")
			}
			spec, authFile := writeSpec(t, src, dst, list)
			out := filepath.Join(t.TempDir(), "run")
			if code, _, _ := runCLI(t, nil, "run", "-f", spec, "--out", out, "--progress", "none"); code != contract.ExitOK {
				t.Fatalf("exit %d, want 0", code)
			}
			rep := readReport(t, out)
			if !rep.Verified || rep.Failed != 0 || rep.Copied == 0 {
				t.Fatalf("report: verified %v, copied %d, failed %d", rep.Verified, rep.Copied, rep.Failed)
			}
			assertDeep(t, dst, seeded)
			assertSkopeoReads(t, dst, authFile, seeded)
			// A rerun finds everything in place.
			if code, _, _ := runCLI(t, nil, "run", "-f", spec, "--out", out, "--progress", "none"); code != contract.ExitOK {
				t.Fatalf("rerun exit %d, want 0", code)
			}
			if rep := readReport(t, out); rep.Copied != 0 || rep.Failed != 0 {
				t.Errorf("rerun copied %d, failed %d: want everything skipped", rep.Copied, rep.Failed)
			}
			for _, r := range []*regtest.Registry{src, dst} {
				if r.S3 == nil {
					continue
				}
				reqs, err := r.S3.Requests()
				if err != nil {
					t.Fatal(err)
				}
				presigned := 0
				for _, q := range reqs {
					if q.Presigned {
						presigned++
					}
				}
				if r == src && presigned == 0 {
					t.Errorf("no blob was read through a redirect to S3: the test proves nothing about redirects")
				}
				leaked, err := r.S3.LeakedCredentials()
				if err != nil {
					t.Fatal(err)
				}
				for _, q := range leaked {
					t.Errorf("%s %s on the storage host carried %s credentials of the registry", q.Method, q.Path, q.Auth)
				}
			}
		})
	}
}

// writeSpec writes migration.yaml with an authfile and a certs.d folder for
// the two registries, and marks plain-HTTP ones insecure.
func writeSpec(t *testing.T, src, dst *regtest.Registry, list string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs.d")
	auths := map[string]any{}
	for _, r := range []*regtest.Registry{src, dst} {
		if r.Username != "" {
			// as `docker login` writes it (skopeo reads only this form)
			auths[r.Host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(r.Username + ":" + r.Password))}
		}
		if r.CertsDir != "" {
			if err := os.MkdirAll(certs, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(r.CertsDir, r.Host), filepath.Join(certs, r.Host)); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, _ := json.Marshal(map[string]any{"auths": auths})
	authFile := writeFile(t, filepath.Join(dir, "config.json"), string(b))
	spec := fmt.Sprintf(`apiVersion: regmigrate.io/v1alpha1
kind: Migration
metadata:
  name: field
source:
  registry: %s
  insecure: %v
target:
  registry: %s
  insecure: %v
auth:
  authFile: %s
  certsDir: %s
`, src.Host, src.Scheme == "http", dst.Host, dst.Scheme == "http", authFile, certs)
	if list != "" {
		spec += "images:\n  lists: [" + list + "]\n"
	}
	return writeFile(t, filepath.Join(dir, "migration.yaml"), spec), authFile
}

// assertDeep reads every seeded tag and untagged manifest back from the
// target with go-containerregistry: the tag's digest is the source's, and
// every child manifest and every blob is there with its digest (ggcr checks
// each blob's content against its digest as it reads it).
func assertDeep(t *testing.T, r *regtest.Registry, seeded regtest.Seeded) {
	t.Helper()
	opts := r.RemoteOptions()
	seen := map[string]bool{}
	var walk func(repo, digest string, raw []byte)
	walk = func(repo, digest string, raw []byte) {
		if seen[repo+"@"+digest] {
			return
		}
		seen[repo+"@"+digest] = true
		var m struct {
			Manifests []struct{ Digest string }
			Config    *struct{ Digest string }
			Layers    []struct {
				Digest string
				URLs   []string
			}
			Subject *struct{ Digest string }
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Errorf("%s@%s: %v", repo, digest, err)
			return
		}
		for _, c := range m.Manifests {
			d, err := remote.Get(digestRef(t, r, repo, c.Digest), opts...)
			if err != nil || d.Digest.String() != c.Digest {
				t.Errorf("%s@%s: child %s missing or different on the target: %v", repo, digest, c.Digest, err)
				continue
			}
			walk(repo, c.Digest, d.Manifest)
		}
		var blobs []string
		if m.Config != nil {
			blobs = append(blobs, m.Config.Digest)
		}
		for _, l := range m.Layers {
			if len(l.URLs) == 0 {
				blobs = append(blobs, l.Digest)
			}
		}
		for _, b := range blobs {
			l, err := remote.Layer(digestRef(t, r, repo, b), opts...)
			if err == nil {
				var rc io.ReadCloser
				if rc, err = l.Compressed(); err == nil {
					_, err = io.Copy(io.Discard, rc)
					if cerr := rc.Close(); err == nil {
						err = cerr
					}
				}
			}
			if err != nil {
				t.Errorf("%s@%s: blob %s: %v", repo, digest, b, err)
			}
		}
	}
	for ref, want := range seeded.Tags {
		tr, err := name.ParseReference(r.Host+"/"+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		d, err := remote.Get(tr, opts...)
		if err != nil {
			t.Errorf("%s missing on the target: %v", ref, err)
			continue
		}
		if d.Digest.String() != want {
			t.Errorf("%s: target digest %s, source %s", ref, d.Digest, want)
			continue
		}
		walk(tr.Context().RepositoryStr(), want, d.Manifest)
	}
	for _, u := range seeded.Untagged {
		repo, digest, _ := strings.Cut(u, "@")
		d, err := remote.Get(digestRef(t, r, repo, digest), opts...)
		if err != nil {
			t.Errorf("%s missing on the target: %v", u, err)
			continue
		}
		walk(repo, digest, d.Manifest)
	}
}

func digestRef(t *testing.T, r *regtest.Registry, repo, digest string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(r.Host+"/"+repo+"@"+digest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// assertSkopeoReads has skopeo (containers/image, a client no one here
// wrote) read what regmigrate wrote: every tag's manifest with the source
// digest, and the images of a Docker manifest list, an OCI index, the zstd
// image and the Helm chart down to their blobs (skopeo checks each against
// its digest).
func assertSkopeoReads(t *testing.T, r *regtest.Registry, authFile string, seeded regtest.Seeded) {
	t.Helper()
	bin, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatalf("skopeo is not installed (make deps installs Debian's skopeo): %v", err)
	}
	args := []string{"--authfile", authFile}
	if r.Scheme == "http" {
		args = append(args, "--tls-verify=false")
	} else {
		args = append(args, "--cert-dir", filepath.Join(r.CertsDir, r.Host))
	}
	skopeo := func(a ...string) []byte {
		cmd := exec.Command(bin, a...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		var stderrBuf strings.Builder
		cmd.Stderr = &stderrBuf
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("skopeo %s: %v\n%s", strings.Join(a, " "), err, stderrBuf.String())
		}
		return out
	}
	for ref, want := range seeded.Tags {
		raw := skopeo(append([]string{"inspect", "--raw"}, append(args, "docker://"+r.Host+"/"+ref)...)...)
		if raw == nil {
			continue
		}
		if got := fmt.Sprintf("sha256:%x", sha256.Sum256(raw)); got != want {
			t.Errorf("skopeo reads %s as %s, the source has %s", ref, got, want)
		}
	}
	// (skopeo 1.9 cannot copy a nested index: it reads that one raw, above.)
	for _, ref := range []string{"team-a/app0:v0", "team-b/app0:v0", "team-a/app0:zstd", "team-a/charts/mychart:0.1.0"} {
		dir := filepath.Join(t.TempDir(), "oci")
		a := []string{"copy", "--all", "--quiet", "--src-authfile", authFile}
		if r.Scheme == "http" {
			a = append(a, "--src-tls-verify=false")
		} else {
			a = append(a, "--src-cert-dir", filepath.Join(r.CertsDir, r.Host))
		}
		skopeo(append(a, "docker://"+r.Host+"/"+ref, "oci:"+dir+":x")...)
	}
}

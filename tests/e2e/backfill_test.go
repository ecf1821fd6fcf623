package e2e

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/faultproxy"
	double "github.com/regmigrate/regmigrate/tests/imageapi"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// doubleKubeconfig serves the Image API double and writes a kubeconfig for it.
func doubleKubeconfig(t *testing.T, group string) (*double.Double, string) {
	t.Helper()
	d := double.New(double.Options{Group: group})
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["double"] = &clientcmdapi.Cluster{Server: srv.URL}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["double"] = &clientcmdapi.Context{Cluster: "double", AuthInfo: "user"}
	cfg.CurrentContext = "double"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return d, path
}

type backfillJSON struct {
	Total, Success, Applied, Skipped, Failed int
}

func readBackfill(t *testing.T, run string) backfillJSON {
	t.Helper()
	var sum backfillJSON
	files, _ := filepath.Glob(filepath.Join(run, "shards", "*", contract.BackfillJSON))
	if len(files) == 0 {
		t.Fatal("no backfill.json in the run directory")
	}
	for _, f := range files {
		var b backfillJSON
		raw, _ := os.ReadFile(f)
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		sum.Total += b.Total
		sum.Applied += b.Applied
		sum.Skipped += b.Skipped
		sum.Failed += b.Failed
	}
	return sum
}

// TestRunCopyThenBackfill is runbook scenario B: copy, backfill the Image
// API from the target, verify; the rerun applies nothing.
func TestRunCopyThenBackfill(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, src, regtest.Corpus{Namespaces: []string{"team-a", "team-b"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 8 << 10, MultiArch: true})
	d, kc := doubleKubeconfig(t, "image.alauda.io")
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, _ := runCLI(t, nil, "run", "--from", src.Host, "--to", dst.Host, "--insecure", "--out", out, "--progress", "none", "--kubeconfig", kc)
	if code != contract.ExitOK {
		t.Fatalf("exit %d", code)
	}
	assertMirrored(t, dst.Host, seeded.Tags)
	b := readBackfill(t, out)
	if b.Applied != len(seeded.Tags) || b.Failed != 0 {
		t.Errorf("backfill %+v, want %d applied", b, len(seeded.Tags))
	}
	for ref, digest := range seeded.Tags {
		repo, tag, _ := strings.Cut(ref, ":")
		ns, stream, _ := strings.Cut(repo, "/")
		is, ok := d.ImageStream(ns, stream)
		if !ok {
			t.Errorf("no ImageStream %s", repo)
			continue
		}
		var got string
		for _, tg := range is.Status.Tags {
			if tg.Tag == tag && len(tg.Items) > 0 {
				got = tg.Items[0].DockerImageReference
			}
		}
		if want := dst.Host + "/" + repo + "@" + digest; got != want {
			t.Errorf("%s: tag event references %q, want %q", ref, got, want)
		}
	}
	if !strings.Contains(readFile(t, filepath.Join(out, "report.md")), "image.alauda.io/v1") {
		t.Error("report.md does not say which Image API was backfilled")
	}
	_ = stdout

	out2 := filepath.Join(t.TempDir(), "run")
	if code, _, _ := runCLI(t, nil, "run", "--from", src.Host, "--to", dst.Host, "--insecure", "--out", out2, "--progress", "none", "--kubeconfig", kc); code != contract.ExitOK {
		t.Fatalf("rerun exit %d", code)
	}
	if b := readBackfill(t, out2); b.Skipped != len(seeded.Tags) || b.Applied != 0 {
		t.Errorf("rerun backfill %+v, want everything skipped", b)
	}
}

// TestRunReuseStorage is runbook scenario A: the new registry serves the
// legacy registry's storage; nothing is copied, the metadata is read from
// the legacy registry, and verification goes through the new one.
func TestRunReuseStorage(t *testing.T) {
	t.Parallel()
	storage := t.TempDir()
	legacy := regtest.StartDistribution(t, regtest.Options{DataDir: storage})
	seeded := seed(t, legacy, regtest.Corpus{Namespaces: []string{"shop"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 8 << 10, MultiArch: true})
	newReg := regtest.StartDistribution(t, regtest.Options{DataDir: storage})
	d, kc := doubleKubeconfig(t, "image.openshift.io")
	px := newProxyCounting(t, legacy)
	out := filepath.Join(t.TempDir(), "run")
	code, _, _ := runCLI(t, nil, "run", "--from", px.Host, "--to", newReg.Host, "--insecure", "--out", out, "--progress", "none",
		"--kubeconfig", kc, "--strategy", "reuse-storage")
	if code != contract.ExitOK {
		t.Fatalf("exit %d", code)
	}
	rep := readReport(t, out)
	if rep.Copied != 0 || rep.Bytes != 0 || !rep.Verified {
		t.Errorf("report copied %d bytes %d verified %v: reuse-storage copies nothing and verifies through the new registry", rep.Copied, rep.Bytes, rep.Verified)
	}
	if st := px.Stats(); st.BlobBytes != 0 {
		t.Errorf("%d blob bytes read from the legacy registry, want none", st.BlobBytes)
	}
	if b := readBackfill(t, out); b.Applied != len(seeded.Tags) {
		t.Errorf("backfill %+v, want %d applied", b, len(seeded.Tags))
	}
	is, ok := d.ImageStream("shop", "app0")
	if !ok || len(is.Status.Tags) == 0 || !strings.HasPrefix(is.Status.Tags[0].Items[0].DockerImageReference, newReg.Host+"/shop/app0@") {
		t.Errorf("ImageStream shop/app0 %+v: want tags referencing the new registry", is)
	}
}

func newProxyCounting(t *testing.T, r *regtest.Registry) *faultproxy.Proxy {
	t.Helper()
	return faultproxy.New(t, "http://"+r.Host)
}

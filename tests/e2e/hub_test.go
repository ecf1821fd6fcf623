package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/pipeline"
	"github.com/regmigrate/regmigrate/tests/hubdouble"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// A Docker Hub source: the organisation's repositories come from Hub's
// API (paginated: the double serves two a page), other organisations stay
// out, and the pull quota (4 manifest GETs per 2 s window) is read before
// anything is pulled, compared with what the plan needs (6 tags), and the
// run paces itself to it: it spends what is left, waits for the window to
// reopen (saying so), and draws no 429.
func TestHubSourceListsTheOrganisationAndPacesToItsPullQuota(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	acme := seed(t, src, regtest.Corpus{Namespaces: []string{"acme"}, ReposPerNS: 3, TagsPerRepo: 2, LayerSize: 16 << 10})
	other := seed(t, src, regtest.Corpus{Namespaces: []string{"other"}, ReposPerNS: 1, TagsPerRepo: 1, LayerSize: 16 << 10})
	hub := hubdouble.Start(t, hubdouble.Options{Upstream: src.URL(), Limit: 4, Window: 2 * time.Second, MaxPageSize: 2})

	out := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := runCLI(t, map[string]string{"REGMIGRATE_HUB_API": hub.API},
		"run", "--from", hub.Host, "--hub-org", "acme", "--to", dst.Host, "--insecure", "--out", out, "--progress", "lines")
	if code != contract.ExitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	if !strings.Contains(stdout, "6 images: 6 copied, 0 skipped, 0 failed; verified") {
		t.Errorf("summary: want 6 images copied and verified:\n%s", stdout)
	}
	assertMirrored(t, dst.Host, acme.Tags)
	for ref := range other.Tags {
		r, _ := name.ParseReference(dst.Host+"/"+ref, name.Insecure)
		if _, err := remote.Head(r); err == nil {
			t.Errorf("%s is on the target: only the organisation acme was to move", ref)
		}
	}
	st := hub.Stats()
	if st.Pages < 2 {
		t.Errorf("the Hub API served %d pages for 3 repositories at 2 a page: the listing must follow next", st.Pages)
	}
	if st.TooMany != 0 {
		t.Errorf("the registry answered 429 %d times: the run must pace itself to the quota it read", st.TooMany)
	}
	if st.ManifestGETs < 6 {
		t.Errorf("%d manifest GETs for 6 images", st.ManifestGETs)
	}
	for _, want := range []string{
		"pull quota: 4 of 4 pulls left per 2s; the plan needs about 6 manifest GETs",
		"2 more than are left",
		"waiting: the pull quota of " + hub.Host + " is spent",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	var checks []pipeline.QuotaCheck
	b, err := os.ReadFile(filepath.Join(out, pipeline.QuotaFile))
	if err != nil || json.Unmarshal(b, &checks) != nil || len(checks) != 1 || checks[0].Needed != 6 || checks[0].Enough {
		t.Errorf("%s: %s (%v): want one check, 6 needed, not enough", pipeline.QuotaFile, b, err)
	}
	if md := readFile(t, filepath.Join(out, contract.ReportMD)); !strings.Contains(md, "the plan needs about 6 manifest GETs") {
		t.Errorf("report.md does not say what the quota check found")
	}
}

// A registry that states its quota only when it is spent (a 429 with
// Retry-After): the run waits for the window instead of failing, says why
// it waits, and completes; a repository whose pulls are denied fails
// alone, the others are copied.
func TestHub429WaitsForTheWindowAndAFailedImageDoesNotStopOthers(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	acme := seed(t, src, regtest.Corpus{Namespaces: []string{"acme"}, ReposPerNS: 3, TagsPerRepo: 2, LayerSize: 16 << 10})
	hub := hubdouble.Start(t, hubdouble.Options{Upstream: src.URL(), Limit: 3, Window: 2 * time.Second, QuietQuota: true, RetryAfter: true,
		Denied: []string{"acme/app2"}})

	out := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := runCLI(t, map[string]string{"REGMIGRATE_HUB_API": hub.API},
		"run", "--from", hub.Host, "--hub-org", "acme", "--to", dst.Host, "--insecure", "--out", out, "--progress", "lines", "--jobs", "2")
	if code != contract.ExitFailed {
		t.Errorf("exit %d, want %d (the pulls of acme/app2 are denied)", code, contract.ExitFailed)
	}
	pulled := map[string]string{}
	for ref, d := range acme.Tags {
		if !strings.HasPrefix(ref, "acme/app2:") {
			pulled[ref] = d
		}
	}
	assertMirrored(t, dst.Host, pulled)
	if !strings.Contains(stdout, "6 images: 4 copied, 0 skipped, 2 failed") {
		t.Errorf("summary: want 4 images copied and the 2 denied failed:\n%s", stdout)
	}
	st := hub.Stats()
	if st.TooMany == 0 {
		t.Fatalf("the registry never answered 429: the test proves nothing")
	}
	if !strings.Contains(stderr, "answered 429 Too Many Requests: waiting") {
		t.Errorf("stderr does not say the run waits for a 429")
	}
	rep := readFile(t, filepath.Join(out, contract.ReportMD))
	if !strings.Contains(rep, "acme/app2") || !strings.Contains(rep, "403") {
		t.Errorf("report.md does not name the denied repository and why")
	}
}

// Official images: a list line `busybox` on a Hub source is Hub's
// library/busybox; it keeps library/ on the target by default
// (docker/migrator's LIBRARY_NAMESPACE=true), and --no-library-namespace
// writes it as busybox. skopeo reads what was written.
func TestHubOfficialImagesAndTheLibraryNamespace(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	lib := seed(t, src, regtest.Corpus{Namespaces: []string{"library"}, ReposPerNS: 2, TagsPerRepo: 1, LayerSize: 16 << 10})
	hub := hubdouble.Start(t, hubdouble.Options{Upstream: src.URL()})
	list := filepath.Join(t.TempDir(), "images.txt")
	if err := os.WriteFile(list, []byte("app0:v0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REGMIGRATE_HUB_API": hub.API}

	code, _, _ := runCLI(t, env, "run", "--from", hub.Host, "--hub-org", "library", "--images", list, "--to", dst.Host, "--insecure",
		"--out", filepath.Join(t.TempDir(), "run-1"), "--progress", "none")
	if code != contract.ExitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	assertMirrored(t, dst.Host, map[string]string{"library/app0:v0": lib.Tags["library/app0:v0"]})

	code, _, _ = runCLI(t, env, "run", "--from", hub.Host, "--hub-org", "library", "--no-library-namespace", "--to", dst.Host+"/official", "--insecure",
		"--out", filepath.Join(t.TempDir(), "run-2"), "--progress", "none")
	if code != contract.ExitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	want := map[string]string{}
	for ref, d := range lib.Tags {
		want["official/"+strings.TrimPrefix(ref, "library/")] = d
	}
	assertMirrored(t, dst.Host, want)
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatalf("skopeo is not installed (make deps installs Debian's skopeo): %v", err)
	}
	b, err := exec.Command(skopeo, "inspect", "--tls-verify=false", "--raw", "docker://"+dst.Host+"/official/app1:v0").CombinedOutput()
	if err != nil || !strings.Contains(string(b), "schemaVersion") {
		t.Errorf("skopeo cannot read official/app1:v0 on the target: %v\n%s", err, b)
	}
}

// A Hub organisation that does not exist, or is private without a login,
// is a clear error that says what to do; Hub's API is asked, never the
// registry's catalog.
func TestHubUnknownOrganisationSaysWhatToDo(t *testing.T) {
	t.Parallel()
	src := regtest.StartInProcess(t)
	dst := regtest.StartInProcess(t)
	hub := hubdouble.Start(t, hubdouble.Options{Upstream: src.URL()})
	code, _, stderr := runCLI(t, map[string]string{"REGMIGRATE_HUB_API": hub.API},
		"run", "--from", hub.Host, "--hub-org", "nosuchorg", "--to", dst.Host, "--insecure", "--out", filepath.Join(t.TempDir(), "run"), "--progress", "none")
	if code == contract.ExitOK {
		t.Fatalf("exit 0 for an organisation Hub does not know")
	}
	if !strings.Contains(stderr, `Docker Hub has no organisation or user "nosuchorg" (check the name; a private one is listed with a login`) {
		t.Errorf("stderr does not say the organisation is unknown")
	}
}

// A private Hub organisation is listed with the login the run holds for
// the registry (a docker config's entry, as an Argo pod mounts it), with
// no Hub-specific setting; Hub's API refusing that login leaves the run
// with what it shows anonymously, and a warning. The password appears in
// no output.
func TestHubPrivateOrganisationWithTheRegistryLogin(t *testing.T) {
	t.Parallel()
	src := regtest.StartDistribution(t, regtest.Options{})
	acme := seed(t, src, regtest.Corpus{Namespaces: []string{"acme"}, ReposPerNS: 2, TagsPerRepo: 1, LayerSize: 4 << 10})
	const secret = "s3cret-hub-token"
	hub := hubdouble.Start(t, hubdouble.Options{Upstream: src.URL(), Username: "bot", Password: secret, Private: []string{"acme"}})
	authfile := func(user, pass string) string {
		p := filepath.Join(t.TempDir(), "config.json")
		cfg := map[string]any{"auths": map[string]any{hub.Host: map[string]string{
			"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}}}
		b, _ := json.Marshal(cfg)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := map[string]string{"REGMIGRATE_HUB_API": hub.API}

	dst := regtest.StartDistribution(t, regtest.Options{})
	code, stdout, stderr := runCLI(t, env, "run", "--from", hub.Host, "--hub-org", "acme", "--authfile", authfile("bot", secret),
		"--to", dst.Host, "--insecure", "--out", filepath.Join(t.TempDir(), "run"), "--progress", "none")
	if code != contract.ExitOK || !strings.Contains(stdout, "2 images: 2 copied") {
		t.Fatalf("exit %d, want the private organisation's 2 images copied:\n%s", code, stdout)
	}
	assertMirrored(t, dst.Host, acme.Tags)
	if strings.Contains(stdout+stderr, secret) {
		t.Error("the Hub password appears in the output")
	}

	// A login Hub's API refuses: the private organisation shows nothing
	// anonymously, and the run says both why and what it did.
	code, stdout, stderr = runCLI(t, env, "run", "--from", hub.Host, "--hub-org", "acme", "--authfile", authfile("bot", "wrong-"+secret),
		"--to", regtest.StartInProcess(t).Host, "--insecure", "--out", filepath.Join(t.TempDir(), "run"), "--progress", "none")
	if code == contract.ExitOK {
		t.Errorf("exit 0 with a refused login to a private organisation:\n%s", stdout)
	}
	if !strings.Contains(stderr, "refused the login the run holds for the source registry") {
		t.Errorf("stderr does not say Hub's API refused the registry login")
	}
	if strings.Contains(stdout+stderr, secret) {
		t.Error("the Hub password appears in the output")
	}
}

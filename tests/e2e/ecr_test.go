package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/clouddouble"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// ecrEnv points aws-sdk-go-v2's standard credential chain at the double:
// keys in the environment (the SDK reads the process environment itself),
// no shared files, no instance metadata.
func ecrEnv(t *testing.T, d *clouddouble.ECR) {
	t.Setenv("AWS_ENDPOINT_URL", d.API)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDREGMIGRATETEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "e2e-secret-key-never-logged")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// mirrorWarnings reads the shards' mirror.json warnings and created
// repositories of a run directory.
func mirrorResults(t *testing.T, dir string) (warnings, created []string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "shards", "*", contract.MirrorResult))
	if len(files) == 0 {
		t.Fatalf("no %s in %s", contract.MirrorResult, dir)
	}
	for _, f := range files {
		var r struct {
			Warnings            []string
			RepositoriesCreated []string
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		warnings = append(warnings, r.Warnings...)
		created = append(created, r.RepositoriesCreated...)
	}
	sort.Strings(created)
	return warnings, created
}

// A migration to Amazon ECR, against a double of ECR's API (the real
// aws-sdk-go-v2 pointed at it by AWS_ENDPOINT_URL) in front of a real
// registry that takes only the tokens the API issued, for 0.8 s each: the
// dry run lists the repositories it would create; --no-create-repositories
// fails the images of the missing ones and copies the others; the real run
// creates them with the spec's settings and, lasting more than three token
// lifetimes, completes and verifies.
func TestRunToECR(t *testing.T) {
	src := regtest.StartDistribution(t, regtest.Options{})
	seeded := seed(t, src, regtest.Corpus{Namespaces: []string{"team-a", "team-b"}, ReposPerNS: 2, TagsPerRepo: 3, LayerSize: 16 << 10, MultiArch: true, Signature: true})
	back := regtest.StartDistribution(t, regtest.Options{Version: regtest.DistributionV3Version})
	const ttl = 800 * time.Millisecond
	d := clouddouble.StartECR(t, clouddouble.ECROptions{
		Backend: back.URL(), TokenTTL: ttl, Latency: 120 * time.Millisecond,
		Repositories: []string{"team-a/app0"}, // made by hand before: its images go whatever
	})
	ecrEnv(t, d)
	dir := t.TempDir()
	policy := `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`
	if err := os.WriteFile(filepath.Join(dir, "lifecycle.json"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	specFile := filepath.Join(dir, "migration.yaml")
	if err := os.WriteFile(specFile, []byte(`apiVersion: regmigrate.io/v1alpha1
kind: Migration
metadata:
  name: to-ecr
source:
  registry: `+src.Host+`
  insecure: true
target:
  registry: `+d.Host+`
  insecure: true
  keychain: ecr
  ecr:
    region: us-east-1
    account: "123456789012"
    tagImmutability: true
    scanOnPush: true
    encryption: KMS
    kmsKey: arn:aws:kms:us-east-1:123456789012:key/regmigrate
    lifecyclePolicyFile: lifecycle.json
copy:
  jobs: 2
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var want []string // the repositories the scope needs, but team-a/app0
	for ref := range seeded.Tags {
		repo, _, _ := strings.Cut(ref, ":")
		if repo != "team-a/app0" && !slices.Contains(want, d.Host+"/"+repo) {
			want = append(want, d.Host+"/"+repo)
		}
	}
	sort.Strings(want)

	t.Run("dry run lists the repositories to create", func(t *testing.T) {
		out := filepath.Join(dir, "dry")
		code, _, _ := runCLI(t, nil, "run", "-f", specFile, "--dry-run", "--out", out, "--progress", "none")
		if code != contract.ExitOK {
			t.Fatalf("exit %d", code)
		}
		warnings, created := mirrorResults(t, out)
		if !slices.Equal(created, want) {
			t.Errorf("repositories to create: %v, want %v", created, want)
		}
		if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "would be created") }) {
			t.Errorf("no warning says which repositories would be created: %q", warnings)
		}
		md, err := os.ReadFile(filepath.Join(out, contract.ReportMD))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(md), "repositories would be created on "+d.Host+": team-a/app1, team-b/app0") {
			t.Errorf("report.md does not list the repositories the run would create:\n%s", md)
		}
		if c := d.Created(); len(c) != 0 {
			t.Errorf("a dry run created %v", c)
		}
	})

	t.Run("no-create-repositories fails only their images", func(t *testing.T) {
		out := filepath.Join(dir, "refuse")
		code, _, _ := runCLI(t, nil, "run", "-f", specFile, "--no-create-repositories", "--out", out, "--progress", "none")
		if code != contract.ExitFailed {
			t.Errorf("exit %d, want %d (images failed, a rerun without the flag fixes them)", code, contract.ExitFailed)
		}
		rep := readReport(t, out)
		var copied, failed int
		for _, im := range rep.Images {
			inApp0 := strings.Contains(im.Target, "/team-a/app0:") || strings.Contains(im.Target, "/team-a/app0@")
			switch {
			case im.Status == contract.StatusFailed && !inApp0:
				failed++
				if !strings.Contains(im.Error, "does not exist") || !strings.Contains(im.Error, "--no-create-repositories") {
					t.Errorf("%s: error %q does not say the repository is missing and what to do", im.Target, im.Error)
				}
			case im.Status == contract.StatusCopied && inApp0:
				copied++
			default:
				t.Errorf("%s: %s %s", im.Target, im.Status, im.Error)
			}
		}
		if copied == 0 || failed == 0 {
			t.Errorf("copied %d (team-a/app0), failed %d (the others)", copied, failed)
		}
		if c := d.Created(); len(c) != 0 {
			t.Errorf("--no-create-repositories created %v", c)
		}
	})

	t.Run("creates them and outlives three token lifetimes", func(t *testing.T) {
		d.ResetStats()
		out := filepath.Join(dir, "run")
		code, _, stderr := runCLI(t, nil, "run", "-f", specFile, "--out", out, "--progress", "none")
		if code != contract.ExitOK {
			t.Fatalf("exit %d", code)
		}
		rep := readReport(t, out)
		if !rep.Verified || rep.Failed != 0 {
			t.Fatalf("verified %v, failed %d", rep.Verified, rep.Failed)
		}
		assertMirrored(t, back.Host, seeded.Tags)
		created := d.Created()
		sort.Strings(created)
		var wantNames []string
		for _, w := range want {
			wantNames = append(wantNames, strings.TrimPrefix(w, d.Host+"/"))
		}
		if !slices.Equal(created, wantNames) {
			t.Errorf("created %v, want %v", created, wantNames)
		}
		for _, n := range created {
			r := d.Repo(n)
			if !r.TagImmutable || !r.ScanOnPush || r.EncryptionType != "KMS" || r.KMSKey != "arn:aws:kms:us-east-1:123456789012:key/regmigrate" || r.LifecyclePolicy != policy {
				t.Errorf("%s settings: %+v", n, *r)
			}
		}
		if span := d.Span(); span < 3*ttl {
			t.Fatalf("the run lasted %s with the registry, less than three token lifetimes (%s): the test proves nothing", span, 3*ttl)
		}
		if n := d.Issued(); n < 4 {
			t.Errorf("%d tokens issued during a run of more than three lifetimes: want at least 4", n)
		}
		if strings.Contains(stderr, "e2e-secret-key-never-logged") {
			t.Error("the AWS secret key is in the output")
		}
		t.Logf("%d tokens issued, %d used, %d requests with an expired token (renewed on 401), run spanned %s", d.Issued(), d.TokensUsed(), d.Refused(), d.Span())
	})
}

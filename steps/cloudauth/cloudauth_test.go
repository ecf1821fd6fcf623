package cloudauth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/regmigrate/regmigrate/steps/cloudauth"
)

func resource(t *testing.T, repo string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]cloudauth.Kind{
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com":      cloudauth.ECR,
		"123456789012.dkr.ecr-fips.us-east-1.amazonaws.com": cloudauth.ECR,
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn":  cloudauth.ECR,
		"public.ecr.aws":                  cloudauth.Files,
		"gcr.io":                          cloudauth.Google,
		"eu.gcr.io":                       cloudauth.Google,
		"europe-west1-docker.pkg.dev":     cloudauth.Google,
		"myreg.azurecr.io":                cloudauth.ACR,
		"ghcr.io":                         cloudauth.GHCR,
		"registry.gitlab.com":             cloudauth.GitLab,
		"registry.example:5000":           cloudauth.Files,
		"127.0.0.1:5000":                  cloudauth.Files,
		"dkr.ecr.us-east-1.amazonaws.com": cloudauth.Files,
	} {
		if got := cloudauth.KindOf(host); got != want {
			t.Errorf("KindOf(%s) = %q, want %q", host, got, want)
		}
	}
	if a, r := cloudauth.ECRAccountRegion("123456789012.dkr.ecr.eu-west-1.amazonaws.com"); a != "123456789012" || r != "eu-west-1" {
		t.Errorf("ECRAccountRegion: %s %s", a, r)
	}
}

func TestParseFlag(t *testing.T) {
	t.Parallel()
	host, r, err := cloudauth.ParseFlag("127.0.0.1:5000=ecr:eu-west-1:123456789012")
	if err != nil || host != "127.0.0.1:5000" || r != (cloudauth.Registry{Kind: cloudauth.ECR, Region: "eu-west-1", Account: "123456789012"}) {
		t.Errorf("ParseFlag: %s %+v %v", host, r, err)
	}
	if got := cloudauth.Flag(host, r); got != "127.0.0.1:5000=ecr:eu-west-1:123456789012" {
		t.Errorf("Flag round trip: %s", got)
	}
	if _, _, err := cloudauth.ParseFlag("h=vault"); err == nil {
		t.Error("an unknown keychain was taken")
	}
}

// The credential files stay first for a host they have an entry for; the
// environment's tokens answer for GHCR and GitLab otherwise.
func TestFilesFirstThenEnvironmentTokens(t *testing.T) {
	t.Parallel()
	env := map[string]string{"GHCR_TOKEN": "ghp_env", "GITHUB_ACTOR": "octo", "CI_JOB_TOKEN": "job-token"}
	files := authn.NewMultiKeychain(staticKeychain{"ghcr.io": {Username: "fromfile", Password: "filepass"}})
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		regs    map[string]cloudauth.Registry
		env     map[string]string
		repo    string
		user    string
		pass    string
		wantErr bool
	}{
		{"files win for a host they name", nil, env, "ghcr.io/org/app", "fromfile", "filepass", false},
		{"named ghcr skips the files", map[string]cloudauth.Registry{"ghcr.io": {Kind: cloudauth.GHCR}}, env, "ghcr.io/org/app", "octo", "ghp_env", false},
		{"gitlab job token", nil, env, "registry.gitlab.com/g/p", "gitlab-ci-token", "job-token", false},
		{"gitlab token needs its user", nil, map[string]string{"GITLAB_TOKEN": "glpat"}, "registry.gitlab.com/g/p", "", "", true},
		{"anonymous named", map[string]cloudauth.Registry{"ghcr.io": {Kind: cloudauth.Anonymous}}, env, "ghcr.io/org/app", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kc := cloudauth.New(cloudauth.Options{Files: files, Registries: tc.regs, Getenv: func(k string) string { return tc.env[k] }})
			a, err := kc.ResolveContext(ctx, resource(t, tc.repo))
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				if want := "GITLAB_USER"; !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := a.Authorization()
			if cfg.Username != tc.user || cfg.Password != tc.pass {
				t.Errorf("got %s/%s, want %s/%s", cfg.Username, cfg.Password, tc.user, tc.pass)
			}
		})
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

type staticKeychain map[string]authn.AuthConfig

func (k staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if c, ok := k[r.RegistryStr()]; ok {
		return authn.FromConfig(c), nil
	}
	return authn.Anonymous, nil
}

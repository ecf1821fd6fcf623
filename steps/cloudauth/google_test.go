package cloudauth_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/steps/cloudauth"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/tests/clouddouble"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// The Google keychain finds its identity as on GKE with workload identity:
// no key file, no gcloud, the metadata server (GCE_METADATA_HOST, the
// override Google's Go libraries honour) gives access tokens; the registry
// takes them through Artifact Registry's token flow. Access tokens living
// 2 s, a copy lasting several of them gets new ones.
func TestGoogleMetadataServerTokensAreRenewed(t *testing.T) {
	back := regtest.StartInProcess(t)
	src := regtest.StartInProcess(t)
	g := clouddouble.StartGoogle(t, clouddouble.GoogleOptions{Backend: back.URL(), TokenTTL: 2 * time.Second})
	t.Setenv("GCE_METADATA_HOST", g.MetadataHost)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("HOME", t.TempDir())            // no gcloud application_default_credentials.json
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir()) // nor gcloud's configuration
	t.Setenv("PATH", t.TempDir())            // nor gcloud
	var logs syncBuffer
	kc := cloudauth.New(cloudauth.Options{Registries: map[string]cloudauth.Registry{g.Host: {Kind: cloudauth.Google}}})
	slow := slowBlobs(t, src.URL(), 1200*time.Millisecond, false)
	c := registry.New(registry.Options{
		Keychain: kc, Insecure: registry.InsecureHosts(g.Host, slow), RetryBase: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range 3 {
		l := layer(t, src.Host, "proj/repo/app", int64(16<<10+i))
		if n, err := c.CopyBlob(ctx, slow, "proj/repo/app", g.Host, "proj/repo/app", l); err != nil || n != l.Size {
			t.Fatalf("copy %d: %d %v\n%s", i, n, err, logs.String())
		}
		if ok, err := c.HeadBlob(ctx, g.Host, "proj/repo/app", l.Digest); !ok || err != nil {
			t.Fatalf("blob %d not on the target: %v", i, err)
		}
	}
	if g.Issued() < 2 || g.AccessTokensUsed() < 2 {
		t.Errorf("access tokens issued %d, used %d: want at least 2 over copies lasting 3.6 s of 2 s tokens", g.Issued(), g.AccessTokensUsed())
	}
	if strings.Contains(logs.String(), "ya29.") {
		t.Error("an access token is in the logs")
	}
}

// Chosen by host (gcr.io, *-docker.pkg.dev), without any Google identity,
// the keychain answers anonymously, as go-containerregistry's does: public
// images stay readable. Named in the spec, it says what it tried.
func TestGoogleWithoutIdentity(t *testing.T) {
	t.Setenv("GCE_METADATA_HOST", "127.0.0.1:1") // nothing listens
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	ctx := context.Background()
	kc := cloudauth.New(cloudauth.Options{Registries: map[string]cloudauth.Registry{"127.0.0.1:5000": {Kind: cloudauth.Google}}})
	res := resource(t, "europe-docker.pkg.dev/proj/repo/app")
	a, err := kc.ResolveContext(ctx, res)
	if err != nil {
		t.Fatalf("by host: %v", err)
	}
	if cfg, _ := a.Authorization(); cfg.Username != "" || cfg.Password != "" {
		t.Errorf("by host without identity: %+v, want anonymous", cfg)
	}
	_, err = kc.ResolveContext(ctx, resource(t, "127.0.0.1:5000/proj/app"))
	if err == nil || !strings.Contains(err.Error(), "GOOGLE_APPLICATION_CREDENTIALS") {
		t.Errorf("named: %v, want an error saying where credentials are looked for", err)
	}
}

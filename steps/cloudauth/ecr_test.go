package cloudauth_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/cloudauth"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/tests/clouddouble"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// awsEnv points aws-sdk-go-v2's standard chain at the double: static keys
// in the environment, no shared files, no instance metadata.
func awsEnv(t *testing.T, d *clouddouble.ECR) {
	t.Setenv("AWS_ENDPOINT_URL", d.API)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDREGMIGRATETEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret-of-anyone")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// layer pushes a random image and returns its first layer.
func layer(t *testing.T, host, repo string, size int64) registry.Descriptor {
	t.Helper()
	img, err := random.Image(size, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/"+repo+":v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	d, _ := ls[0].Digest()
	n, _ := ls[0].Size()
	return registry.Descriptor{Digest: d.String(), Size: n}
}

// slowBlobs delays blob GETs of a registry by d (a slow source: the copy's
// upload to the target waits on it): every one, or only the first.
func slowBlobs(t *testing.T, upstream string, d time.Duration, onlyFirst bool) string {
	t.Helper()
	u, _ := url.Parse(upstream)
	p := httputil.NewSingleHostReverseProxy(u)
	var mu sync.Mutex
	n := 0
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			mu.Lock()
			n++
			first := n == 1
			mu.Unlock()
			if first || !onlyFirst {
				time.Sleep(d)
			}
		}
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// The ECR keychain gets its tokens from the AWS API with the SDK's
// standard chain (keys in the environment), and the registry client
// renews them: before they lapse (the double announces 1.5 s) and, when
// the registry drops one sooner than announced, on the 401 in the middle
// of an upload. The double takes only the tokens it issued.
func TestECRTokensAreRenewed(t *testing.T) {
	src := regtest.StartInProcess(t)
	back := regtest.StartDistribution(t, regtest.Options{Version: regtest.DistributionV3Version})
	for _, tc := range []struct {
		name             string
		ttl, refuseAfter time.Duration
		// the first blob read only is slow (the upload waits on it), not every one
		slowFirstOnly    bool
		wantTokenExpired bool
		wantIssued       int
	}{
		// each copy outlives a token (1.2 s of source each, 1.5 s tokens renewed at 3/4)
		{"renewed before it lapses", 1500 * time.Millisecond, 0, false, false, 3},
		// the registry drops a token long before the 4 s it was announced for
		{"refused mid-upload, then renewed", 4 * time.Second, 700 * time.Millisecond, true, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := "team/" + strings.ReplaceAll(tc.name, " ", "-")
			repo = strings.ReplaceAll(repo, ",", "")
			d := clouddouble.StartECR(t, clouddouble.ECROptions{Backend: back.URL(), TokenTTL: tc.ttl, RefuseAfter: tc.refuseAfter, Repositories: []string{repo}})
			awsEnv(t, d)
			var logs syncBuffer
			kc := cloudauth.New(cloudauth.Options{Registries: map[string]cloudauth.Registry{d.Host: {Kind: cloudauth.ECR}}})
			slow := slowBlobs(t, src.URL(), 1200*time.Millisecond, tc.slowFirstOnly)
			c := registry.New(registry.Options{
				Keychain: kc, Insecure: registry.InsecureHosts(d.Host, slow), RetryBase: time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			for i := range 3 {
				l := layer(t, src.Host, repo, int64(32<<10+i))
				if n, err := c.CopyBlob(ctx, slow, repo, d.Host, repo, l); err != nil || n != l.Size {
					t.Fatalf("copy %d: %d %v\n%s", i, n, err, logs.String())
				}
				if ok, err := c.HeadBlob(ctx, d.Host, repo, l.Digest); !ok || err != nil {
					t.Fatalf("blob %d not on the target: %v", i, err)
				}
			}
			if d.Issued() < tc.wantIssued || d.TokensUsed() < tc.wantIssued {
				t.Errorf("tokens issued %d, used %d: want at least %d", d.Issued(), d.TokensUsed(), tc.wantIssued)
			}
			if tc.wantTokenExpired != strings.Contains(logs.String(), "TOKEN_EXPIRED") {
				t.Errorf("refused mid-upload: got %v, want %v\n%s", !tc.wantTokenExpired, tc.wantTokenExpired, logs.String())
			}
			if !tc.wantTokenExpired && d.Refused() != 0 {
				t.Errorf("%d requests went out with an expired token: the client should renew before expiry", d.Refused())
			}
			for _, secret := range []string{"not-a-secret-of-anyone"} {
				if strings.Contains(logs.String(), secret) {
					t.Error("the logs hold the AWS secret key")
				}
			}
		})
	}
}

// In a pod with IRSA there is no key: the ServiceAccount's projected token
// (AWS_WEB_IDENTITY_TOKEN_FILE) and AWS_ROLE_ARN lead the SDK's standard
// chain to STS's AssumeRoleWithWebIdentity, and the ECR token is asked for
// with the role's keys. No Secret, nothing regmigrate-specific.
func TestECRWithWebIdentity(t *testing.T) {
	back := regtest.StartInProcess(t)
	d := clouddouble.StartECR(t, clouddouble.ECROptions{Backend: back.URL(), WebIdentityToken: "eyJ.projected.sa-token", Repositories: []string{"team/app"}})
	tokenFile := t.TempDir() + "/token"
	if err := os.WriteFile(tokenFile, []byte("eyJ.projected.sa-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	awsEnv(t, d)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/regmigrate")
	// The web identity provider of config v1.29 builds its STS client
	// before AWS_ENDPOINT_URL applies: STS needs its own override.
	t.Setenv("AWS_ENDPOINT_URL_STS", d.API)
	kc := cloudauth.New(cloudauth.Options{Registries: map[string]cloudauth.Registry{d.Host: {Kind: cloudauth.ECR}}})
	c := registry.New(registry.Options{Keychain: kc, Insecure: registry.InsecureHosts(d.Host)})
	ctx := context.Background()
	if err := c.Login(ctx, d.Host, "team/app"); err != nil {
		t.Fatalf("login with the web identity: %v", err)
	}
	if d.AssumedKey() == "" || d.Calls("GetAuthorizationToken") != 1 {
		t.Errorf("assumed key %q, GetAuthorizationToken calls %d: the token did not come through the web identity", d.AssumedKey(), d.Calls("GetAuthorizationToken"))
	}
}

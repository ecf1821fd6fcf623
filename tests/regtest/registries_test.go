package regtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// versions are the distribution registries tests run against: Debian's
// 2.8 and v3.0.0 built from the module proxy.
var versions = []struct{ name, version string }{
	{"2.8", ""},
	{"v3", DistributionV3Version},
}

func TestDistributionV3(t *testing.T) {
	t.Parallel()
	bin, err := DistributionV3Binary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), "distribution/v3 "+DistributionV3Version) {
		t.Errorf("%s --version: %q, %v", bin, out, err)
	}

	t.Run("plain", func(t *testing.T) {
		t.Parallel()
		r := StartDistribution(t, Options{Version: DistributionV3Version})
		if code := get(t, r, "", ""); code != http.StatusOK {
			t.Errorf("GET /v2/: %d, want 200", code)
		}
		pushPull(t, r, "v3/app")

		// v3.0.0 has no OCI referrers API (404): Seed pushes the
		// tag-schema fallback, through which ggcr finds the referrer.
		s, err := Seed(context.Background(), r.Host, r.RemoteOptions(), Corpus{
			Namespaces: []string{"ns"}, ReposPerNS: 1, TagsPerRepo: 2, MultiArch: true, Referrer: true, Signature: true, HelmChart: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		checkSeeded(t, r, s)
		subject := s.Tags["ns/app0:v1"]
		if _, ok := s.Tags["ns/app0:"+strings.Replace(subject, ":", "-", 1)]; !ok {
			t.Errorf("no referrers fallback tag on v3 (tags %v)", keys(s.Tags))
		}
		if code := status(t, r, "/v2/ns/app0/referrers/"+subject); code != http.StatusNotFound {
			t.Errorf("GET referrers: %d; v3.0.0 has no referrers API, want 404", code)
		}
		d, _ := name.NewDigest(r.Host + "/ns/app0@" + subject)
		idx, err := remote.Referrers(d, r.RemoteOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := idx.IndexManifest()
		if len(im.Manifests) != 1 || "ns/app0@"+im.Manifests[0].Digest.String() != s.Untagged[0] || im.Manifests[0].ArtifactType != SBOMArtifactType {
			t.Errorf("referrers of %s: %+v, want %v", subject, im.Manifests, s.Untagged)
		}
	})

	t.Run("tls-htpasswd", func(t *testing.T) {
		t.Parallel()
		r := StartDistribution(t, Options{Version: DistributionV3Version, TLS: true, Auth: true})
		if r.Scheme != "https" || r.Username != Username || r.CAFile == "" {
			t.Errorf("unexpected registry %+v", r)
		}
		if code := get(t, r, r.Username, "wrong"); code != http.StatusUnauthorized {
			t.Errorf("GET /v2/ with a wrong password: %d, want 401", code)
		}
		pushPull(t, r, "v3/secure")
	})

	t.Run("binary", func(t *testing.T) {
		t.Parallel()
		r := StartDistribution(t, Options{Binary: bin, ReadOnly: true})
		img, _ := random.Image(64, 1)
		ref, _ := name.ParseReference(r.Host + "/ro/app:latest")
		if err := remote.Write(ref, img, r.RemoteOptions()...); err == nil {
			t.Error("a read-only v3 registry accepted a push")
		}
	})
}

// status does GET <registry><path> with the registry's client.
func status(t *testing.T, r *Registry, path string) int {
	t.Helper()
	resp, err := (&http.Client{Transport: r.Transport()}).Get(r.URL() + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// referrers does GET /v2/<repo>/referrers/<digest> with the registry's
// client and decodes the index.
func referrers(t *testing.T, r *Registry, repo, digest string) v1.IndexManifest {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.URL()+"/v2/"+repo+"/referrers/"+digest, nil)
	resp, err := (&http.Client{Transport: r.Transport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET referrers of %s: %s: %s", digest, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != string(types.OCIImageIndex) {
		t.Errorf("GET referrers: Content-Type %q", ct)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatalf("referrers of %s: %v: %s", digest, err, body)
	}
	return idx
}

func TestTokenAuth(t *testing.T) {
	t.Parallel()
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			const ttl = 2 * time.Second
			ti := StartTokenIssuer(t, TokenOptions{TTL: ttl})
			r := StartDistribution(t, Options{Version: v.version, TLS: true, Token: ti})
			if r.Username != ti.Username || r.Password != ti.Password || r.CAFile == "" {
				t.Fatalf("registry %+v, issuer %+v", r, ti.Registry)
			}
			for _, h := range []string{r.Host, ti.Host} {
				if _, err := os.Stat(filepath.Join(r.CertsDir, h, "ca.crt")); err != nil {
					t.Errorf("certs.d: %v", err)
				}
			}

			// The issuer: a wrong password is refused, anonymous gets a
			// token that grants nothing.
			if code, _ := fetchToken(t, ti, r.Username, "wrong", "repository:tok/app:pull"); code != http.StatusUnauthorized {
				t.Errorf("token with a wrong password: %d, want 401", code)
			}
			img, err := random.Image(2048, 2)
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := name.ParseReference(r.Host + "/tok/app:latest")
			if err := remote.Write(ref, img, remote.WithTransport(r.Transport())); err == nil {
				t.Error("an anonymous push succeeded")
			}

			// Push and pull through ggcr; the puller keeps its token.
			if err := remote.Write(ref, img, r.RemoteOptions()...); err != nil {
				t.Fatalf("push: %v", err)
			}
			puller, err := remote.NewPuller(r.RemoteOptions()...)
			if err != nil {
				t.Fatal(err)
			}
			pull := func() {
				t.Helper()
				got, err := remote.Image(ref, remote.Reuse(puller))
				if err != nil {
					t.Fatalf("pull: %v", err)
				}
				if err := readAll(got); err != nil {
					t.Fatalf("pull: %v", err)
				}
				if d, _ := got.Digest(); d != must(img.Digest()) {
					t.Errorf("pulled %s, pushed %s", d, must(img.Digest()))
				}
			}
			pull()
			before := ti.Issued()
			pull() // the puller's token is still good: no new one
			if n := ti.Issued(); n != before {
				t.Errorf("tokens issued: %d after a pull, %d after another pull with the same puller", before, n)
			}

			// A token works at once and is refused once its TTL is up, not
			// a minute later (the issuer compensates the registry's leeway).
			code, tok := fetchToken(t, ti, r.Username, r.Password, "repository:tok/app:pull")
			if code != http.StatusOK {
				t.Fatalf("token: %d", code)
			}
			if tok.ExpiresIn != 2 || tok.Token == "" || tok.Token != tok.AccessToken || tok.IssuedAt == "" {
				t.Errorf("token response %+v", tok)
			}
			if code := getManifest(t, r, "tok/app", "latest", tok.Token); code != http.StatusOK {
				t.Errorf("GET manifest with a fresh token: %d, want 200", code)
			}
			time.Sleep(ttl + 1500*time.Millisecond)
			if code := getManifest(t, r, "tok/app", "latest", tok.Token); code != http.StatusUnauthorized {
				t.Errorf("GET manifest with an expired token: %d, want 401", code)
			}

			// The same puller gets a 401 and a new token.
			pull()
			if after := ti.Issued(); after <= before+1 {
				t.Errorf("tokens issued: %d before the sleep (+1 by hand), %d after: no refresh", before, after)
			}

			// The catalog scope is granted.
			reg, _ := name.NewRegistry(r.Host)
			if repos, err := remote.Catalog(context.Background(), reg, r.RemoteOptions()...); err != nil || len(repos) != 1 || repos[0] != "tok/app" {
				t.Errorf("catalog %v, %v", repos, err)
			}
		})
	}
}

func TestTokenIssuerOAuth2(t *testing.T) {
	t.Parallel()
	ti := StartTokenIssuer(t, TokenOptions{Plain: true})
	r := StartDistribution(t, Options{Version: DistributionV3Version, Token: ti})
	if r.Scheme != "http" || ti.Scheme != "http" || r.CAFile != "" {
		t.Errorf("plain registry %+v, issuer %+v", r, ti.Registry)
	}
	pushPull(t, r, "oauth/app")

	post := func(form url.Values) (int, tokenResponse) {
		t.Helper()
		resp, err := http.PostForm(ti.Realm, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tok tokenResponse
		_ = json.NewDecoder(resp.Body).Decode(&tok)
		return resp.StatusCode, tok
	}
	base := url.Values{"client_id": {"regtest"}, "service": {ti.Service}, "scope": {"repository:oauth/app:pull"}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, x := range base {
			v[k] = x
		}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	if code, _ := post(with("grant_type", "password", "username", ti.Username, "password", "wrong")); code != http.StatusUnauthorized {
		t.Errorf("password grant with a wrong password: %d, want 401", code)
	}
	code, tok := post(with("grant_type", "password", "username", ti.Username, "password", ti.Password, "access_type", "offline"))
	if code != http.StatusOK || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("password grant: %d %+v", code, tok)
	}
	if code := getManifest(t, r, "oauth/app", "latest", tok.AccessToken); code != http.StatusOK {
		t.Errorf("GET manifest with the password grant's token: %d", code)
	}

	// ggcr uses the refresh token (grant_type=refresh_token) when given
	// an identity token.
	before := ti.Issued()
	ref, _ := name.ParseReference(r.Host + "/oauth/app:latest")
	kc := authn.FromConfig(authn.AuthConfig{IdentityToken: tok.RefreshToken})
	if _, err := remote.Image(ref, remote.WithAuth(kc), remote.WithTransport(r.Transport())); err != nil {
		t.Errorf("pull with the refresh token: %v", err)
	}
	if ti.Issued() <= before {
		t.Error("no token issued for the refresh token")
	}
	if code, _ := post(with("grant_type", "refresh_token", "refresh_token", "bogus")); code != http.StatusUnauthorized {
		t.Errorf("an unknown refresh token: %d, want 401", code)
	}
}

// fetchToken does the Docker token flow by hand.
func fetchToken(t *testing.T, ti *TokenIssuer, user, password string, scopes ...string) (int, tokenResponse) {
	t.Helper()
	q := url.Values{"service": {ti.Service}, "scope": scopes, "account": {user}}
	req, _ := http.NewRequest(http.MethodGet, ti.Realm+"?"+q.Encode(), nil)
	req.SetBasicAuth(user, password)
	resp, err := (&http.Client{Transport: ti.Transport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok tokenResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, tok
}

// getManifest does GET /v2/<repo>/manifests/<ref> with a bearer token.
func getManifest(t *testing.T, r *Registry, repo, ref, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.URL()+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", string(types.DockerManifestSchema2))
	resp, err := (&http.Client{Transport: r.Transport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestS3Redirect(t *testing.T) {
	t.Parallel()
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			r := StartDistribution(t, Options{Version: v.version, S3: true})
			if r.S3 == nil || r.DataDir != "" || !strings.HasPrefix(r.S3.Host, S3Host+":") {
				t.Fatalf("registry %+v, S3 %+v", r, r.S3)
			}
			img, err := random.Image(4096, 1)
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := name.ParseReference(r.Host + "/s3/app:latest")
			if err := remote.Write(ref, img, r.RemoteOptions()...); err != nil {
				t.Fatalf("push: %v", err)
			}
			layers, _ := img.Layers()
			layer := must(layers[0].Digest())

			// GET and HEAD of a blob redirect to a presigned URL on the
			// fakes3 host.
			noFollow := &http.Client{
				Transport:     r.Transport(),
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				req, _ := http.NewRequest(method, r.URL()+"/v2/s3/app/blobs/"+layer.String(), nil)
				resp, err := noFollow.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				loc, _ := url.Parse(resp.Header.Get("Location"))
				if resp.StatusCode != http.StatusTemporaryRedirect || loc == nil || loc.Host != r.S3.Host || loc.Query().Get("X-Amz-Signature") == "" {
					t.Fatalf("%s blob: %s, Location %q; want 307 to a presigned URL on %s", method, resp.Status, resp.Header.Get("Location"), r.S3.Host)
				}
				// The presigned URL works without credentials.
				req, _ = http.NewRequest(method, loc.String(), nil)
				resp, err = http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s presigned URL: %s: %s", method, resp.Status, b)
				}
				if method == http.MethodGet {
					if d, _, _ := v1.SHA256(strings.NewReader(string(b))); d != layer {
						t.Errorf("the presigned URL served %s, want %s", d, layer)
					}
				}
			}

			// ggcr follows the redirects.
			got, err := remote.Image(ref, r.RemoteOptions()...)
			if err != nil {
				t.Fatal(err)
			}
			if err := readAll(got); err != nil {
				t.Fatalf("pull: %v", err)
			}
			if d, _ := got.Digest(); d != must(img.Digest()) {
				t.Errorf("pulled %s, pushed %s", d, must(img.Digest()))
			}

			reqs, err := r.S3.Requests()
			if err != nil {
				t.Fatal(err)
			}
			var signed, presigned int
			for _, q := range reqs {
				switch {
				case q.Auth == "AWS4-HMAC-SHA256":
					signed++
				case q.Presigned && q.Auth == "":
					presigned++
				}
			}
			// Presigned: GET and HEAD by hand, then ggcr's config and layer.
			if signed == 0 || presigned < 4 {
				t.Errorf("fakes3 saw %d SigV4 requests and %d presigned ones: %+v", signed, presigned, reqs)
			}
			if leaked, err := r.S3.LeakedCredentials(); err != nil || len(leaked) != 0 {
				t.Errorf("credentials sent to S3: %+v, %v", leaked, err)
			}
		})
	}
}

// TestS3TokenNoLeak: ggcr, authenticated by tokens, follows the redirects
// to S3 without sending its token there; a client that does is caught.
func TestS3TokenNoLeak(t *testing.T) {
	t.Parallel()
	ti := StartTokenIssuer(t, TokenOptions{})
	r := StartDistribution(t, Options{Version: DistributionV3Version, TLS: true, Token: ti, S3: true})
	pushPull(t, r, "s3tok/app")
	if leaked, err := r.S3.LeakedCredentials(); err != nil || len(leaked) != 0 {
		t.Errorf("ggcr sent credentials to S3: %+v, %v", leaked, err)
	}

	code, tok := fetchToken(t, ti, r.Username, r.Password, "repository:s3tok/app:pull")
	if code != http.StatusOK {
		t.Fatalf("token: %d", code)
	}
	ref, _ := name.ParseReference(r.Host + "/s3tok/app:latest")
	img, err := remote.Image(ref, r.RemoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigName()
	req, _ := http.NewRequest(http.MethodGet, r.URL()+"/v2/s3tok/app/blobs/"+cfg.String(), nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := (&http.Client{
		Transport: r.Transport(),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			req.Header.Set("Authorization", via[0].Header.Get("Authorization")) // a careless client
			return nil
		},
	}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	leaked, err := r.S3.LeakedCredentials()
	if err != nil || len(leaked) != 1 || leaked[0].Auth != "Bearer" || leaked[0].Method != http.MethodGet || !leaked[0].Presigned {
		t.Errorf("leaked %+v, %v; want the careless client's GET", leaked, err)
	}
}

func TestOlareg(t *testing.T) {
	t.Parallel()
	r := StartOlareg(t)
	pushPull(t, r, "ola/app")

	// An OCI 1.1 referrer of the image.
	ref, _ := name.ParseReference(r.Host + "/ola/app:latest")
	subject, err := remote.Get(ref, r.RemoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	repo := ref.Context()
	empty := static.NewLayer([]byte("{}"), OCIEmptyConfig)
	sbom := static.NewLayer([]byte(`{"spdxVersion":"SPDX-2.3"}`), "application/spdx+json")
	for _, l := range []v1.Layer{empty, sbom} {
		if err := remote.WriteLayer(repo, l, r.RemoteOptions()...); err != nil {
			t.Fatal(err)
		}
	}
	desc := func(l v1.Layer) v1.Descriptor {
		mt, _ := l.MediaType()
		return v1.Descriptor{MediaType: mt, Digest: must(l.Digest()), Size: must(l.Size())}
	}
	sd := subject.Descriptor
	raw, _ := json.Marshal(v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  SBOMArtifactType,
		Config:        desc(empty),
		Layers:        []v1.Descriptor{desc(sbom)},
		Subject:       &v1.Descriptor{MediaType: sd.MediaType, Digest: sd.Digest, Size: sd.Size},
	})
	rd, _, _ := v1.SHA256(strings.NewReader(string(raw)))
	if err := remote.Put(repo.Digest(rd.String()), rawManifest{raw, types.OCIManifestSchema1}, r.RemoteOptions()...); err != nil {
		t.Fatal(err)
	}

	idx := referrers(t, r, "ola/app", sd.Digest.String())
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != rd || idx.Manifests[0].ArtifactType != SBOMArtifactType {
		t.Errorf("referrers of %s: %+v, want %s", sd.Digest, idx.Manifests, rd)
	}

	// And the full corpus round-trips.
	s, err := Seed(context.Background(), r.Host, r.RemoteOptions(), Corpus{
		Namespaces: []string{"ns"}, ReposPerNS: 2, TagsPerRepo: 2, MultiArch: true, Nested: true, Referrer: true, Signature: true, HelmChart: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkSeeded(t, r, s)
	if _, ok := s.Tags["ns/app0:"+strings.Replace(s.Tags["ns/app0:v1"], ":", "-", 1)]; ok {
		t.Errorf("Seed pushed a referrers fallback tag to olareg (tags %v)", keys(s.Tags))
	}
}

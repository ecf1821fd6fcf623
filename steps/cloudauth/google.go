package cloudauth

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/google"
	"golang.org/x/oauth2"
	googauth "golang.org/x/oauth2/google"
)

// cloudPlatformScope is the scope Artifact Registry and GCR take (the one
// go-containerregistry's google keychain asks for).
const cloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"

// googleSource gets Google access tokens from application default
// credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's
// application_default_credentials.json, the metadata server at
// GCE_METADATA_HOST or metadata.google.internal: workload identity), as
// go-containerregistry's google keychain does, but keeps each token's
// expiry so the registry client renews it. Without application default
// credentials it asks gcloud (google.NewGcloudAuthenticator).
type googleSource struct {
	now   func() time.Time
	once  sync.Once
	ts    oauth2.TokenSource // nil: no ADC
	err   error
	token cached
}

// googleHint says where Google credentials are looked for.
const googleHint = "set GOOGLE_APPLICATION_CREDENTIALS, run `gcloud auth application-default login`, or run where the metadata server answers: GKE workload identity, GCE_METADATA_HOST"

// recorder remembers the expiry of the last token its source gave.
type recorder struct {
	src    oauth2.TokenSource
	expiry time.Time
}

func (r *recorder) Token() (*oauth2.Token, error) {
	t, err := r.src.Token()
	if err == nil {
		r.expiry = t.Expiry
	}
	return t, err
}

func (s *googleSource) resolve(ctx context.Context, host string) (authn.Authenticator, error) {
	s.once.Do(func() {
		// A background context: the token source outlives this resolve.
		s.ts, s.err = googauth.DefaultTokenSource(context.WithoutCancel(ctx), cloudPlatformScope)
	})
	return s.token.get(s.now, func() (authn.AuthConfig, time.Time, error) {
		if s.ts == nil {
			a, err := google.NewGcloudAuthenticator(ctx)
			if err != nil || a == authn.Anonymous {
				return authn.AuthConfig{}, time.Time{}, fmt.Errorf("registry %s: no Google credentials: application default credentials: %v; gcloud: %v (%s)", host, s.err, err, googleHint)
			}
			cfg, err := a.Authorization()
			if err != nil {
				return authn.AuthConfig{}, time.Time{}, fmt.Errorf("registry %s: gcloud: %w", host, err)
			}
			return *cfg, s.now().Add(time.Hour), nil // gcloud's tokens live an hour
		}
		// A new source each time: the one before gave a token the
		// registry refused or that is about to lapse.
		rec := &recorder{src: s.ts}
		cfg, err := google.NewTokenSourceAuthenticator(rec).Authorization()
		if err != nil {
			return authn.AuthConfig{}, time.Time{}, fmt.Errorf("registry %s: Google application default credentials: %w (%s)", host, err, googleHint)
		}
		expiry := rec.expiry
		if expiry.IsZero() {
			expiry = s.now().Add(time.Hour)
		}
		return *cfg, expiry, nil
	})
}

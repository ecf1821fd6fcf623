// Package cloudauth resolves credentials for cloud registries natively,
// chosen by the registry's host (or named per registry in the spec):
//
//   - Amazon ECR (*.dkr.ecr.REGION.amazonaws.com): GetAuthorizationToken
//     with aws-sdk-go-v2's standard credential chain (environment, shared
//     files, web identity: IRSA in a pod, instance roles);
//   - Google Artifact Registry and GCR (*-docker.pkg.dev, gcr.io,
//     *.gcr.io): application default credentials (a key file, gcloud's
//     file, the metadata server: workload identity in a pod), turned into
//     registry credentials by go-containerregistry's google package;
//   - Azure ACR (*.azurecr.io): an AAD token from azidentity's default
//     chain (environment, workload identity, managed identity) exchanged
//     at the registry's /oauth2/exchange for an ACR refresh token;
//   - GHCR and GitLab: tokens from the environment.
//
// Cloud credentials expire: every authenticator this package returns says
// when to stop using it (registry.Expiring: a margin before the real
// expiry) and can be invalidated after a registry refused it
// (registry.Invalidator), so the registry client renews it before it lapses
// and once on a 401, mid-upload included. Tokens are cached per account and
// region (per registry for ACR) for their lifetime, never written anywhere,
// never in an error.
//
// The credential files (steps/credentials) stay first: a host with an entry
// there uses it; the cloud keychain of the host's kind answers for the
// others. A kind named for a registry replaces that choice (files: only the
// files; ecr, google, acr, ghcr, gitlab: only that keychain; anonymous:
// none). Chosen by host, Google's and ACR's keychains without an identity
// answer anonymously (public images), as go-containerregistry's google
// keychain does; named, they fail saying what they tried. ECR has no
// anonymous access: its keychain always says why it has no token.
//
// Files: cloudauth.go (kinds, choice by host, the keychain), lifetime.go
// (cached credentials with a lifetime), ecr.go, google.go, acr.go, env.go
// (GHCR, GitLab).
package cloudauth

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Kind names a keychain.
type Kind string

// The keychains. Auto (empty) chooses by host.
const (
	Auto      Kind = ""
	Files     Kind = "files"
	ECR       Kind = "ecr"
	Google    Kind = "google"
	ACR       Kind = "acr"
	GHCR      Kind = "ghcr"
	GitLab    Kind = "gitlab"
	Anonymous Kind = "anonymous"
)

// Kinds are the names a spec or a flag may give.
var Kinds = []Kind{Files, ECR, Google, ACR, GHCR, GitLab, Anonymous}

// ParseKind checks a keychain name ("" and "auto" are Auto).
func ParseKind(s string) (Kind, error) {
	k := Kind(strings.ToLower(strings.TrimSpace(s)))
	if k == "auto" || k == Auto {
		return Auto, nil
	}
	if slices.Contains(Kinds, k) {
		return k, nil
	}
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return "", fmt.Errorf("keychain %q: not one of auto, %s", s, strings.Join(names, ", "))
}

// ecrHost is an ECR private registry: ACCOUNT.dkr.ecr[-fips].REGION.<AWS
// partition domain>.
var ecrHost = regexp.MustCompile(`^([0-9]{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$`)

// KindOf is the keychain a host gets when nothing names one.
func KindOf(host string) Kind {
	h := strings.ToLower(host)
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	switch {
	case ecrHost.MatchString(h):
		return ECR
	case h == "gcr.io" || strings.HasSuffix(h, ".gcr.io") || strings.HasSuffix(h, "-docker.pkg.dev"):
		return Google
	case strings.HasSuffix(h, ".azurecr.io") || strings.HasSuffix(h, ".azurecr.cn") || strings.HasSuffix(h, ".azurecr.us"):
		return ACR
	case h == "ghcr.io":
		return GHCR
	case h == "registry.gitlab.com":
		return GitLab
	}
	return Files
}

// ECRAccountRegion reads the account and region of an ECR host ("" when
// the host is not ECR's).
func ECRAccountRegion(host string) (account, region string) {
	h, _, _ := strings.Cut(strings.ToLower(host), ":")
	m := ecrHost.FindStringSubmatch(h)
	if m == nil {
		return "", ""
	}
	return m[1], m[2]
}

// Registry is what the spec says about one registry's credentials.
type Registry struct {
	Kind Kind
	// Region of an ECR registry whose host does not say it (a proxy, a
	// test double); empty: the host's, else the AWS configuration's.
	Region string
	// Account (registry id) of such an ECR registry; empty: the host's,
	// else the caller's own.
	Account string
}

// Options configure the keychain. Environment is read by the caller.
type Options struct {
	// Files is the credential files' keychain (steps/credentials); nil:
	// none.
	Files authn.Keychain
	// Registries by host[:port]: a keychain other than the host's.
	Registries map[string]Registry
	// Getenv reads GHCR's and GitLab's tokens; nil: none.
	Getenv func(string) string
	// TLSConfig and Insecure are the registry client's: ACR's token
	// exchange is a request to the registry.
	TLSConfig func(host string) (*tls.Config, error)
	Insecure  func(host string) bool
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Keychain resolves by host; see the package comment.
type Keychain struct {
	o      Options
	mu     sync.Mutex
	ecr    *ecrSource
	google *googleSource
	acr    *acrSource
}

// New returns the keychain.
func New(o Options) *Keychain {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.Insecure == nil {
		o.Insecure = func(string) bool { return false }
	}
	k := &Keychain{o: o}
	k.ecr = &ecrSource{now: o.Now, tokens: map[string]*cached{}}
	k.google = &googleSource{now: o.Now}
	k.acr = &acrSource{now: o.Now, o: &k.o, tokens: map[string]*cached{}}
	return k
}

// Resolve implements authn.Keychain.
func (k *Keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), r)
}

// ResolveContext implements authn.ContextKeychain.
func (k *Keychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	host := r.RegistryStr()
	spec, named := k.o.Registries[host]
	kind := spec.Kind
	if !named || kind == Auto {
		kind = KindOf(host)
		if k.o.Files != nil {
			a, err := authn.Resolve(ctx, k.o.Files, r)
			if err != nil || a != authn.Anonymous || kind == Files {
				return a, err
			}
		}
	}
	switch kind {
	case Files:
		if k.o.Files == nil {
			return authn.Anonymous, nil
		}
		return authn.Resolve(ctx, k.o.Files, r)
	case Anonymous:
		return authn.Anonymous, nil
	case ECR:
		return k.ecr.resolve(ctx, host, spec)
	case Google, ACR:
		var a authn.Authenticator
		var err error
		if kind == Google {
			a, err = k.google.resolve(ctx, host)
		} else {
			a, err = k.acr.resolve(ctx, host)
		}
		if err != nil && (!named || spec.Kind == Auto) {
			// Chosen by host, as go-containerregistry's google keychain:
			// without an identity, public images are still read
			// anonymously (a private one then says 401).
			return authn.Anonymous, nil
		}
		return a, err
	case GHCR:
		return ghcrAuth(k.o.Getenv), nil
	case GitLab:
		return gitlabAuth(host, k.o.Getenv)
	}
	return nil, fmt.Errorf("registry %s: keychain %q unknown", host, kind)
}

// httpClient reaches a registry the way the registry client does (its CAs,
// unverified TLS for a registry marked insecure).
func (o *Options) httpClient(host string) (*http.Client, error) {
	var tc *tls.Config
	if o.TLSConfig != nil {
		var err error
		if tc, err = o.TLSConfig(host); err != nil {
			return nil, err
		}
	}
	if tc == nil {
		tc = &tls.Config{}
	}
	if o.Insecure(host) {
		tc = tc.Clone()
		tc.InsecureSkipVerify = true
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// Flag is the --keychain form of a registry's choice:
// HOST=KIND[:REGION[:ACCOUNT]] (ParseFlag reads it).
func Flag(host string, r Registry) string {
	k := r.Kind
	if k == Auto {
		k = "auto"
	}
	s := host + "=" + string(k)
	if r.Region != "" || r.Account != "" {
		s += ":" + r.Region
	}
	if r.Account != "" {
		s += ":" + r.Account
	}
	return s
}

// ParseFlag reads HOST=KIND[:REGION[:ACCOUNT]].
func ParseFlag(s string) (string, Registry, error) {
	host, rest, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok || host == "" {
		return "", Registry{}, fmt.Errorf("--keychain %q: want HOST=KIND[:REGION[:ACCOUNT]], e.g. registry.example=ecr:eu-west-1", s)
	}
	parts := strings.SplitN(rest, ":", 3)
	k, err := ParseKind(parts[0])
	if err != nil {
		return "", Registry{}, fmt.Errorf("--keychain %q: %w", s, err)
	}
	r := Registry{Kind: k}
	if len(parts) > 1 {
		r.Region = parts[1]
	}
	if len(parts) > 2 {
		r.Account = parts[2]
	}
	return host, r, nil
}

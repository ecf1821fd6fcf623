package cloudauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-containerregistry/pkg/authn"
)

// acrUser is the user name ACR takes with a refresh token.
const acrUser = "00000000-0000-0000-0000-000000000000"

// acrScope is the AAD scope of the token ACR exchanges.
const acrScope = "https://containerregistry.azure.net/.default"

// acrSource exchanges an AAD access token (azidentity's default chain:
// AZURE_CLIENT_ID/AZURE_TENANT_ID with a secret or certificate, workload
// identity's AZURE_FEDERATED_TOKEN_FILE, managed identity) for an ACR
// refresh token at the registry's /oauth2/exchange, cached per registry
// for its lifetime. The registry client then gets access tokens with it
// (the OAuth2 refresh flow it speaks to every token server).
type acrSource struct {
	now    func() time.Time
	o      *Options
	mu     sync.Mutex
	cred   azcore.TokenCredential
	tokens map[string]*cached
}

// publicAuthorities are the Microsoft Entra hosts instance discovery
// knows; another AZURE_AUTHORITY_HOST is a private or disconnected cloud
// (Azure Stack), where azidentity must not ask login.microsoft.com.
var publicAuthorities = []string{"login.microsoftonline.com", "login.chinacloudapi.cn", "login.microsoftonline.us"}

func (s *acrSource) credential() (azcore.TokenCredential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cred != nil {
		return s.cred, nil
	}
	opts := &azidentity.DefaultAzureCredentialOptions{}
	if h := s.o.Getenv("AZURE_AUTHORITY_HOST"); h != "" {
		u, err := url.Parse(h)
		opts.DisableInstanceDiscovery = err != nil || !slices.Contains(publicAuthorities, strings.ToLower(u.Hostname()))
	}
	c, err := azidentity.NewDefaultAzureCredential(opts)
	if err != nil {
		return nil, fmt.Errorf("azure credentials: %w", err)
	}
	s.cred = c
	return c, nil
}

func (s *acrSource) resolve(ctx context.Context, host string) (authn.Authenticator, error) {
	s.mu.Lock()
	c, ok := s.tokens[host]
	if !ok {
		c = &cached{}
		s.tokens[host] = c
	}
	s.mu.Unlock()
	return c.get(s.now, func() (authn.AuthConfig, time.Time, error) {
		cred, err := s.credential()
		if err != nil {
			return authn.AuthConfig{}, time.Time{}, fmt.Errorf("ACR registry %s: %w", host, err)
		}
		aad, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{acrScope}})
		if err != nil {
			return authn.AuthConfig{}, time.Time{}, fmt.Errorf("ACR registry %s: getting an AAD token: %w (azidentity's chain: AZURE_TENANT_ID, AZURE_CLIENT_ID with AZURE_CLIENT_SECRET, workload identity, managed identity)", host, err)
		}
		refresh, err := s.exchange(ctx, host, aad.Token)
		if err != nil {
			return authn.AuthConfig{}, time.Time{}, err
		}
		expires := jwtExpiry(refresh)
		if expires.IsZero() {
			expires = aad.ExpiresOn
		}
		return authn.AuthConfig{Username: acrUser, IdentityToken: refresh}, expires, nil
	})
}

// exchange trades an AAD access token for an ACR refresh token (ACR's
// documented POST /oauth2/exchange).
func (s *acrSource) exchange(ctx context.Context, host, aad string) (string, error) {
	hc, err := s.o.httpClient(host)
	if err != nil {
		return "", fmt.Errorf("ACR registry %s: %w", host, err)
	}
	scheme := "https"
	if s.o.Insecure(host) {
		scheme = "http"
	}
	form := url.Values{"grant_type": {"access_token"}, "service": {host}, "access_token": {aad}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, scheme+"://"+host+"/oauth2/exchange", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("ACR registry %s: exchanging the AAD token: %w", host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("ACR registry %s: reading the exchange's answer: %w", host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("ACR registry %s: POST /oauth2/exchange: %s (the identity needs the AcrPull role, AcrPush to write)", host, resp.Status)
	}
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.RefreshToken == "" {
		return "", fmt.Errorf("ACR registry %s: POST /oauth2/exchange answered without a refresh token", host)
	}
	return out.RefreshToken, nil
}

// jwtExpiry reads the exp claim of a JWT, unverified (it only says when to
// ask again); zero when there is none.
func jwtExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return time.Time{}
	}
	return time.Unix(claims.Exp, 0)
}

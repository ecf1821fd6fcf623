package cloudauth

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
)

// ecrSource gets ECR tokens (GetAuthorizationToken) with the standard AWS
// credential chain, one client per region, one token per account and
// region for its lifetime (12 h on AWS).
type ecrSource struct {
	now     func() time.Time
	mu      sync.Mutex
	clients map[string]*ecr.Client
	tokens  map[string]*cached
}

// ECRClient returns an ECR API client for a region ("" : the AWS
// configuration's) with the standard credential chain and endpoint
// overrides (AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL). It is what the
// keychain and the repository creation (steps/ecrrepos) use.
func ECRClient(ctx context.Context, region string) (*ecr.Client, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("no AWS region: set AWS_REGION, or give the registry's region in the spec (region:)")
	}
	return ecr.NewFromConfig(cfg), nil
}

func (s *ecrSource) client(ctx context.Context, region string) (*ecr.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[region]; ok {
		return c, nil
	}
	c, err := ECRClient(ctx, region)
	if err != nil {
		return nil, err
	}
	if s.clients == nil {
		s.clients = map[string]*ecr.Client{}
	}
	s.clients[region] = c
	return c, nil
}

// ECRTarget is the account and region of an ECR registry: the host's,
// else what the spec says.
func ECRTarget(host string, r Registry) (account, region string) {
	account, region = ECRAccountRegion(host)
	if r.Account != "" {
		account = r.Account
	}
	if r.Region != "" {
		region = r.Region
	}
	return account, region
}

func (s *ecrSource) resolve(ctx context.Context, host string, r Registry) (authn.Authenticator, error) {
	account, region := ECRTarget(host, r)
	s.mu.Lock()
	c, ok := s.tokens[account+"/"+region]
	if !ok {
		c = &cached{}
		s.tokens[account+"/"+region] = c
	}
	s.mu.Unlock()
	return c.get(s.now, func() (authn.AuthConfig, time.Time, error) {
		cl, err := s.client(ctx, region)
		if err != nil {
			return authn.AuthConfig{}, time.Time{}, fmt.Errorf("ECR registry %s: %w", host, err)
		}
		in := &ecr.GetAuthorizationTokenInput{}
		if account != "" {
			in.RegistryIds = []string{account} //nolint:staticcheck // selects the account's registry, as docker-credential-ecr-login does
		}
		out, err := cl.GetAuthorizationToken(ctx, in)
		if err != nil {
			return authn.AuthConfig{}, time.Time{}, fmt.Errorf("ECR registry %s: GetAuthorizationToken: %w (the AWS credential chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN in a pod)", host, err)
		}
		if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
			return authn.AuthConfig{}, time.Time{}, fmt.Errorf("ECR registry %s: GetAuthorizationToken answered without a token", host)
		}
		d := out.AuthorizationData[0]
		raw, err := base64.StdEncoding.DecodeString(aws.ToString(d.AuthorizationToken))
		if err != nil {
			return authn.AuthConfig{}, time.Time{}, fmt.Errorf("ECR registry %s: the authorization token is not base64", host)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return authn.AuthConfig{}, time.Time{}, fmt.Errorf("ECR registry %s: the authorization token is not USER:PASSWORD", host)
		}
		expires := s.now().Add(12 * time.Hour) // ECR's documented lifetime, when the answer has none
		if d.ExpiresAt != nil {
			expires = *d.ExpiresAt
		}
		return authn.AuthConfig{Username: user, Password: pass}, expires, nil
	})
}

// Package ecrrepos creates the repositories an Amazon ECR target lacks
// before images are copied to it: ECR refuses a push to a repository that
// does not exist (docker/migrator's users create them by hand). Created
// repositories get the spec's settings: tag immutability, scan on push,
// encryption (AES256 or KMS with a key), a lifecycle policy. A dry run
// only says which it would create; with Refuse (--no-create-repositories)
// the images of a missing repository fail, saying so, and the others are
// copied.
//
// It uses aws-sdk-go-v2's ECR client with the standard credential chain
// and endpoint overrides (cloudauth.ECRClient), one DescribeRepositories
// listing per registry and run.
package ecrrepos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/regmigrate/regmigrate/steps/cloudauth"
)

// Encryption types.
const (
	EncryptionAES256 = "AES256"
	EncryptionKMS    = "KMS"
)

// Settings of the repositories created.
type Settings struct {
	TagImmutable bool
	ScanOnPush   bool
	// Encryption: AES256 (ECR's default) or KMS; KMSKey is the key's ARN
	// or id for KMS (empty: the AWS-managed key).
	Encryption string
	KMSKey     string
	// LifecyclePolicy is the policy's JSON text (empty: none).
	LifecyclePolicy string
}

// Validate checks the settings.
func (s Settings) Validate() error {
	switch s.Encryption {
	case "", EncryptionAES256:
		if s.KMSKey != "" {
			return errors.New("ecr.kmsKey goes with ecr.encryption: KMS")
		}
	case EncryptionKMS:
	default:
		return fmt.Errorf("ecr.encryption %q: AES256 or KMS", s.Encryption)
	}
	return nil
}

// Options configure a Maker.
type Options struct {
	// Registries are the spec's keychain choices: a host whose keychain is
	// ECR (by its name or named so) is an ECR registry.
	Registries map[string]cloudauth.Registry
	Settings   Settings
	// Refuse: do not create; the images of a missing repository fail.
	Refuse bool
}

// Maker ensures repositories exist (mirror.RepositoryMaker).
type Maker struct {
	o     Options
	mu    sync.Mutex
	hosts map[string]*hostRepos
}

type hostRepos struct {
	mu      sync.Mutex
	listed  bool
	present map[string]bool
	client  *ecr.Client
	account string
}

// New returns a Maker.
func New(o Options) (*Maker, error) {
	if err := o.Settings.Validate(); err != nil {
		return nil, err
	}
	return &Maker{o: o, hosts: map[string]*hostRepos{}}, nil
}

// IsECR reports whether a host is an ECR registry for these options.
func (m *Maker) IsECR(host string) bool {
	r := m.o.Registries[host]
	if r.Kind != cloudauth.Auto {
		return r.Kind == cloudauth.ECR
	}
	return cloudauth.KindOf(host) == cloudauth.ECR
}

// ErrMissing is a repository that does not exist and was not created.
var ErrMissing = errors.New("the repository does not exist")

// Ensure makes sure the repositories of an ECR host exist: it lists the
// registry's repositories once, creates the missing ones with the
// settings (in a dry run, only returns them) and returns what it created.
// With Refuse, a missing repository is in refused (its images fail). Other
// hosts are left alone. err is for the ECR API failing: every repository
// of the host is then in doubt.
func (m *Maker) Ensure(ctx context.Context, host string, repos []string, dryRun bool) (created []string, refused map[string]error, err error) {
	if !m.IsECR(host) {
		return nil, nil, nil
	}
	m.mu.Lock()
	h, ok := m.hosts[host]
	if !ok {
		h = &hostRepos{present: map[string]bool{}}
		m.hosts[host] = h
	}
	m.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.listed {
		if err := m.list(ctx, host, h); err != nil {
			return nil, nil, err
		}
	}
	var missing []string
	for _, r := range repos {
		if !h.present[r] && !slices.Contains(missing, r) {
			missing = append(missing, r)
		}
	}
	sort.Strings(missing)
	if len(missing) == 0 {
		return nil, nil, nil
	}
	if m.o.Refuse {
		refused = map[string]error{}
		for _, r := range missing {
			refused[r] = fmt.Errorf("%w on ECR registry %s: %s (create it, or let regmigrate create it: drop --no-create-repositories)", ErrMissing, host, r)
		}
		return nil, refused, nil
	}
	if dryRun {
		return missing, nil, nil
	}
	for _, r := range missing {
		if err := m.create(ctx, h, r); err != nil {
			if refused == nil {
				refused = map[string]error{}
			}
			refused[r] = fmt.Errorf("creating ECR repository %s on %s: %w", r, host, err)
			continue
		}
		h.present[r] = true
		created = append(created, r)
	}
	return created, refused, nil
}

func (m *Maker) list(ctx context.Context, host string, h *hostRepos) error {
	account, region := cloudauth.ECRTarget(host, m.o.Registries[host])
	c, err := cloudauth.ECRClient(ctx, region)
	if err != nil {
		return fmt.Errorf("ECR registry %s: %w", host, err)
	}
	h.client, h.account = c, account
	in := &ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(1000)}
	if account != "" {
		in.RegistryId = aws.String(account)
	}
	p := ecr.NewDescribeRepositoriesPaginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("ECR registry %s: listing its repositories (DescribeRepositories): %w", host, err)
		}
		for _, r := range page.Repositories {
			h.present[aws.ToString(r.RepositoryName)] = true
		}
	}
	h.listed = true
	return nil
}

func (m *Maker) create(ctx context.Context, h *hostRepos, repo string) error {
	s := m.o.Settings
	in := &ecr.CreateRepositoryInput{
		RepositoryName:             aws.String(repo),
		ImageTagMutability:         types.ImageTagMutabilityMutable,
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: s.ScanOnPush},
	}
	if h.account != "" {
		in.RegistryId = aws.String(h.account)
	}
	if s.TagImmutable {
		in.ImageTagMutability = types.ImageTagMutabilityImmutable
	}
	if s.Encryption != "" {
		in.EncryptionConfiguration = &types.EncryptionConfiguration{EncryptionType: types.EncryptionType(strings.ToUpper(s.Encryption))}
		if s.KMSKey != "" {
			in.EncryptionConfiguration.KmsKey = aws.String(s.KMSKey)
		}
	}
	_, err := h.client.CreateRepository(ctx, in)
	var exists *types.RepositoryAlreadyExistsException
	if errors.As(err, &exists) {
		return nil // another shard made it first: its settings stand
	}
	if err != nil {
		return fmt.Errorf("CreateRepository: %w", err)
	}
	if s.LifecyclePolicy != "" {
		lp := &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String(repo), LifecyclePolicyText: aws.String(s.LifecyclePolicy)}
		if h.account != "" {
			lp.RegistryId = aws.String(h.account)
		}
		if _, err := h.client.PutLifecyclePolicy(ctx, lp); err != nil {
			return fmt.Errorf("created, but PutLifecyclePolicy: %w", err)
		}
	}
	return nil
}

package spec

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/regmigrate/regmigrate/steps/cloudauth"
	"github.com/regmigrate/regmigrate/steps/ecrrepos"
	"github.com/regmigrate/regmigrate/steps/imageref"
)

// A registry's keychain (source.keychain, target.keychain) is where its
// credentials come from:
//
//	auto (default)  the credential files (auth:) for a host they have an
//	                entry for, else the host's cloud keychain: ECR for
//	                *.dkr.ecr.REGION.amazonaws.com, google for gcr.io and
//	                *-docker.pkg.dev, acr for *.azurecr.io, ghcr for
//	                ghcr.io, gitlab for registry.gitlab.com
//	files           only the credential files
//	ecr, google, acr, ghcr, gitlab
//	                only that cloud keychain (a proxy or an alias of a
//	                cloud registry, whose host does not say it)
//	anonymous       none
//
// In Argo pods the cloud keychains use the pod's ServiceAccount identity
// (IRSA, GKE workload identity, Azure workload identity): no Secret.

// ECR is what an ECR registry's host does not say (Region, Account), and
// for a target, the repositories regmigrate creates before copying (ECR
// refuses pushes to a repository that does not exist).
type ECR struct {
	// Region and Account (registry id) when the host is not
	// ACCOUNT.dkr.ecr.REGION.amazonaws.com.
	Region  string `json:"region,omitempty"`
	Account string `json:"account,omitempty"`
	// CreateRepositories: create the missing ones (default true);
	// false, or --no-create-repositories: their images fail instead.
	CreateRepositories *bool `json:"createRepositories,omitempty"`
	// Settings of the repositories created.
	TagImmutability bool `json:"tagImmutability,omitempty"`
	ScanOnPush      bool `json:"scanOnPush,omitempty"`
	// Encryption: AES256 (default) or KMS, with KMSKey (ARN or id; empty:
	// the AWS-managed key).
	Encryption string `json:"encryption,omitempty"`
	KMSKey     string `json:"kmsKey,omitempty"`
	// LifecyclePolicyFile is an ECR lifecycle policy (JSON) applied to
	// each repository created.
	LifecyclePolicyFile string `json:"lifecyclePolicyFile,omitempty"`
}

var ecrAccount = regexp.MustCompile(`^[0-9]{12}$`)

func (m *Migration) validateCloud() []error {
	var errs []error
	for _, side := range []struct {
		name string
		r    Registry
	}{{"source", m.Source}, {"target", m.Target}} {
		k, err := cloudauth.ParseKind(side.r.Keychain)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.keychain: %w", side.name, err))
			continue
		}
		e := side.r.ECR
		if e == nil {
			continue
		}
		host := ""
		if loc, err := imageref.ParseLocation(side.r.Registry); err == nil {
			host = loc.Registry
		}
		if k != cloudauth.ECR && !(k == cloudauth.Auto && cloudauth.KindOf(host) == cloudauth.ECR) {
			errs = append(errs, fmt.Errorf("%s.ecr: %s is not an ECR registry: write keychain: ecr for an ECR registry whose host does not say so, or drop ecr", side.name, side.r.Registry))
		}
		if e.Account != "" && !ecrAccount.MatchString(e.Account) {
			errs = append(errs, fmt.Errorf("%s.ecr.account %q: want the 12-digit AWS account id", side.name, e.Account))
		}
		if side.name == "source" && (e.CreateRepositories != nil || e.TagImmutability || e.ScanOnPush || e.Encryption != "" || e.KMSKey != "" || e.LifecyclePolicyFile != "") {
			errs = append(errs, fmt.Errorf("source.ecr: only region and account apply to a source; repository settings go under target.ecr"))
		}
		if err := (ecrrepos.Settings{Encryption: e.Encryption, KMSKey: e.KMSKey}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s.%w", side.name, err))
		}
		if f := e.LifecyclePolicyFile; f != "" {
			b, err := os.ReadFile(f)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("%s.ecr.lifecyclePolicyFile: %w", side.name, err))
			case !json.Valid(b):
				errs = append(errs, fmt.Errorf("%s.ecr.lifecyclePolicyFile %s: not JSON (write an ECR lifecycle policy: {\"rules\": [...]})", side.name, f))
			}
		}
	}
	if sa := m.Argo.ServiceAccount; sa != "" {
		if msgs := validation.IsDNS1123Subdomain(sa); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("argo.serviceAccount %q: not a ServiceAccount name: %s", sa, strings.Join(msgs, "; ")))
		}
	}
	return errs
}

// Keychains returns the registries whose keychain or ECR account and
// region the spec names, by host.
func (m *Migration) Keychains() map[string]cloudauth.Registry {
	out := map[string]cloudauth.Registry{}
	for _, r := range []Registry{m.Source, m.Target} {
		loc, err := imageref.ParseLocation(r.Registry)
		if err != nil || r.Registry == "" || loc.Transport != "" {
			continue
		}
		k, _ := cloudauth.ParseKind(r.Keychain)
		cr := cloudauth.Registry{Kind: k}
		if r.ECR != nil {
			cr.Region, cr.Account = r.ECR.Region, r.ECR.Account
		}
		if cr != (cloudauth.Registry{}) {
			out[loc.Registry] = cr
		}
	}
	return out
}

// ECRRepositories are the settings of the repositories created on an ECR
// target, and whether to create them (lifecycle policy read from its
// file).
func (m *Migration) ECRRepositories() (ecrrepos.Settings, bool, error) {
	e := m.Target.ECR
	if e == nil {
		return ecrrepos.Settings{}, true, nil
	}
	s := ecrrepos.Settings{TagImmutable: e.TagImmutability, ScanOnPush: e.ScanOnPush, Encryption: e.Encryption, KMSKey: e.KMSKey}
	if e.LifecyclePolicyFile != "" {
		b, err := os.ReadFile(e.LifecyclePolicyFile)
		if err != nil {
			return s, false, fmt.Errorf("target.ecr.lifecyclePolicyFile: %w", err)
		}
		s.LifecyclePolicy = string(b)
	}
	return s, e.CreateRepositories == nil || *e.CreateRepositories, nil
}

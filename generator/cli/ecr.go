package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/regmigrate/regmigrate/generator/spec"
	"github.com/regmigrate/regmigrate/steps/cloudauth"
	"github.com/regmigrate/regmigrate/steps/ecrrepos"
	"github.com/regmigrate/regmigrate/steps/mirror"
	"github.com/regmigrate/regmigrate/workflows"
)

// repositoryMaker creates an ECR target's missing repositories with the
// spec's settings (target.ecr), or refuses them (--no-create-repositories,
// target.ecr.createRepositories: false). Other targets are left alone.
func repositoryMaker(m *spec.Migration, refuse bool) (mirror.RepositoryMaker, error) {
	s, create, err := m.ECRRepositories()
	if err != nil {
		return nil, err
	}
	mk, err := ecrrepos.New(ecrrepos.Options{Registries: m.Keychains(), Settings: s, Refuse: refuse || !create})
	if err != nil {
		return nil, err
	}
	return mk, nil
}

// cloudPlan carries the spec's keychains, ECR repository settings and
// step ServiceAccount (argo.serviceAccount, unless --service-account is
// given) into the plan. A cloud keychain in a pod uses the
// ServiceAccount's identity: the spec names the ServiceAccount IRSA or
// workload identity binds, and no Secret is needed.
func cloudPlan(m *spec.Migration, p *workflows.Plan, serviceAccountFlag bool) error {
	for h, r := range m.Keychains() {
		p.Keychains = append(p.Keychains, cloudauth.Flag(h, r))
	}
	sort.Strings(p.Keychains)
	s, create, err := m.ECRRepositories()
	if err != nil {
		return err
	}
	p.ECR = workflows.ECRRepositories{NoCreate: !create, TagImmutable: s.TagImmutable, ScanOnPush: s.ScanOnPush, Encryption: s.Encryption, KMSKey: s.KMSKey}
	if s.LifecyclePolicy != "" {
		var b bytes.Buffer
		if err := json.Compact(&b, []byte(s.LifecyclePolicy)); err != nil {
			return fmt.Errorf("target.ecr.lifecyclePolicyFile: %w", err)
		}
		p.ECR.LifecyclePolicy = b.String()
	}
	if !serviceAccountFlag && m.Argo.ServiceAccount != "" {
		p.ServiceAccount = m.Argo.ServiceAccount
	}
	return nil
}

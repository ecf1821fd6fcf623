package cli

import (
	"github.com/regmigrate/regmigrate/generator/spec"
	"github.com/regmigrate/regmigrate/steps/ecrrepos"
	"github.com/regmigrate/regmigrate/steps/mirror"
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

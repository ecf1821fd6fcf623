package export

import (
	"context"
	"strings"

	"github.com/regmigrate/regmigrate/steps/dockerhub"
	"github.com/regmigrate/regmigrate/steps/inputs"
)

// Hub is a Docker Hub source: its repositories are listed with Hub's API
// (it has no catalog), and its official images are library/NAME.
type Hub struct {
	List dockerhub.Options
	// NoLibraryNamespace writes official images (library/NAME on Hub) to
	// NAME on the target; by default they keep library/ (docker/migrator's
	// LIBRARY_NAMESPACE=true).
	NoLibraryNamespace bool
}

// listHub lists the organisation's repositories with Hub's API.
func (o Options) listHub(ctx context.Context, progress func(int)) ([]string, error) {
	return dockerhub.List(ctx, o.Hub.List, progress)
}

// hubSource names an entry on Hub as Hub's registry serves it: a name
// without a namespace (nginx) is an official image (library/nginx).
func (o Options) hubSource(e *inputs.Entry) {
	if o.Hub != nil && e.Source.Registry == o.From.Registry {
		e.Source.Repository = dockerhub.Official(e.Source.Repository)
	}
}

// hubTarget drops library/ from an official image's target path when asked.
func (o Options) hubTarget(path string) string {
	if o.Hub != nil && o.Hub.NoLibraryNamespace {
		return strings.TrimPrefix(path, dockerhub.Library+"/")
	}
	return path
}

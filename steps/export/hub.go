package export

import (
	"context"
	"errors"
	"net/http"
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

// listHub lists the organisation's repositories with Hub's API. Without
// a login of its own ($REGMIGRATE_HUB_USERNAME and _TOKEN), it logs in
// with the credentials the run holds for the source registry (a docker
// config's docker.io entry: in an Argo pod, the mounted registry Secret),
// so a private organisation is listed with no extra setting; when Hub's
// API refuses those, it lists what it shows anonymously and says so.
func (o Options) listHub(ctx context.Context, progress func(int)) ([]string, error) {
	l := o.Hub.List
	if l.Username != "" || l.Password != "" || o.Client == nil {
		return dockerhub.List(ctx, l, progress)
	}
	u, p, ok, err := o.Client.BasicLogin(ctx, o.From.Registry)
	if err != nil || !ok {
		return dockerhub.List(ctx, l, progress)
	}
	l.Username, l.Password = u, p
	repos, err := dockerhub.List(ctx, l, progress)
	var he *dockerhub.Error
	if errors.As(err, &he) && he.Login && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden) {
		o.Logger.Warn("Docker Hub's API refused the login the run holds for the source registry; listing what it shows anonymously (public repositories only)",
			"registry", o.From.Registry, "username", u)
		l.Username, l.Password = "", ""
		return dockerhub.List(ctx, l, progress)
	}
	return repos, err
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

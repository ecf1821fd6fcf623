package exportcmd

import (
	"flag"

	"github.com/regmigrate/regmigrate/steps/dockerhub"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/stepcli"
)

// hubFlags: a Docker Hub source, listed with Hub's API.
type hubFlags struct {
	org, api  string
	noLibrary bool
}

func (h *hubFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&h.org, "hub-org", "", "the source is Docker Hub: list this organisation's or user's repositories with Hub's API (default for a docker.io source: its namespace)")
	fs.StringVar(&h.api, "hub-api", "", "Docker Hub's API URL (default "+dockerhub.DefaultAPI+", or $"+dockerhub.EnvAPI+")")
	fs.BoolVar(&h.noLibrary, "no-library-namespace", false, "write official images (library/NAME) as NAME on the target")
}

// source is export's Hub listing, nil when the source is not Docker Hub.
func (h *hubFlags) source(from imageref.Location, env stepcli.Env) *export.Hub {
	if h.org == "" && h.api == "" && !dockerhub.IsHub(from.Registry) {
		return nil
	}
	o := dockerhub.Options{API: h.api, Org: h.org}
	o.FromEnv(env.Getenv)
	if o.Org == "" {
		o.Org = from.Namespace
	}
	return &export.Hub{List: o, NoLibraryNamespace: h.noLibrary}
}

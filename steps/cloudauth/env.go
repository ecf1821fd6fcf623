package cloudauth

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// ghcrAuth is GHCR's token from the environment: GHCR_TOKEN, else
// GITHUB_TOKEN (a workflow's), as GITHUB_ACTOR when set (GHCR takes any
// user name with a token). None: anonymous (public packages).
func ghcrAuth(getenv func(string) string) authn.Authenticator {
	tok := getenv("GHCR_TOKEN")
	if tok == "" {
		tok = getenv("GITHUB_TOKEN")
	}
	if tok == "" {
		return authn.Anonymous
	}
	user := getenv("GITHUB_ACTOR")
	if user == "" {
		user = "regmigrate"
	}
	return &authn.Basic{Username: user, Password: tok}
}

// gitlabAuth is GitLab's token from the environment: in a GitLab job,
// CI_REGISTRY_USER and CI_REGISTRY_PASSWORD for the job's CI_REGISTRY,
// else CI_JOB_TOKEN (as gitlab-ci-token); elsewhere GITLAB_TOKEN (a
// personal, project or deploy token) as GITLAB_USER. None: anonymous.
func gitlabAuth(host string, getenv func(string) string) (authn.Authenticator, error) {
	if u, p := getenv("CI_REGISTRY_USER"), getenv("CI_REGISTRY_PASSWORD"); u != "" && p != "" && strings.EqualFold(getenv("CI_REGISTRY"), host) {
		return &authn.Basic{Username: u, Password: p}, nil
	}
	if t := getenv("CI_JOB_TOKEN"); t != "" {
		return &authn.Basic{Username: "gitlab-ci-token", Password: t}, nil
	}
	if t := getenv("GITLAB_TOKEN"); t != "" {
		u := getenv("GITLAB_USER")
		if u == "" {
			return nil, fmt.Errorf("registry %s: GITLAB_TOKEN is set but GITLAB_USER is not: GitLab's registry takes a token with the name of its user (or deploy token)", host)
		}
		return &authn.Basic{Username: u, Password: t}, nil
	}
	return authn.Anonymous, nil
}

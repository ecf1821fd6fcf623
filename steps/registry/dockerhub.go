package registry

import "strings"

// hubEndpoint is Docker Hub's registry API. docker.io, index.docker.io and
// registry.hub.docker.com name Docker Hub in references, as docker and
// go-containerregistry read them; its API answers at registry-1.docker.io
// (where the docker daemon sends its requests).
const hubEndpoint = "registry-1.docker.io"

// endpoint is the host a registry's API requests go to: the host itself,
// or Docker Hub's endpoint for Docker Hub's names. Credentials and the
// quota stay the registry's (docker.io's).
func endpoint(host string) string {
	switch strings.ToLower(host) {
	case "docker.io", "index.docker.io", "registry.hub.docker.com":
		return hubEndpoint
	}
	return host
}

package registry

import "testing"

func TestDockerHubNamesGoToItsEndpoint(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]string{
		"docker.io": hubEndpoint, "index.docker.io": hubEndpoint, "registry.hub.docker.com": hubEndpoint,
		"registry-1.docker.io": hubEndpoint, "127.0.0.1:5000": "127.0.0.1:5000", "ghcr.io": "ghcr.io",
	} {
		c := New(Options{})
		h, err := c.host(host)
		if err != nil {
			t.Fatal(err)
		}
		h.scheme = "https"
		u, err := c.requestURL(h, "/v2/library/nginx/manifests/latest")
		if err != nil {
			t.Fatal(err)
		}
		if u.Host != want {
			t.Errorf("%s: requests go to %s, want %s", host, u.Host, want)
		}
	}
}

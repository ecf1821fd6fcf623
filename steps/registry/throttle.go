package registry

import "github.com/regmigrate/regmigrate/steps/throttle"

// throttleOf is host's limiter (Options.Throttle), nil when none: do counts
// every request to the registry (redirects followed included) and paces
// every body byte both ways, uploads and downloads; the ping counts as a
// request. Token requests to an authorization server are not the
// registry's and are not counted.
func (c *Client) throttleOf(host string) *throttle.Limiter {
	if c.o.Throttle == nil {
		return nil
	}
	return c.o.Throttle(host)
}

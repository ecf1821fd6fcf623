package stepcli

import (
	"flag"

	"github.com/regmigrate/regmigrate/steps/throttle"
)

// throttleFlags are --rate-limit and --bandwidth, "[HOST=]RATE", each
// repeatable: the generator renders a pod's share of the spec's throttle
// per registry (its total divided by the shards that run at once).
type throttleFlags struct {
	perHost map[string]throttle.Limits
	all     throttle.Limits
}

func (t *throttleFlags) bind(fs *flag.FlagSet) {
	set := func(parse func(string) (float64, error), field func(*throttle.Limits) *float64) func(string) error {
		return func(v string) error {
			host, r, err := throttle.ParseHostValue(v, parse)
			if err != nil {
				return err
			}
			if host == "" {
				*field(&t.all) = r
				return nil
			}
			if t.perHost == nil {
				t.perHost = map[string]throttle.Limits{}
			}
			l := t.perHost[host]
			*field(&l) = r
			t.perHost[host] = l
			return nil
		}
	}
	fs.Func("rate-limit", "[HOST=]N/s: requests per second to a registry (repeatable; without HOST every registry)",
		set(throttle.ParseRequests, func(l *throttle.Limits) *float64 { return &l.Requests }))
	fs.Func("bandwidth", "[HOST=]RATE: bytes per second to and from a registry, e.g. 50MiB/s or 100Mbit/s (repeatable)",
		set(throttle.ParseBandwidth, func(l *throttle.Limits) *float64 { return &l.Bytes }))
}

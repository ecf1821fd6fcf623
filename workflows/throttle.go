package workflows

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/regmigrate/regmigrate/steps/throttle"
)

// ThrottleAnnotation, on every step pod, states the throttles: each
// registry's total and the pod's share of it.
const ThrottleAnnotation = "regmigrate.io/throttle"

// Hub is a Docker Hub source: export lists its repositories with Hub's
// API (the step's --hub-org, --hub-api, --no-library-namespace).
type Hub struct {
	Org, API           string
	NoLibraryNamespace bool
}

// podThrottles is each registry's throttle per pod: the plan's total
// divided by the shards that run at once (every pod of a shard talks to
// the registries; the export pod runs alone and gets the same share).
func (p Plan) podThrottles() map[string]throttle.Limits {
	out := map[string]throttle.Limits{}
	for h, l := range p.Throttles {
		out[h] = l.Divide(int(p.ShardParallelism))
	}
	return out
}

func (p Plan) checkThrottles() error {
	if len(p.Throttles) == 0 {
		return nil
	}
	if p.ShardParallelism <= 0 {
		return errors.New("plan: a throttle (rate limit, bandwidth) is shared by the shards that run at once: give --shard-parallelism N, and each pod gets the total divided by N")
	}
	for h, l := range p.Throttles {
		if h == "" || l.IsZero() {
			return fmt.Errorf("plan: throttle of %q: name a registry and a rate", h)
		}
		if pod := l.Divide(int(p.ShardParallelism)); pod.Bytes > 0 && pod.Bytes < 1024 {
			return fmt.Errorf("plan: bandwidth of %s: %s divided among %d shards at once is under 1KiB/s a pod: raise it or lower --shard-parallelism", h, throttle.FormatBandwidth(l.Bytes), p.ShardParallelism)
		}
	}
	return nil
}

func hostsOf(m map[string]throttle.Limits) []string {
	var hs []string
	for h := range m {
		hs = append(hs, h)
	}
	sort.Strings(hs)
	return hs
}

// throttle adds a pod's share of each throttle (--rate-limit=HOST=N/s,
// --bandwidth=HOST=RATE).
func (f *flags) throttle(p Plan) {
	pod := p.podThrottles()
	for _, h := range hostsOf(pod) {
		l := pod[h]
		if l.Requests > 0 {
			f.str("rate-limit", h+"="+throttle.FormatRequests(l.Requests))
		}
		if l.Bytes > 0 {
			f.str("bandwidth", h+"="+throttle.FormatBandwidth(l.Bytes))
		}
	}
}

// hub adds export's Docker Hub flags.
func (f *flags) hub(h *Hub) {
	if h == nil {
		return
	}
	f.str("hub-org", h.Org)
	f.str("hub-api", h.API)
	f.boolean("no-library-namespace", h.NoLibraryNamespace)
}

// throttleMetadata states the throttles on every pod (nil when none):
// "HOST: 40/s, 100MiB/s in total, 10/s, 25MiB/s a pod (4 shards at once)".
func (p Plan) throttleMetadata() *wfv1.Metadata {
	if len(p.Throttles) == 0 {
		return nil
	}
	pod := p.podThrottles()
	var parts []string
	for _, h := range hostsOf(p.Throttles) {
		parts = append(parts, fmt.Sprintf("%s: %s in total, %s a pod (%d shards at once)", h, p.Throttles[h], pod[h], p.ShardParallelism))
	}
	return &wfv1.Metadata{Annotations: map[string]string{ThrottleAnnotation: strings.Join(parts, "; ")}}
}

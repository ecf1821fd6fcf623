package workflows_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/throttle"
	"github.com/regmigrate/regmigrate/workflows"
)

// A registry's throttle is its total: every step pod gets the total
// divided by the shards that run at once, in its args and stated on the
// pod; without a bound on the shards at once there is no share to give.
func TestThrottleIsSharedAmongTheShardsAtOnce(t *testing.T) {
	t.Parallel()
	p := plans()["hub"]
	wf, err := workflows.Workflow(p)
	if err != nil {
		t.Fatal(err)
	}
	ann := wf.Spec.PodMetadata.Annotations[workflows.ThrottleAnnotation]
	for _, want := range []string{"docker.io: 40/s, 100MiB/s in total, 10/s, 25MiB/s a pod (4 shards at once)", "newreg.example:5000: 200MiB/s in total, 50MiB/s a pod"} {
		if !strings.Contains(ann, want) {
			t.Errorf("pod annotation %q lacks %q", ann, want)
		}
	}
	seen := 0
	for _, tmpl := range wf.Spec.Templates {
		if tmpl.Container == nil || !slices.Contains([]string{contract.StepExport, contract.StepMirror, "verify-shard"}, tmpl.Name) {
			continue
		}
		seen++
		for _, want := range []string{"--rate-limit=docker.io=10/s", "--bandwidth=docker.io=25MiB/s", "--bandwidth=newreg.example:5000=50MiB/s"} {
			if !slices.Contains(tmpl.Container.Args, want) {
				t.Errorf("%s: args lack %s: %v", tmpl.Name, want, tmpl.Container.Args)
			}
		}
	}
	if seen < 2 {
		t.Fatalf("found %d step templates among %d", seen, len(wf.Spec.Templates))
	}

	p.ShardParallelism = 0
	if _, err := workflows.Workflow(p); err == nil || !strings.Contains(err.Error(), "give --shard-parallelism N") {
		t.Errorf("a throttle without shard parallelism: %v, want an error that says to give --shard-parallelism", err)
	}
	p.ShardParallelism, p.Throttles = 4, map[string]throttle.Limits{"docker.io": {Bytes: 2048}}
	if _, err := workflows.Workflow(p); err == nil || !strings.Contains(err.Error(), "under 1KiB/s a pod") {
		t.Errorf("a bandwidth too small to share: %v", err)
	}
}

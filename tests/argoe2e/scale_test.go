//go:build e2e

package argoe2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/packer"

	"github.com/regmigrate/regmigrate/workflows"
)

// assertScale holds the generator's arithmetic for large scopes to a real
// run. On the Workflow the real controller ran: every shard added
// Plan.NodesPerShard nodes to its status, and no node took more than
// workflows.StatusBytesPerNode. Then the Workflow is grown to
// workflows.DefaultMaxShards shards, then to workflows.MaxShardsCeiling, with copies of this run's shard nodes
// (fresh node IDs, shard names and counts, as Argo and the steps would
// write them), and Argo's own packer, which the controller runs before it
// stores a Workflow, must accept it (compressing its nodes if it needs).
func assertScale(t *testing.T, wf *wfv1.Workflow, plan workflows.Plan, shardIDs []string) {
	t.Helper()
	per := plan.NodesPerShard()
	byShard := map[string][]wfv1.NodeStatus{}
	largest, largestName := 0, ""
	for _, n := range wf.Status.Nodes {
		b, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > largest {
			largest, largestName = len(b), n.DisplayName
		}
		if s := shardOf(n); s != "" {
			byShard[s] = append(byShard[s], n)
		}
	}
	for _, s := range shardIDs {
		// A step retried (exit 75) adds an attempt: more is allowed, fewer
		// means the arithmetic is wrong.
		if got := len(byShard[s]); got < per {
			t.Errorf("shard %s has %d nodes in the Workflow's status, the generator counts %d", s, got, per)
		} else if got > per {
			t.Logf("shard %s has %d nodes (a retried attempt); the generator counts %d without retries", s, got, per)
		}
	}
	if largest > workflows.StatusBytesPerNode {
		t.Errorf("node %q takes %d bytes in the status, more than the %d the generator assumes (workflows.StatusBytesPerNode)", largestName, largest, workflows.StatusBytesPerNode)
	}

	for _, shards := range []int{workflows.DefaultMaxShards, workflows.MaxShardsCeiling} {
		grown(t, wf, byShard[shardIDs[0]], shardIDs, shards)
	}
	t.Logf("largest node %d bytes (%s)", largest, largestName)
}

// grown is wf grown to shards shards with copies of model, a shard's
// nodes; Argo's packer must store it.
func grown(t *testing.T, wf *wfv1.Workflow, model []wfv1.NodeStatus, shardIDs []string, shards int) {
	t.Helper()
	if len(model) == 0 {
		t.Fatalf("no nodes for shard %s", shardIDs[0])
	}
	big := wf.DeepCopy()
	rng := rand.New(rand.NewPCG(1, 2))
	for k := len(shardIDs); k < shards; k++ {
		shard := fmt.Sprintf("ns-team-%05d", k)
		ids := map[string]string{}
		for _, n := range model {
			ids[n.ID] = fmt.Sprintf("%s-%d", wf.Name, rng.Uint32())
		}
		for _, n := range model {
			c := *n.DeepCopy()
			c.ID = ids[n.ID]
			c.Name = strings.ReplaceAll(n.Name, shardIDs[0], shard)
			c.DisplayName = strings.ReplaceAll(n.DisplayName, shardIDs[0], shard)
			for i, ch := range c.Children {
				if id, ok := ids[ch]; ok {
					c.Children[i] = id
				}
			}
			for _, params := range [][]wfv1.Parameter{paramsOf(c.Inputs), paramsOf(c.Outputs)} {
				for i := range params {
					if params[i].Value == nil {
						continue
					}
					v := params[i].Value.String()
					switch {
					case v == shardIDs[0]:
						v = shard
					case isNumber(v):
						v = fmt.Sprint(rng.IntN(1 << 30))
					default:
						v = strings.ReplaceAll(v, shardIDs[0], shard)
					}
					params[i].Value = wfv1.AnyStringPtr(v)
				}
			}
			if c.Outputs != nil {
				for i := range c.Outputs.Artifacts {
					if s3 := c.Outputs.Artifacts[i].S3; s3 != nil {
						s3.Key = strings.ReplaceAll(s3.Key, shardIDs[0], shard)
					}
				}
			}
			big.Status.Nodes[c.ID] = c
		}
	}
	raw, _ := json.Marshal(big)
	nodes := len(big.Status.Nodes)
	if err := packer.CompressWorkflowIfNeeded(big); err != nil {
		t.Errorf("a Workflow of %d shards (%d nodes, %d bytes) does not fit in one Argo Workflow: %v", shards, nodes, len(raw), err)
		return
	}
	stored, _ := json.Marshal(big)
	t.Logf("at %d shards: %d nodes, %d KiB of Workflow as built, %d KiB as Argo stores it (nodes compressed: %v)",
		shards, nodes, len(raw)>>10, len(stored)>>10, big.Status.CompressedNodes != "")
}

// shardOf is the shard a node runs for (its "shard" input), or "".
func shardOf(n wfv1.NodeStatus) string {
	for _, p := range paramsOf(n.Inputs) {
		if p.Name == "shard" && p.Value != nil {
			return p.Value.String()
		}
	}
	return ""
}

func paramsOf[T interface{ *wfv1.Inputs | *wfv1.Outputs }](io T) []wfv1.Parameter {
	switch v := any(io).(type) {
	case *wfv1.Inputs:
		if v != nil {
			return v.Parameters
		}
	case *wfv1.Outputs:
		if v != nil {
			return v.Parameters
		}
	}
	return nil
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

package runner

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/steps/artifacts"
)

// shardsOpenAtOnce runs eachShard on shards of the given sizes, holds
// every shard that starts, and returns how many started once want of them
// have and a moment passed for any more to start; then it lets them all
// finish and checks that every shard ran.
func shardsOpenAtOnce(t *testing.T, jobs, want int, sizes ...int) int {
	t.Helper()
	var plan artifacts.Plan
	for i, n := range sizes {
		plan.Shards = append(plan.Shards, artifacts.Shard{ID: fmt.Sprintf("s%03d", i), Images: n})
	}
	var mu sync.Mutex
	open, ran := 0, map[string]bool{}
	entered := make(chan struct{}, len(sizes))
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- eachShard(plan, jobs, func(sh artifacts.Shard) error {
			mu.Lock()
			open++
			ran[sh.ID] = true
			mu.Unlock()
			entered <- struct{}{}
			<-release
			return nil
		})
	}()
	for range want {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			close(release)
			t.Fatalf("only %d shards started, want %d", open, want)
		}
	}
	time.Sleep(100 * time.Millisecond) // room for a shard too many to start
	mu.Lock()
	got := open
	mu.Unlock()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(ran) != len(sizes) {
		t.Errorf("%d of %d shards ran", len(ran), len(sizes))
	}
	return got
}

func TestEachShardKeepsAFewShardsOpen(t *testing.T) {
	// 50 namespaces of 200 images, 16 jobs: two shards keep 16 images in
	// flight (one's tail beside the next one's start). Opening all 50 at
	// once held 800 goroutines and every shard's mapping and results.
	big := make([]int, 50)
	for i := range big {
		big[i] = 200
	}
	if got := shardsOpenAtOnce(t, 16, 2, big...); got != 2 {
		t.Errorf("shards of 200 images, 16 jobs: %d open at once, want 2", got)
	}
	// Many one-image namespaces: enough open to keep 16 images in flight.
	ones := make([]int, 100)
	for i := range ones {
		ones[i] = 1
	}
	if got := shardsOpenAtOnce(t, 16, 32, ones...); got != 32 {
		t.Errorf("one-image shards, 16 jobs: %d open at once, want 32", got)
	}
	// Mixed: a big shard (counts 16) beside small ones (4 each) up to 32.
	if got := shardsOpenAtOnce(t, 16, 5, 500, 4, 4, 4, 4, 4, 4); got != 5 {
		t.Errorf("a 500-image shard and 4-image ones, 16 jobs: %d open at once, want 5", got)
	}
}

func TestEachShardRunsEveryShardAndJoinsErrors(t *testing.T) {
	plan := artifacts.Plan{Shards: []artifacts.Shard{{ID: "a", Images: 3}, {ID: "b", Images: 0}, {ID: "c", Images: 40}}}
	var mu sync.Mutex
	seen := map[string]bool{}
	err := eachShard(plan, 1, func(sh artifacts.Shard) error {
		mu.Lock()
		seen[sh.ID] = true
		mu.Unlock()
		if sh.ID != "b" {
			return fmt.Errorf("shard %s failed", sh.ID)
		}
		return nil
	})
	if len(seen) != 3 {
		t.Errorf("ran %v, want a, b and c", seen)
	}
	if err == nil || err.Error() != "shard a failed\nshard c failed" {
		t.Errorf("error %q, want both shards' errors, joined", err)
	}
}

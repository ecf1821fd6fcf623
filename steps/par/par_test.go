package par

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestForEachCallsEveryIndexOnce(t *testing.T) {
	var seen [1000]atomic.Int32
	ForEach(context.Background(), 7, len(seen), func(i int) { seen[i].Add(1) }, func(i int) { t.Errorf("index %d skipped without a cancellation", i) })
	for i := range seen {
		if n := seen[i].Load(); n != 1 {
			t.Fatalf("index %d called %d times", i, n)
		}
	}
}

func TestForEachBoundsConcurrency(t *testing.T) {
	var now, peak atomic.Int32
	var mu sync.Mutex
	ForEach(context.Background(), 3, 50, func(int) {
		n := now.Add(1)
		mu.Lock()
		peak.Store(max(peak.Load(), n))
		mu.Unlock()
		for range 1000 {
			_ = now.Load()
		}
		now.Add(-1)
	}, nil)
	if p := peak.Load(); p > 3 || p < 1 {
		t.Errorf("peak concurrency %d: want 1..3", p)
	}
}

// After cancellation no new item starts; every item is either run or
// reported skipped, never both, never neither.
func TestForEachStopsFeedingOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var ran, skipped [100]atomic.Int32
	var cancelled atomic.Bool
	var after atomic.Int32 // items started once the cancel had happened
	ForEach(ctx, 2, 100, func(i int) {
		if cancelled.Load() {
			after.Add(1)
		}
		ran[i].Add(1)
		if i == 10 {
			cancel()
			cancelled.Store(true)
		}
	}, func(i int) { skipped[i].Add(1) })
	for i := range ran {
		if ran[i].Load()+skipped[i].Load() != 1 {
			t.Fatalf("index %d: ran %d, skipped %d", i, ran[i].Load(), skipped[i].Load())
		}
	}
	// After the cancel, at most the item the other worker had received
	// and one handed over in the same instant start. (Counting every item
	// started was wrong: the other worker may run several before the one
	// that cancels gets to its cancel, on a loaded machine.)
	if n := after.Load(); n > 2 {
		t.Errorf("%d items started after the cancel: feeding did not stop", n)
	}
}

func TestMemoComputesOncePerKeyAndRetriesFailures(t *testing.T) {
	var m Memo[string, int]
	var calls atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			v, _, err := m.Do(context.Background(), "a", func() (int, error) { calls.Add(1); return 42, nil })
			if v != 42 || err != nil {
				t.Errorf("Do = %d, %v", v, err)
			}
		})
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("computed %d times: want once", calls.Load())
	}
	boom := errors.New("boom")
	if _, fresh, err := m.Do(context.Background(), "b", func() (int, error) { return 0, boom }); !errors.Is(err, boom) || !fresh {
		t.Errorf("failing compute: %v fresh=%v", err, fresh)
	}
	if v, fresh, err := m.Do(context.Background(), "b", func() (int, error) { return 7, nil }); v != 7 || err != nil || !fresh {
		t.Errorf("after a failure the next caller computes again: got %d, %v, fresh=%v", v, err, fresh)
	}
	m.Forget("a")
	if v, _, _ := m.Do(context.Background(), "a", func() (int, error) { return 1, nil }); v != 1 {
		t.Errorf("after Forget: %d, want recomputed 1", v)
	}
}

func TestMemoWaiterLeavesOnCancel(t *testing.T) {
	var m Memo[string, int]
	release := make(chan struct{})
	started := make(chan struct{})
	go m.Do(context.Background(), "k", func() (int, error) { close(started); <-release; return 1, nil })
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := m.Do(ctx, "k", func() (int, error) { t.Error("second compute"); return 0, nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("waiter with a cancelled ctx: %v", err)
	}
	close(release)
}

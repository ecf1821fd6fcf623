// Package par is the one worker pool and the one once-per-key memo of the
// step packages: export, mirror, backfill, verify and the ImageStreamTag
// check hand their items to ForEach, and what many items share (a
// repository's tag list, an ImageStream) is fetched once through a Memo.
package par

import (
	"context"
	"sync"
)

// ForEach calls f(i) for every i in [0, n) on at most jobs goroutines
// (jobs < 1 means 1) and returns when every call has returned. Once ctx
// ends no further index is started: skipped, when not nil, is called for
// each index that was never handed to f, so that the caller can record it
// (as cancelled) instead of leaving a zero result. f itself should watch
// ctx for work already under way.
func ForEach(ctx context.Context, jobs, n int, f func(i int), skipped func(i int)) {
	if n <= 0 {
		return
	}
	jobs = min(max(jobs, 1), n)
	idx := make(chan int)
	var wg sync.WaitGroup
	for range jobs {
		wg.Go(func() {
			for i := range idx {
				f(i)
			}
		})
	}
	i := 0
feed:
	for ; i < n; i++ {
		if ctx.Err() != nil {
			break
		}
		select {
		case idx <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(idx)
	wg.Wait()
	if skipped != nil {
		for ; i < n; i++ {
			skipped(i)
		}
	}
}

// Memo computes a value once per key, whoever asks first; callers that ask
// while it is being computed wait for it (or for their ctx). A failed
// computation is not kept: the next caller tries again. The zero Memo is
// ready to use.
type Memo[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*entry[V]
}

type entry[V any] struct {
	done chan struct{}
	v    V
	err  error
}

// Do returns key's value, calling compute if no one has yet. fresh is true
// for the caller whose compute produced it.
func (m *Memo[K, V]) Do(ctx context.Context, key K, compute func() (V, error)) (v V, fresh bool, err error) {
	m.mu.Lock()
	if m.m == nil {
		m.m = map[K]*entry[V]{}
	}
	e, ok := m.m[key]
	if !ok {
		e = &entry[V]{done: make(chan struct{})}
		m.m[key] = e
	}
	m.mu.Unlock()
	if !ok {
		e.v, e.err = compute()
		if e.err != nil {
			m.mu.Lock()
			delete(m.m, key)
			m.mu.Unlock()
		}
		close(e.done)
		return e.v, true, e.err
	}
	select {
	case <-e.done:
		return e.v, false, e.err
	case <-ctx.Done():
		return v, false, ctx.Err()
	}
}

// Forget drops key's value: the next Do computes it again.
func (m *Memo[K, V]) Forget(key K) {
	m.mu.Lock()
	delete(m.m, key)
	m.mu.Unlock()
}

package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// TestGroupCommit: items queued while a batch is written go together in the
// next batch, each caller gets its own item's result, and a caller that
// leaves does not stop its item being written.
func TestGroupCommit(t *testing.T) {
	entered := make(chan []int, 8)
	release := make(chan struct{})
	g := &groupCommit[int]{max: 3, write: func(ctx context.Context, batch []int) []error {
		entered <- slices.Clone(batch)
		<-release
		errs := make([]error, len(batch))
		for i, v := range batch {
			if v%2 == 1 {
				errs[i] = fmt.Errorf("odd %d", v)
			}
		}
		return errs
	}}

	first := g.start(0)
	if got := <-entered; !slices.Equal(got, []int{0}) {
		t.Fatalf("first batch = %v, want [0]: a lone item is written at once", got)
	}
	// While it is written, five more gather: the next batches take 3, then 2.
	var dones []<-chan error
	for v := 1; v <= 5; v++ {
		dones = append(dones, g.start(v))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.wait(ctx, dones[0]); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a cancelled context = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("item 0: %v", err)
	}
	if got := <-entered; !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("second batch = %v, want [1 2 3]", got)
	}
	if got := <-entered; !slices.Equal(got, []int{4, 5}) {
		t.Fatalf("third batch = %v, want [4 5]", got)
	}
	for i, done := range dones {
		v := i + 1
		err := <-done // item 1's caller left, but its item was written and its result sent
		if (v%2 == 1) != (err != nil) {
			t.Errorf("item %d: %v", v, err)
		}
	}
	// Idle again: the next item is written at once, by a new flush.
	if err := g.do(context.Background(), 6); err != nil {
		t.Fatalf("item 6: %v", err)
	}
	if got := <-entered; !slices.Equal(got, []int{6}) {
		t.Fatalf("batch after idle = %v, want [6]", got)
	}
}

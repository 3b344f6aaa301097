package perkey

import (
	"context"
	"errors"
	"testing"
)

// TestLock: a held key makes the next Lock wait until unlock or its
// context's end; other keys are independent.
func TestLock(t *testing.T) {
	var k Locks
	ctx := context.Background()
	unlock, err := k.Lock(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	other, err := k.Lock(ctx, "b")
	if err != nil {
		t.Fatalf("another key: %v", err)
	}
	other()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := k.Lock(cancelled, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock of a held key with an ended context = %v, want context.Canceled", err)
	}
	got := make(chan struct{})
	go func() {
		u, err := k.Lock(ctx, "a")
		if err == nil {
			u()
		}
		close(got)
	}()
	unlock()
	<-got
}

// TestLimiters: one limiter per key, its rate following the latest qps.
func TestLimiters(t *testing.T) {
	var l Limiters
	a := l.Get("a", 0)
	if a.Limit() != 10 || a.Burst() != 10 {
		t.Errorf("default: %v/%d, want 10/10", a.Limit(), a.Burst())
	}
	if l.Get("a", 5) != a || a.Limit() != 5 || a.Burst() != 5 {
		t.Errorf("a changed qps made another limiter or left the rate: %v/%d", a.Limit(), a.Burst())
	}
	if l.Get("b", 5) == a {
		t.Error("two keys share a limiter")
	}
}

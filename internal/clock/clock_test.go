package clock

import (
	"testing"
	"time"
)

func TestFakeFiresInOrderOnlyWhenAdvanced(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := NewFake(start)
	a, b := f.NewTimer(time.Second), f.NewTimer(2*time.Second)
	f.Advance(999 * time.Millisecond)
	for _, tm := range []Timer{a, b} {
		select {
		case <-tm.C():
			t.Fatal("a timer fired before its deadline")
		default:
		}
	}
	if d, ok := f.NextDeadline(); !ok || !d.Equal(start.Add(time.Second)) {
		t.Fatalf("NextDeadline = %v %v, want %v", d, ok, start.Add(time.Second))
	}
	f.Advance(time.Millisecond)
	if got := <-a.C(); !got.Equal(start.Add(time.Second)) {
		t.Fatalf("a fired at %v", got)
	}
	if b.Stop() != true {
		t.Fatal("Stop of an armed timer returned false")
	}
	f.Advance(time.Hour)
	select {
	case <-b.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	armed := f.Armed()
	b.Reset(0)
	<-armed
	if got := <-b.C(); !got.Equal(f.Now()) {
		t.Fatalf("Reset(0) fired at %v, want now %v", got, f.Now())
	}
}

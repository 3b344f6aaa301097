package perkey

import (
	"sync"

	"golang.org/x/time/rate"
)

// Limiters is a rate limiter per key. The zero value is ready to use.
type Limiters struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// Get returns key's limiter, allowing qps calls a second with a burst of
// qps (10 when qps ≤ 0); a changed qps changes the existing limiter, so
// waiters keep their place.
func (l *Limiters) Get(key string, qps int) *rate.Limiter {
	if qps <= 0 {
		qps = 10
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*rate.Limiter{}
	}
	lim := l.m[key]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(qps), qps)
		l.m[key] = lim
	} else if lim.Limit() != rate.Limit(qps) {
		lim.SetLimit(rate.Limit(qps))
		lim.SetBurst(qps)
	}
	return lim
}

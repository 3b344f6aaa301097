package api

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// What an unsigned stranger may cost: request.go and signature.go use these
// three to refuse a caller that has not proved it holds a key before its body
// is read, and to bound the memory bodies take while they are read.

// maxSources bounds the per-source buckets and maxUnknownKeys the negative
// cache of AccessKeyIds: past it, an arbitrary entry is evicted, so a flood of
// addresses or made-up key IDs costs bounded memory.
const (
	maxSources     = 10000
	maxUnknownKeys = 10000
	unknownKeyTTL  = 5 * time.Second
)

// sourceLimits is a token bucket per source address for requests that are
// unsigned, name an unknown AccessKeyId or fail their signature.
type sourceLimits struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

func newSourceLimits(perSecond float64, burst int) *sourceLimits {
	return &sourceLimits{rate: rate.Limit(perSecond), burst: burst, m: map[string]*rate.Limiter{}}
}

func (s *sourceLimits) limiter(src string) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.m[src]
	if !ok {
		if len(s.m) >= maxSources {
			for k := range s.m { // map order is random: an arbitrary victim
				delete(s.m, k)
				break
			}
		}
		l = rate.NewLimiter(s.rate, s.burst)
		s.m[src] = l
	}
	return l
}

// take spends a token of src now; nil with ok=false when the bucket is empty.
// The reservation can be given back (Cancel) once the caller proves its key.
func (s *sourceLimits) take(src string) (res *rate.Reservation, ok bool) {
	if s == nil {
		return nil, true
	}
	res = s.limiter(src).Reserve()
	if !res.OK() || res.Delay() > 0 {
		res.Cancel()
		return nil, false
	}
	return res, true
}

// sourceOf is the address a request came from, without the port.
func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// inflight counts the bytes of request bodies being read, up to max.
type inflight struct {
	max int64
	n   atomic.Int64
}

// acquire reserves n bytes; false when they would exceed the budget.
func (f *inflight) acquire(n int64) bool {
	if f == nil || n <= 0 {
		return true
	}
	for {
		cur := f.n.Load()
		if cur+n > f.max {
			return false
		}
		if f.n.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

func (f *inflight) release(n int64) {
	if f != nil && n > 0 {
		f.n.Add(-n)
	}
}

// unknownKeys remembers for unknownKeyTTL the AccessKeyIds the store does not
// know, so a stranger repeating a made-up ID does not reach the database.
type unknownKeys struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (u *unknownKeys) has(id string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.m[id]
	if ok && time.Since(t) >= unknownKeyTTL {
		delete(u.m, id)
		return false
	}
	return ok
}

func (u *unknownKeys) add(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]time.Time{}
	}
	if len(u.m) >= maxUnknownKeys {
		for k := range u.m {
			delete(u.m, k)
			break
		}
	}
	u.m[id] = time.Now()
}

func errSourceThrottled() *Error {
	return &Error{Code: "Throttling.Source", Status: http.StatusBadRequest,
		Message: "Too many unsigned or unauthenticated requests from this address; sign requests with a valid AccessKey, or slow down (--stranger-rate)."}
}

func errInflightFull() *Error {
	return &Error{Code: "Throttling", Status: http.StatusServiceUnavailable,
		Message: "The server is reading as many request bodies as it allows (--max-inflight-body); retry shortly."}
}

package api

import (
	"net/http"

	"golang.org/x/time/rate"
)

// withRateLimit applies the per-AccessKey token bucket (per console user
// for console calls).
func (a *API) withRateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := callFrom(r.Context())
		if a.opts.RateLimit > 0 {
			v, _ := a.limiters.LoadOrStore(c.limitKey(), rate.NewLimiter(rate.Limit(a.opts.RateLimit), a.opts.RateBurst))
			res := v.(*rate.Limiter).Reserve()
			if !res.OK() || res.Delay() > 0 {
				res.Cancel()
				w.Header().Set("x-ratelimit-user-api", "Limit:"+itoa(int64(a.opts.RateLimit))+",TimeLeft:1000")
				a.writeError(w, c, &Error{Code: "Throttling.User", Status: http.StatusBadRequest,
					Message: "Request was denied due to user flow control; slow down or raise --rate-limit."})
				return
			}
			if c.nonceSpent != nil {
				// A read running before its nonce is known fresh: a replay
				// gives its token back, so replaying a captured request
				// cannot spend the key's rate.
				defer func() {
					if c.nonceSpent() != nil {
						res.Cancel()
					}
				}()
			}
		}
		next.ServeHTTP(w, r)
	})
}

package aliyun

import (
	"context"
	"sync"
	"time"
)

// batchWindow is how long the first item of a batch waits for company.
const batchWindow = 5 * time.Millisecond

// maxFlushers bounds the batch calls of one queue in flight at once.
const maxFlushers = 4

// BatchFunc makes one batch call for items and returns each item's result
// (a missing item gets a nil result). It is called after the rate limits
// were waited for: it must use SendWaited.
type BatchFunc func(ctx context.Context, items []string) (map[string]any, error)

type batchQueue struct {
	items    []*batchItem
	flushers int
}

type batchItem struct {
	ctx  context.Context
	item string
	done chan struct{}
	res  any
	err  error
}

type batcher struct {
	mu     sync.Mutex
	queues map[string]*batchQueue
}

// Batched hands item to the queue named queue (the caller makes it unique
// per credential, endpoint and whatever the batch call shares, such as the
// CertId bound) and returns its result once a batch call carrying it ends.
// Concurrent deployments therefore share calls: each flush waits for the
// rate limits of action, then takes up to max waiting items. When ctx ends
// first, Batched returns ctx's error; the item may still be sent.
func (c *Client) Batched(ctx context.Context, queue, action string, item string, max int, flush BatchFunc) (any, error) {
	h := c.hub
	it := &batchItem{ctx: ctx, item: item, done: make(chan struct{})}
	h.batch.mu.Lock()
	if h.batch.queues == nil {
		h.batch.queues = map[string]*batchQueue{}
	}
	key := c.credKey() + "/" + queue
	q := h.batch.queues[key]
	if q == nil {
		q = &batchQueue{}
		h.batch.queues[key] = q
	}
	q.items = append(q.items, it)
	start := q.flushers < maxFlushers && q.flushers < len(q.items)
	if start {
		q.flushers++
	}
	h.batch.mu.Unlock()
	if start {
		go c.flush(q, action, max, flush)
	}
	select {
	case <-it.done:
		return it.res, it.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Client) flush(q *batchQueue, action string, max int, fn BatchFunc) {
	h := c.hub
	time.Sleep(batchWindow)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := c.WaitAction(ctx, action)
		h.batch.mu.Lock()
		n := min(len(q.items), max)
		items := q.items[:n:n]
		q.items = q.items[n:]
		if n == 0 {
			q.flushers--
		}
		h.batch.mu.Unlock()
		if n == 0 {
			cancel()
			return
		}
		var res map[string]any
		if err == nil {
			// The call ends when every deployment waiting for it has
			// given up (a cancelled attempt, a shutdown).
			finished := make(chan struct{})
			go func() {
				for _, it := range items {
					select {
					case <-it.ctx.Done():
					case <-finished:
						return
					}
				}
				cancel()
			}()
			names := make([]string, n)
			for i, it := range items {
				names[i] = it.item
			}
			res, err = fn(ctx, names)
			close(finished)
		}
		cancel()
		for _, it := range items {
			it.res, it.err = res[it.item], err
			close(it.done)
		}
	}
}

// SendWaited makes one call whose rate limits the caller already waited
// for, retried like Call (retries wait again).
func (c *Client) SendWaited(ctx context.Context, api API, own bool, action string, params map[string]string, out any) error {
	first := true
	return c.Retry(ctx, func() error {
		if first {
			first = false
			return c.send(ctx, api, own, action, params, out)
		}
		return c.callOnce(ctx, api, own, action, params, out)
	})
}

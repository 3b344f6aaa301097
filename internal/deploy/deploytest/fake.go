package deploytest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/certfleet/certfleet/internal/deploy"
)

// Fake is a deployer whose targets live in memory, one per ResourceID: for
// engine tests that need a deployer to count deliveries, fail on command or
// stall, without a target to run. It implements every optional ability but
// Hoster, passes Run, and is safe for concurrent use.
//
// It is the product fake/FAKE (Describe): its Config is a JSON object with
// one optional key, Label (a string); anything else is refused permanently.
// A credential is optional and unused.
type Fake struct {
	mu         sync.Mutex
	serving    map[int64]deploy.Bundle
	deliveries map[int64][]Delivery
	failures   []*failure
	holds      map[int64]*hold
}

// Delivery is one call that reached a Fake target.
type Delivery struct {
	Action   string // "deploy" or "rollback"
	JobID    int64
	WorkerID int64
	CertID   int64 // 0 for a rollback to nothing
	Err      error // what the call returned
}

type failure struct {
	resourceID int64 // 0: any
	left       int
	permanent  bool
}

type hold struct {
	reached chan struct{}
	once    sync.Once
	release chan struct{}
}

var (
	_ deploy.Product         = (*Fake)(nil)
	_ deploy.Rollbacker      = (*Fake)(nil)
	_ deploy.Snapshotter     = (*Fake)(nil)
	_ deploy.Checker         = (*Fake)(nil)
	_ deploy.ConfigValidator = (*Fake)(nil)
)

// NewFake returns a Fake on which nothing is deployed.
func NewFake() *Fake {
	return &Fake{serving: map[int64]deploy.Bundle{}, deliveries: map[int64][]Delivery{}, holds: map[int64]*hold{}}
}

// Fail makes the next n Deploy and Rollback calls to resourceID (0: to any
// resource) fail, with a deploy.Permanent error when permanent is set, else
// a transient one. Failed calls change nothing and are recorded.
func (f *Fake) Fail(resourceID int64, n int, permanent bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, &failure{resourceID: resourceID, left: n, permanent: permanent})
}

// Hold makes Deploy and Rollback calls to resourceID block, once they are
// recorded, until release is called or their context ends. reached is
// closed when the first call blocks.
func (f *Fake) Hold(resourceID int64) (reached <-chan struct{}, release func()) {
	h := &hold{reached: make(chan struct{}), release: make(chan struct{})}
	f.mu.Lock()
	f.holds[resourceID] = h
	f.mu.Unlock()
	var once sync.Once
	return h.reached, func() {
		once.Do(func() {
			f.mu.Lock()
			if f.holds[resourceID] == h {
				delete(f.holds, resourceID)
			}
			f.mu.Unlock()
			close(h.release)
		})
	}
}

// Deliveries returns the calls that reached resourceID, oldest first.
func (f *Fake) Deliveries(resourceID int64) []Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.deliveries[resourceID])
}

// Serving returns the bundle resourceID holds, if any.
func (f *Fake) Serving(resourceID int64) (deploy.Bundle, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.serving[resourceID]
	return b, ok
}

// FakeDescription describes the Fake's product.
var FakeDescription = deploy.Description{
	CloudName:    "fake",
	CloudProduct: "FAKE",
	Summary:      "Keeps certificates in memory, for tests.",
	Config:       []deploy.Field{{Name: "Label", Type: deploy.TypeString, Help: "A note; it changes nothing."}},
	Access:       deploy.AccessSpec{Need: deploy.AccessOptional},
}

// Describe returns FakeDescription.
func (f *Fake) Describe() deploy.Description { return FakeDescription }

type fakeConfig struct{ Label string }

// ValidateConfig accepts an empty Config or {"Label": "…"}.
func (f *Fake) ValidateConfig(config json.RawMessage) error {
	var c fakeConfig
	if err := FakeDescription.DecodeConfig(config, &c); err != nil {
		return deploy.Permanent(err)
	}
	return nil
}

// fakePrevious is a Fake target's previous state: the bundle it held, or
// null.
type fakePrevious struct{ Bundle *deploy.Bundle }

// Snapshot returns the bundle the target holds, as Deploy would.
func (f *Fake) Snapshot(ctx context.Context, req deploy.Request) ([]byte, error) {
	if err := f.start(ctx, req); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.previousLocked(req.Target.ResourceID), nil
}

func (f *Fake) previousLocked(resourceID int64) []byte {
	var p fakePrevious
	if b, ok := f.serving[resourceID]; ok {
		p.Bundle = &b
	}
	out, _ := json.Marshal(p)
	return out
}

// AlreadyDeployed reports whether the target holds req.Bundle (same leaf and key).
func (f *Fake) AlreadyDeployed(ctx context.Context, req deploy.Request) (bool, error) {
	if err := f.start(ctx, req); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.serving[req.Target.ResourceID]
	return ok && same(b, req.Bundle), nil
}

func same(a, b deploy.Bundle) bool {
	return a.Sha2 == b.Sha2 && a.FullChainPEM == b.FullChainPEM && a.KeyPEM == b.KeyPEM
}

// Deploy makes the target hold req.Bundle and returns what it held before.
func (f *Fake) Deploy(ctx context.Context, req deploy.Request) ([]byte, error) {
	if err := f.start(ctx, req); err != nil {
		return nil, err
	}
	b := req.Bundle
	if b.FullChainPEM == "" && b.CertPEM == "" || b.KeyPEM == "" {
		return nil, deploy.Permanentf("fake: certificate %d has no certificate or no private key to deploy", b.CertID)
	}
	var prev []byte
	err := f.deliver(ctx, req, "deploy", func() {
		prev = f.previousLocked(req.Target.ResourceID)
		f.serving[req.Target.ResourceID] = b
	})
	return prev, err
}

// Rollback restores the bundle previous records, or removes the target's
// when it records none. A nil previous restores req.Bundle (nothing for an
// empty Bundle).
func (f *Fake) Rollback(ctx context.Context, req deploy.Request, previous []byte) error {
	if err := f.start(ctx, req); err != nil {
		return err
	}
	var p fakePrevious
	if previous != nil {
		if err := json.Unmarshal(previous, &p); err != nil {
			return deploy.Permanentf("fake: decode previous state: %w", err)
		}
	} else if req.Bundle.CertID != 0 {
		b := req.Bundle
		p.Bundle = &b
	}
	return f.deliver(ctx, req, "rollback", func() {
		if p.Bundle == nil {
			delete(f.serving, req.Target.ResourceID)
		} else {
			f.serving[req.Target.ResourceID] = *p.Bundle
		}
	})
}

// start checks what every call checks first: the context and the Config.
func (f *Fake) start(ctx context.Context, req deploy.Request) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fake: resource %d: %w", req.Target.ResourceID, err)
	}
	return f.ValidateConfig(req.Target.Config)
}

// deliver records a delivery, applies any failure or hold set for its
// resource, then runs apply under the lock.
func (f *Fake) deliver(ctx context.Context, req deploy.Request, action string, apply func()) (err error) {
	id := req.Target.ResourceID
	d := Delivery{Action: action, JobID: req.JobID, WorkerID: req.WorkerID, CertID: req.Bundle.CertID}
	defer func() {
		d.Err = err
		f.mu.Lock()
		f.deliveries[id] = append(f.deliveries[id], d)
		f.mu.Unlock()
	}()

	f.mu.Lock()
	h := f.holds[id]
	f.mu.Unlock()
	if h != nil {
		h.once.Do(func() { close(h.reached) })
		select {
		case <-h.release:
		case <-ctx.Done():
			return fmt.Errorf("fake: resource %d: %s: %w", id, action, ctx.Err())
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	for i, fl := range f.failures {
		if fl.resourceID != 0 && fl.resourceID != id {
			continue
		}
		if fl.left--; fl.left <= 0 {
			f.failures = slices.Delete(f.failures, i, i+1)
		}
		if fl.permanent {
			return deploy.Permanentf("fake: resource %d: %s refused (injected permanent failure)", id, action)
		}
		return fmt.Errorf("fake: resource %d: %s failed (injected transient failure)", id, action)
	}
	apply()
	return nil
}

// Package discovery finds the resources a cloud credential reaches and keeps
// certfleet's resources in step with them (SyncCloudResources, and the
// leader's periodic sync). The products do the listing (deploy.Discoverer);
// this package turns what they find into resources, idempotently, through
// store.ResourceSync.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/rollout"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

// Store is what a Syncer reads and writes.
type Store interface {
	rollout.TargetStore
	AccessScan(ctx context.Context, afterID int64, limit int) ([]store.CloudAccess, error)
	ResourceSync(ctx context.Context, p store.ResourceSyncParams) (store.SyncCounts, error)
}

// Syncer syncs credentials' resources. Its fields are set once.
type Syncer struct {
	Store   Store
	Catalog deploy.Catalog
	Box     *secret.Box
	Log     *slog.Logger
	// Timeout bounds one product's listing (default 5 minutes).
	Timeout time.Duration

	mu      sync.Mutex
	running map[int64]chan struct{} // credential ID → closed when its sync ends
}

// ErrNotDiscoverable is returned (wrapped) by Sync for a credential of a
// cloud none of whose products can list resources.
var ErrNotDiscoverable = errors.New("no product of this cloud can list its resources")

// ProductResult is one product's part of a sync.
type ProductResult struct {
	CloudProduct string
	store.SyncCounts
	// Error is why the product's listing failed ("" when it did not); its
	// resources were then left as they were.
	Error string
}

// Result is what one sync of a credential did, summed over its products.
type Result struct {
	store.SyncCounts
	Products []ProductResult
}

// Sync lists the resources of every discoverable product of the
// credential's cloud and reconciles them with certfleet's. A product whose
// listing fails is reported in its ProductResult and leaves its resources
// untouched (none turns gone because a call failed); Sync returns an error
// only when the credential cannot be used at all or every product failed.
func (s *Syncer) Sync(ctx context.Context, accountID, accessID int64) (Result, error) {
	// One sync of a credential at a time on this node: a second waits for
	// the first (across nodes, the store's unique key refuses a duplicate).
	release, err := s.lock(ctx, accessID)
	if err != nil {
		return Result{}, err
	}
	defer release()
	ac, err := s.Store.AccessGet(ctx, accountID, accessID)
	if err != nil {
		return Result{}, err
	}
	acct, err := s.Store.AccountGet(ctx, accountID)
	if err != nil {
		return Result{}, err
	}
	access, err := rollout.OpenAccess(s.Box, ac)
	if err != nil {
		return Result{}, err
	}
	products := s.discoverable(ac.CloudName)
	if len(products) == 0 {
		return Result{}, fmt.Errorf("%w: %s", ErrNotDiscoverable, ac.CloudName)
	}
	var res Result
	var failed []string
	for _, p := range products {
		d := p.Describe()
		pr := ProductResult{CloudProduct: d.CloudProduct}
		counts, err := s.syncProduct(ctx, p, deploy.Target{AccountID: accountID, CloudName: d.CloudName, CloudProduct: d.CloudProduct,
			Access: access, Scope: rollout.ScopeOf(acct)}, ac)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			pr.Error = err.Error()
			failed = append(failed, d.CloudProduct+": "+err.Error())
		}
		pr.SyncCounts = counts
		res.Found += counts.Found
		res.Created += counts.Created
		res.Updated += counts.Updated
		res.Gone += counts.Gone
		res.Products = append(res.Products, pr)
	}
	if len(failed) == len(products) {
		return res, fmt.Errorf("sync of cloud access %d failed: %s", accessID, strings.Join(failed, "; "))
	}
	return res, nil
}

func (s *Syncer) lock(ctx context.Context, accessID int64) (func(), error) {
	for {
		s.mu.Lock()
		if s.running == nil {
			s.running = map[int64]chan struct{}{}
		}
		ch, busy := s.running[accessID]
		if !busy {
			ch = make(chan struct{})
			s.running[accessID] = ch
			s.mu.Unlock()
			return func() {
				s.mu.Lock()
				delete(s.running, accessID)
				s.mu.Unlock()
				close(ch)
			}, nil
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// discoverable returns the products of cloud that implement Discoverer.
func (s *Syncer) discoverable(cloud string) []deploy.Product {
	var out []deploy.Product
	for _, d := range s.Catalog.Products() {
		if d.AccessCloud() != cloud {
			continue
		}
		p, ok := s.Catalog.Lookup(d.CloudName, d.CloudProduct)
		if _, can := p.(deploy.Discoverer); ok && can {
			out = append(out, p)
		}
	}
	return out
}

// Discoverable reports whether a credential of cloud can be synced.
func (s *Syncer) Discoverable(cloud string) bool { return len(s.discoverable(cloud)) > 0 }

func (s *Syncer) syncProduct(ctx context.Context, p deploy.Product, t deploy.Target, ac store.CloudAccess) (store.SyncCounts, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	found, err := p.(deploy.Discoverer).Discover(lctx, t)
	cancel()
	if err != nil {
		return store.SyncCounts{}, err
	}
	if _, ok := p.(deploy.Claimer); ok {
		return store.SyncCounts{}, fmt.Errorf("%s/%s owns its targets exclusively and cannot be discovered", t.CloudName, t.CloudProduct)
	}
	desc := p.Describe()
	rs := make([]store.Resource, 0, len(found))
	seen := map[string]bool{}
	for _, f := range found {
		if f.Key == "" || seen[f.Key] {
			return store.SyncCounts{}, fmt.Errorf("the provider's listing has an empty or repeated resource key %q", f.Key)
		}
		seen[f.Key] = true
		ft := t
		ft.Domain, ft.Config = f.Domain, f.Config
		ft.RegionID, ft.InstanceID, ft.ListenerPort, ft.ListenerID = f.RegionID, f.InstanceID, f.ListenerPort, f.ListenerID
		if len(ft.Config) == 0 {
			ft.Config = []byte("{}")
		}
		if _, err := deploy.Check(p, ft, true); err != nil {
			return store.SyncCounts{}, fmt.Errorf("found %s, but its Config is refused: %v", f.Key, err)
		}
		cfg, err := s.Box.SealConfig(string(ft.Config), func(k string) bool { fd, ok := desc.Field(k); return ok && fd.Secret })
		if err != nil {
			return store.SyncCounts{}, err
		}
		rs = append(rs, store.Resource{DiscoveryKey: f.Key, Name: name(f), Domain: strings.ToLower(strings.TrimSuffix(f.Domain, ".")),
			RegionID: f.RegionID, InstanceID: f.InstanceID, ListenerPort: f.ListenerPort, ListenerID: f.ListenerID, Config: cfg,
			DefaultResource: f.DefaultResource, EnableHTTPS: f.EnableHTTPS, BoundSha2: strings.ToUpper(f.CertSha2), BoundNotAfter: f.CertEndTime})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].DiscoveryKey < rs[j].DiscoveryKey })
	return s.Store.ResourceSync(ctx, store.ResourceSyncParams{AccountID: t.AccountID, AccessID: ac.ID, CloudName: t.CloudName,
		CloudProduct: t.CloudProduct, Found: rs})
}

// name is a discovered resource's name: product and domain when it has one.
func name(f deploy.Discovered) string {
	n := f.CloudProduct + " " + f.Key
	if f.Domain != "" && f.Key != f.Domain {
		n = f.CloudProduct + " " + f.Domain + " (" + f.Key + ")"
	}
	if len(n) > 128 {
		n = n[:128]
	}
	return n
}

// Run syncs every credential of every account whose cloud is discoverable,
// every interval (the first one interval after it starts: a restart does not
// call every provider at once), until ctx ends. Failures are logged. It is
// meant for the cluster's leader.
func (s *Syncer) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.syncAll(ctx)
		}
	}
}

func (s *Syncer) syncAll(ctx context.Context) {
	var after int64
	for ctx.Err() == nil {
		list, err := s.Store.AccessScan(ctx, after, 100)
		if err != nil {
			s.Log.Warn("resource sync: listing credentials failed", "error", err)
			return
		}
		if len(list) == 0 {
			return
		}
		for _, ac := range list {
			after = ac.ID
			if !s.Discoverable(ac.CloudName) {
				continue
			}
			res, err := s.Sync(ctx, ac.AccountID, ac.ID)
			log := s.Log.With("access_id", ac.ID, "account_id", ac.AccountID, "cloud", ac.CloudName)
			if err != nil {
				log.Warn("resource sync failed", "error", err)
				continue
			}
			for _, p := range res.Products {
				if p.Error != "" {
					log.Warn("resource sync: a product's listing failed", "product", p.CloudProduct, "error", p.Error)
				}
			}
			log.Info("resource sync", "found", res.Found, "created", res.Created, "updated", res.Updated, "gone", res.Gone)
		}
	}
}

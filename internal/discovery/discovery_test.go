package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/sqlite"
)

// lister is the fake product, listing what the test says; it can hold a
// listing until released, to run two syncs of one credential at once.
type lister struct {
	*deploytest.Fake
	product string
	found   []deploy.Discovered
	err     error
	entered chan struct{}
	release chan struct{}
}

func (l *lister) Describe() deploy.Description {
	d := l.Fake.Describe()
	d.CloudProduct = l.product
	return d
}

func (l *lister) Discover(ctx context.Context, _ deploy.Target) ([]deploy.Discovered, error) {
	if l.entered != nil {
		l.entered <- struct{}{}
		select {
		case <-l.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return l.found, l.err
}

func setup(t *testing.T, products ...deploy.Product) (*Syncer, store.Store, int64, int64) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "certfleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := secret.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	acct, err := st.AccountEnsure(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	ac := store.CloudAccess{AccountID: acct, CloudName: "fake", SecretID: "AK", Config: "{}", SecretKeyEnc: box.Seal([]byte("sk"), secret.PurposeAccessSecret)}
	if err := st.AccessCreate(ctx, &ac); err != nil {
		t.Fatal(err)
	}
	s := &Syncer{Store: st, Catalog: deploy.NewList(products...), Box: box, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return s, st, acct, ac.ID
}

func found(keys ...string) []deploy.Discovered {
	var out []deploy.Discovered
	for _, k := range keys {
		out = append(out, deploy.Discovered{Key: k, Domain: k, Config: json.RawMessage(`{"Label":"x"}`), EnableHTTPS: true})
	}
	return out
}

// TestPartialFailure: one product's failed listing is reported and leaves
// its resources alone; the others sync. Every product failing is an error.
func TestPartialFailure(t *testing.T) {
	good := &lister{Fake: deploytest.NewFake(), product: "GOOD", found: found("a.example.com")}
	bad := &lister{Fake: deploytest.NewFake(), product: "BAD", found: found("b.example.com")}
	s, _, acct, id := setup(t, good, bad)
	ctx := context.Background()
	if res, err := s.Sync(ctx, acct, id); err != nil || res.Created != 2 {
		t.Fatalf("first sync: %+v, %v", res, err)
	}
	bad.found, bad.err = nil, errors.New("Throttling.User: slow down")
	res, err := s.Sync(ctx, acct, id)
	if err != nil {
		t.Fatal(err)
	}
	byProduct := map[string]ProductResult{}
	for _, p := range res.Products {
		byProduct[p.CloudProduct] = p
	}
	if byProduct["BAD"].Error == "" || !strings.Contains(byProduct["BAD"].Error, "Throttling.User") || byProduct["BAD"].Gone != 0 || res.Gone != 0 {
		t.Errorf("a failed listing: %+v, want its error and nothing gone", res)
	}
	good.err = errors.New("Forbidden.RAM")
	if _, err := s.Sync(ctx, acct, id); err == nil || !strings.Contains(err.Error(), "Forbidden.RAM") || !strings.Contains(err.Error(), "Throttling.User") {
		t.Errorf("every listing failing: %v, want an error naming both", err)
	}
}

// TestRefusedConfig: a listing whose Config the product refuses writes nothing.
func TestRefusedConfig(t *testing.T) {
	p := &lister{Fake: deploytest.NewFake(), product: "FAKE", found: found("a.example.com", "b.example.com")}
	p.found[1].Config = json.RawMessage(`{"Nope":1}`)
	s, st, acct, id := setup(t, p)
	res, err := s.Sync(context.Background(), acct, id)
	if err == nil || !strings.Contains(err.Error(), "b.example.com") || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("Sync = %+v, %v; want an error naming the resource and the key", res, err)
	}
	list, _, err := st.ResourceList(context.Background(), store.ResourceListParams{AccountID: acct})
	if err != nil || len(list) != 0 {
		t.Errorf("after a refused listing: %d resources (%v), want none", len(list), err)
	}
}

// TestOneSyncPerCredential: a second sync of a credential waits for the
// first, and finds nothing left to create.
func TestOneSyncPerCredential(t *testing.T) {
	p := &lister{Fake: deploytest.NewFake(), product: "FAKE", found: found("a.example.com"), entered: make(chan struct{}, 2), release: make(chan struct{})}
	s, _, acct, id := setup(t, p)
	var wg sync.WaitGroup
	results := make([]Result, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.Sync(context.Background(), acct, id)
		}()
	}
	<-p.entered // one listing runs; the other sync waits for it, not for the store
	close(p.release)
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || results[0].Created+results[1].Created != 1 {
		t.Errorf("two syncs at once: %+v %v / %+v %v; want both fine, one creating", results[0], errs[0], results[1], errs[1])
	}
}

// TestNotDiscoverable: a cloud with no listing product is refused up front.
func TestNotDiscoverable(t *testing.T) {
	s, _, acct, id := setup(t, deploytest.NewFake())
	if _, err := s.Sync(context.Background(), acct, id); !errors.Is(err, ErrNotDiscoverable) {
		t.Errorf("Sync = %v, want ErrNotDiscoverable", err)
	}
	if _, err := s.Sync(context.Background(), acct, id+100); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Sync(unknown) = %v, want ErrNotFound", err)
	}
}

package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/certfleet/certfleet/internal/discovery"
	"github.com/certfleet/certfleet/internal/store"
)

// syncCloudResources is certfleet's own operation: list the resources a
// credential reaches (CDN domains, HTTPS listeners, TLS Secrets…) and create
// or update certfleet resources for them.
func (a *API) syncCloudResources(ctx context.Context, c *call) (any, error) {
	id, err := c.params.id("AccessId")
	if err != nil {
		return nil, err
	}
	res, err := a.syncer.Sync(ctx, c.accountID, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errNotFound("CloudAccess", id)
	case errors.Is(err, discovery.ErrNotDiscoverable):
		return nil, errInvalid("AccessId", "CloudAccess %d: %v", id, err)
	case err != nil && ctx.Err() == nil && len(res.Products) > 0:
		// Every product's listing failed: the provider's answer, not ours.
		return nil, &Error{Code: "SyncFailed", Status: http.StatusBadGateway, Message: err.Error()}
	case err != nil:
		return nil, err
	}
	type product struct {
		CloudProduct                  string
		Found, Created, Updated, Gone int
		Error                         string `json:",omitempty"`
	}
	products := make([]product, 0, len(res.Products))
	for _, p := range res.Products {
		products = append(products, product{p.CloudProduct, p.Found, p.Created, p.Updated, p.Gone, p.Error})
	}
	return struct {
		AccessId                      int64
		Found, Created, Updated, Gone int
		Products                      []product
	}{id, res.Found, res.Created, res.Updated, res.Gone, products}, nil
}

// accessFilter turns ListCloudResources' SecretId into the IDs of the
// caller's credentials it names: an AccessId, or a credential's SecretId.
// ok is false when SecretId is absent.
func (a *API) accessFilter(ctx context.Context, c *call) (ids []int64, ok bool, err error) {
	v := c.params.str("SecretId")
	if v == "" {
		return nil, false, nil
	}
	if n, perr := strconv.ParseInt(v, 10, 64); perr == nil && n > 0 {
		if _, err := a.store.AccessGet(ctx, c.accountID, n); err == nil {
			ids = append(ids, n)
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, true, err
		}
	}
	list, _, err := a.store.AccessList(ctx, store.AccessListParams{AccountID: c.accountID, SecretID: v})
	if err != nil {
		return nil, true, err
	}
	for _, ac := range list {
		ids = append(ids, ac.ID)
	}
	if ids == nil {
		ids = []int64{} // names nothing: an empty page
	}
	return ids, true, nil
}

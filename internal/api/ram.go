package api

import (
	"context"

	"github.com/certfleet/certfleet/internal/api/ramapi"
	"github.com/certfleet/certfleet/internal/secret"
)

// ramRoutes is the RAM operations' table (version 2015-05-01, served by
// internal/api/ramapi), as handlers of this front.
func (a *API) ramRoutes() map[string]handler {
	srv := ramapi.New(ramapi.Config{
		Store:      a.store,
		SealSecret: func(b []byte) []byte { return a.box.Seal(b, secret.PurposeAccessKey) },
		Changed:    a.changed,
		KeyChanged: func(id string) { a.keys.Delete(id) }, // other nodes: within keyCacheTTL
	})
	routes := srv.Routes()
	out := make(map[string]handler, len(routes))
	for action, h := range routes {
		out[action] = func(ctx context.Context, c *call) (any, error) {
			return h(ctx, &ramapi.Call{AccountID: c.accountID, UserID: c.userID, Params: ramParams{c.params}})
		}
	}
	return out
}

// changed tells the authorizer that RAM changed through this node.
func (a *API) changed() { a.authz.invalidate() }

// ramParams gives the RAM handlers this front's parameter reading.
type ramParams struct{ p params }

var _ ramapi.Params = ramParams{}

func (r ramParams) Has(name string) bool                      { return r.p.has(name) }
func (r ramParams) Given(name string) bool                    { return r.p.v.Has(name) }
func (r ramParams) Str(name string) string                    { return r.p.str(name) }
func (r ramParams) Required(name string) (string, error)      { return r.p.required(name) }
func (r ramParams) Text(name string, max int) (string, error) { return r.p.text(name, max) }
func (r ramParams) Int64(name string) (int64, bool, error)    { return r.p.int64(name) }
func (r ramParams) Bool(name string) (bool, error)            { return r.p.bool(name) }

// Package registry lists every deployer certfleet knows, by (CloudName,
// CloudProduct). Adding a target means adding its package and one line here.
package registry

import (
	"sort"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/local"
	"github.com/certfleet/certfleet/internal/deploy/sshfile"
	"github.com/certfleet/certfleet/internal/deploy/sshhaproxy"
	"github.com/certfleet/certfleet/internal/deploy/sshnginx"
	"github.com/certfleet/certfleet/internal/deploy/webhook"
)

// Key names a product.
type Key struct{ CloudName, CloudProduct string }

// Registry maps products to their deployers. It is read-only after New.
type Registry struct {
	m map[Key]deploy.Deployer
}

// New builds every deployer with opts.
func New(opts deploy.Options) *Registry {
	return &Registry{m: map[Key]deploy.Deployer{
		{"local", "FILE"}:      local.New(opts),
		{"ssh", "FILE"}:        sshfile.New(opts),
		{"ssh", "HAPROXY"}:     sshhaproxy.New(opts),
		{"ssh", "NGINX"}:       sshnginx.New(opts),
		{"webhook", "WEBHOOK"}: webhook.New(opts),
	}}
}

// Lookup returns the deployer of a product.
func (r *Registry) Lookup(cloudName, product string) (deploy.Deployer, bool) {
	d, ok := r.m[Key{cloudName, product}]
	return d, ok
}

// Products lists the known products, sorted.
func (r *Registry) Products() []Key {
	out := make([]Key, 0, len(r.m))
	for k := range r.m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].CloudName != out[j].CloudName {
			return out[i].CloudName < out[j].CloudName
		}
		return out[i].CloudProduct < out[j].CloudProduct
	})
	return out
}

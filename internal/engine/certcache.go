package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/secret"
)

// bundle loads a certificate with its key, through a small cache
// (certificates never change once uploaded).
func (e *Engine) bundle(ctx context.Context, accountID, certID int64) (deploy.Bundle, error) {
	if b, ok := e.certs.get(certID); ok {
		return b, nil
	}
	c, err := e.store.CertificateGet(ctx, accountID, certID)
	if err != nil {
		return deploy.Bundle{}, fmt.Errorf("engine: certificate %d: %w", certID, err)
	}
	key, err := e.box.Open(c.KeyEnc, secret.PurposeCertKey)
	if err != nil {
		return deploy.Bundle{}, fmt.Errorf("engine: certificate %d key: %w", certID, err)
	}
	leaf, chain := splitPEM(c.CertPEM)
	b := deploy.Bundle{CertID: c.ID, Name: c.Name, CertPEM: leaf, ChainPEM: chain, FullChainPEM: c.CertPEM, KeyPEM: string(key), Sha2: c.Sha2}
	e.certs.put(certID, b)
	return b, nil
}

// splitPEM splits a stored leaf+chain PEM after its first certificate.
func splitPEM(full string) (leaf, chain string) {
	const end = "-----END CERTIFICATE-----"
	i := strings.Index(full, end)
	if i < 0 {
		return full, ""
	}
	i += len(end)
	if i < len(full) && full[i] == '\n' {
		i++
	}
	return full[:i], strings.TrimLeft(full[i:], "\n")
}

type certCache struct {
	mu  sync.Mutex
	max int
	m   map[int64]deploy.Bundle
}

func newCertCache(max int) *certCache { return &certCache{max: max, m: map[int64]deploy.Bundle{}} }

func (c *certCache) get(id int64) (deploy.Bundle, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[id]
	return b, ok
}

func (c *certCache) put(id int64, b deploy.Bundle) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m) // simple and bounded; certificates are cheap to reload
	}
	c.m[id] = b
}

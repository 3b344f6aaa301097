package deploy

import (
	"context"
	"encoding/json"
	"time"
)

// Discoverer is implemented by products that can list the resources a cloud
// credential reaches (CDN domains, HTTPS listeners, TLS Secrets…), for
// SyncCloudResources. t carries the account, the product and the credential
// (t.Access, never nil); its Config and Domain are empty. Discover returns
// every HTTPS-capable resource of the product it finds, each with a Config
// that passes the product's Validate, so that a job can deploy to it as is.
// Errors follow Deploy's rules (Permanent for a rejected credential).
type Discoverer interface {
	Discover(ctx context.Context, t Target) ([]Discovered, error)
}

// Discovered is one resource found by a Discoverer.
type Discovered struct {
	// Key identifies the resource in the provider, stable across syncs and
	// unique within the product and credential: "example.com" for a CDN
	// domain, "lb-1/443/www.example.com" for a listener's SNI binding. A
	// sync creates a certfleet resource for a new Key, updates the one it
	// created before for a known Key, and marks gone those whose Key it no
	// longer finds.
	Key          string
	CloudProduct string
	Domain       string
	RegionID     string
	InstanceID   string
	ListenerPort string
	// ListenerID is the provider's listener name where it has one
	// ("lsn-…@443" for ALB/NLB).
	ListenerID string
	// Config is the resource's product Config (JSON object; nil for {}).
	Config json.RawMessage
	// DefaultResource is true for a listener's default certificate, false
	// for an SNI / additional certificate or a product without the notion.
	DefaultResource bool
	// EnableHTTPS is whether the resource serves HTTPS now.
	EnableHTTPS bool
	// CertSha2 is the SHA-256 of the leaf certificate bound now (upper-case
	// hex of the DER), "" when unknown or none; CertEndTime its expiry.
	CertSha2    string
	CertEndTime time.Time
}

// Sweeper is implemented by products that upload copies of a certificate to
// the provider before binding them (a CAS upload, an SLB server
// certificate) and can delete the copies no binding uses any more. After a
// job ends, the engine calls Sweep once for each product and credential the
// job deployed to, with one of the job's targets of that pair (its Config
// may carry the product's keep-count). Sweep deletes only what certfleet
// itself uploaded, keeping what rollback still needs. Errors are logged and
// never change the job's outcome.
type Sweeper interface {
	Sweep(ctx context.Context, t Target) error
}

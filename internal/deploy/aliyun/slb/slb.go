// Package slb deploys certificates to Alibaba Cloud Classic Load Balancer
// (SLB) HTTPS listeners (CloudName "aliyun", CloudProduct "SLB"). The
// certificate is uploaded once per region as an SLB server certificate
// (UploadServerCertificate, named with its SHA-256 so certfleet recognises
// its own) and bound either as the listener's default certificate
// (Config DefaultResource=true) or as the domain extension (SNI
// certificate) of the resource's Domain alone, every other binding left as
// it was.
//
// It is not a load-balancer manager: it never creates listeners or changes
// anything but certificate bindings.
package slb

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/aliyun"
)

// Description is aliyun/SLB's Description.
var Description = deploy.Description{
	CloudName:    aliyun.CloudName,
	CloudProduct: "SLB",
	Summary:      "Binds the certificate, uploaded once per region as an SLB server certificate, to a Classic Load Balancer HTTPS listener (InstanceId, ListenerPort): its default certificate or the SNI domain extension of Domain.",
	Config:       []deploy.Field{aliyun.FieldDefaultResource, aliyun.FieldEndpoint, aliyun.FieldKeepPrevious},
	Access:       aliyun.AccessSpec,
}

// Config is an SLB resource's Config.
type Config struct {
	DefaultResource bool
	Endpoint        string
	KeepPrevious    *int
}

// Deployer binds certificates to SLB listeners. It is safe for concurrent use.
type Deployer struct{ hub *aliyun.Hub }

var (
	_ deploy.Product         = (*Deployer)(nil)
	_ deploy.Rollbacker      = (*Deployer)(nil)
	_ deploy.Snapshotter     = (*Deployer)(nil)
	_ deploy.Checker         = (*Deployer)(nil)
	_ deploy.Discoverer      = (*Deployer)(nil)
	_ deploy.Sweeper         = (*Deployer)(nil)
	_ deploy.ConfigValidator = (*Deployer)(nil)
)

// New returns an SLB deployer over hub.
func New(hub *aliyun.Hub) *Deployer { return &Deployer{hub: hub} }

// Describe returns Description.
func (d *Deployer) Describe() deploy.Description { return Description }

// ValidateConfig checks Endpoint.
func (d *Deployer) ValidateConfig(config json.RawMessage) error {
	var cfg Config
	if err := Description.DecodeConfig(config, &cfg); err != nil {
		return err
	}
	return aliyun.ValidateEndpoint("SLB", cfg.Endpoint)
}

// listener is one resource's place: a listener, and for an SNI resource
// its domain.
type listener struct {
	c       *aliyun.Client
	cfg     Config
	lb      string
	port    string
	domain  string
	display string
}

func (d *Deployer) listener(t deploy.Target) (*listener, error) {
	var cfg Config
	if err := Description.DecodeConfig(t.Config, &cfg); err != nil {
		return nil, err
	}
	if err := aliyun.ValidateEndpoint("SLB", cfg.Endpoint); err != nil {
		return nil, err
	}
	if t.InstanceID == "" {
		return nil, deploy.Permanentf("aliyun/SLB: the resource has no InstanceId: set it to the load balancer's id (lb-…)")
	}
	if p, err := strconv.Atoi(t.ListenerPort); err != nil || p < 1 || p > 65535 {
		return nil, deploy.Permanentf("aliyun/SLB: the resource's ListenerPort %q is not a port number (1-65535)", t.ListenerPort)
	}
	if !cfg.DefaultResource && t.Domain == "" {
		return nil, deploy.Permanentf("aliyun/SLB: the resource has no Domain: set it to the SNI domain, or Config DefaultResource to true for the listener's default certificate")
	}
	c, err := d.hub.Client(t, "SLB", cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	l := &listener{c: c, cfg: cfg, lb: t.InstanceID, port: t.ListenerPort, domain: t.Domain}
	l.display = fmt.Sprintf("aliyun/SLB %s %s:%s", c.Region(), l.lb, l.port)
	if !cfg.DefaultResource {
		l.display += " " + l.domain
	}
	return l, nil
}

// state is a listener binding: the snapshot Rollback restores.
type state struct {
	Default bool
	// ServerCertificateID is the bound certificate ("" for an SNI domain
	// without extension).
	ServerCertificateID string `json:"ServerCertificateId"`
	// DomainExtensionID is the domain's extension, "" when it has none.
	DomainExtensionID string `json:"DomainExtensionId,omitempty"`
}

type extension struct {
	DomainExtensionID   string `json:"DomainExtensionId"`
	Domain              string
	ServerCertificateID string `json:"ServerCertificateId"`
}

func (d *Deployer) extensions(ctx context.Context, c *aliyun.Client, lb, port string) ([]extension, error) {
	var out struct {
		DomainExtensions struct{ DomainExtension []extension }
	}
	if err := c.Call(ctx, aliyun.SLB, true, "DescribeDomainExtensions", map[string]string{"LoadBalancerId": lb, "ListenerPort": port}, &out); err != nil {
		return nil, err
	}
	return out.DomainExtensions.DomainExtension, nil
}

func (l *listener) current(ctx context.Context, d *Deployer) (state, error) {
	if l.cfg.DefaultResource {
		var out struct {
			ServerCertificateID string `json:"ServerCertificateId"`
		}
		if err := l.c.Call(ctx, aliyun.SLB, true, "DescribeLoadBalancerHTTPSListenerAttribute", map[string]string{
			"LoadBalancerId": l.lb, "ListenerPort": l.port}, &out); err != nil {
			return state{}, fmt.Errorf("%s: %w", l.display, err)
		}
		return state{Default: true, ServerCertificateID: out.ServerCertificateID}, nil
	}
	exts, err := d.extensions(ctx, l.c, l.lb, l.port)
	if err != nil {
		return state{}, fmt.Errorf("%s: %w", l.display, err)
	}
	for _, e := range exts {
		if strings.EqualFold(e.Domain, l.domain) {
			return state{ServerCertificateID: e.ServerCertificateID, DomainExtensionID: e.DomainExtensionID}, nil
		}
	}
	return state{}, nil
}

// Snapshot records the listener's default certificate, or the domain's
// extension (or that it has none).
func (d *Deployer) Snapshot(ctx context.Context, req deploy.Request) ([]byte, error) {
	l, err := d.listener(req.Target)
	if err != nil {
		return nil, err
	}
	s, err := l.current(ctx, d)
	if err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

type serverCert struct {
	ServerCertificateID   string `json:"ServerCertificateId"`
	ServerCertificateName string
	Fingerprint           string
	CreateTimeStamp       int64
	ExpireTimeStamp       int64
}

func (d *Deployer) serverCerts(ctx context.Context, c *aliyun.Client, id string) ([]serverCert, error) {
	params := map[string]string{}
	if id != "" {
		params["ServerCertificateId"] = id
	}
	var out struct {
		ServerCertificates struct{ ServerCertificate []serverCert }
	}
	if err := c.Call(ctx, aliyun.SLB, true, "DescribeServerCertificates", params, &out); err != nil {
		return nil, err
	}
	return out.ServerCertificates.ServerCertificate, nil
}

// sha1Colon is SLB's Fingerprint of the bundle's leaf.
func sha1Colon(certPEM string) string {
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		return ""
	}
	sum := sha1.Sum(b.Bytes)
	h := hex.EncodeToString(sum[:])
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// uploadName is the name of certfleet's SLB upload: the prefix and the
// whole SHA-256 (SLB names take up to 80 characters), so discovery knows
// what its own uploads hold.
func uploadName(sha2 string) string { return aliyun.UploadPrefix + strings.ToLower(sha2) }

// AlreadyDeployed reports whether the binding holds a server certificate
// with the bundle's fingerprint.
func (d *Deployer) AlreadyDeployed(ctx context.Context, req deploy.Request) (bool, error) {
	l, err := d.listener(req.Target)
	if err != nil {
		return false, err
	}
	s, err := l.current(ctx, d)
	if err != nil || s.ServerCertificateID == "" {
		return false, err
	}
	certs, err := d.serverCerts(ctx, l.c, s.ServerCertificateID)
	if err != nil {
		return false, fmt.Errorf("%s: %w", l.display, err)
	}
	want := sha1Colon(req.Bundle.CertPEM)
	for _, x := range certs {
		if x.ServerCertificateID == s.ServerCertificateID {
			return want != "" && strings.EqualFold(x.Fingerprint, want), nil
		}
	}
	return false, nil
}

// upload returns the SLB server certificate of b in the listener's region,
// uploading it only when none with its fingerprint is there.
func (d *Deployer) upload(ctx context.Context, l *listener, b deploy.Bundle) (string, error) {
	if b.CertPEM == "" || b.KeyPEM == "" {
		return "", deploy.Permanentf("%s: certificate %d has no certificate or no private key to upload", l.display, b.CertID)
	}
	sha := aliyun.BundleSHA256(b)
	fp := sha1Colon(b.CertPEM)
	if sha == "" || fp == "" {
		return "", deploy.Permanentf("%s: certificate %d: its PEM holds no certificate", l.display, b.CertID)
	}
	return l.c.Once(ctx, "SLB/"+l.c.Region()+"/"+sha, func() (string, error) {
		certs, err := d.serverCerts(ctx, l.c, "")
		if err != nil {
			return "", err
		}
		for _, x := range certs {
			if strings.EqualFold(x.Fingerprint, fp) {
				return x.ServerCertificateID, nil
			}
		}
		var out struct {
			ServerCertificateID string `json:"ServerCertificateId"`
		}
		if err := l.c.Call(ctx, aliyun.SLB, true, "UploadServerCertificate", map[string]string{
			"ServerCertificate": aliyun.FullChain(b), "PrivateKey": b.KeyPEM, "ServerCertificateName": uploadName(sha)}, &out); err != nil {
			return "", fmt.Errorf("upload certificate %d: %w", b.CertID, err)
		}
		return out.ServerCertificateID, nil
	})
}

// Deploy uploads the bundle (once per fingerprint and region), binds it as
// the default certificate or the domain's extension, and reads it back.
func (d *Deployer) Deploy(ctx context.Context, req deploy.Request) ([]byte, error) {
	l, err := d.listener(req.Target)
	if err != nil {
		return nil, err
	}
	before, err := l.current(ctx, d)
	if err != nil {
		return nil, err
	}
	previous, _ := json.Marshal(before)
	id, err := d.upload(ctx, l, req.Bundle)
	if err != nil {
		return previous, fmt.Errorf("%s: %w", l.display, err)
	}
	if before.ServerCertificateID == id {
		return previous, nil
	}
	return previous, d.bind(ctx, l, before, id)
}

// bind points the binding at server certificate id ("" for an SNI domain:
// remove its extension) and reads it back.
func (d *Deployer) bind(ctx context.Context, l *listener, cur state, id string) error {
	var err error
	switch {
	case l.cfg.DefaultResource:
		err = l.c.Call(ctx, aliyun.SLB, true, "SetLoadBalancerHTTPSListenerAttribute", map[string]string{
			"LoadBalancerId": l.lb, "ListenerPort": l.port, "ServerCertificateId": id}, nil)
	case id == "" && cur.DomainExtensionID != "":
		err = l.c.Call(ctx, aliyun.SLB, true, "DeleteDomainExtension", map[string]string{"DomainExtensionId": cur.DomainExtensionID}, nil)
	case id == "":
	case cur.DomainExtensionID != "":
		err = l.c.Call(ctx, aliyun.SLB, true, "SetDomainExtensionAttribute", map[string]string{
			"DomainExtensionId": cur.DomainExtensionID, "ServerCertificateId": id}, nil)
	default:
		err = l.c.Call(ctx, aliyun.SLB, true, "AddDomainExtension", map[string]string{
			"LoadBalancerId": l.lb, "ListenerPort": l.port, "Domain": l.domain, "ServerCertificateId": id}, nil)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", l.display, err)
	}
	got, err := l.current(ctx, d)
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if got.ServerCertificateID != id {
		return fmt.Errorf("%s: read back after the change: the listener binds server certificate %q, want %q", l.display, got.ServerCertificateID, id)
	}
	return nil
}

// Rollback restores the recorded binding: the previous default
// certificate, the domain's previous extension certificate, or no
// extension at all. Without a record it deploys req.Bundle.
func (d *Deployer) Rollback(ctx context.Context, req deploy.Request, previous []byte) error {
	l, err := d.listener(req.Target)
	if err != nil {
		return err
	}
	var want state
	recorded, err := aliyun.Previous(l.display, previous, req.Bundle, &want)
	if err != nil {
		return err
	}
	if !recorded {
		if want.ServerCertificateID, err = d.upload(ctx, l, req.Bundle); err != nil {
			return fmt.Errorf("%s: %w", l.display, err)
		}
	}
	if want.ServerCertificateID == "" && l.cfg.DefaultResource {
		return deploy.Permanentf("%s: the recorded listener had no default certificate; an HTTPS listener cannot be left without one", l.display)
	}
	cur, err := l.current(ctx, d)
	if err != nil {
		return err
	}
	if cur.ServerCertificateID == want.ServerCertificateID {
		return nil
	}
	err = d.bind(ctx, l, cur, want.ServerCertificateID)
	if aliyun.Code(err) == "ServerCertificateId.NotFound" && req.Bundle.CertID != 0 && want.ServerCertificateID != "" {
		// The recorded server certificate was deleted since: bind the
		// engine's copy.
		l.c.Forget("SLB/" + l.c.Region() + "/" + aliyun.BundleSHA256(req.Bundle))
		id, uerr := d.upload(ctx, l, req.Bundle)
		if uerr != nil {
			return fmt.Errorf("%s: %w", l.display, uerr)
		}
		return d.bind(ctx, l, cur, id)
	}
	return err
}

type httpsListener struct {
	LoadBalancerID      string `json:"LoadBalancerId"`
	ListenerPort        int
	ListenerProtocol    string
	HTTPSListenerConfig struct {
		ServerCertificateID string `json:"ServerCertificateId"`
	}
}

func (d *Deployer) httpsListeners(ctx context.Context, c *aliyun.Client) ([]httpsListener, error) {
	var all []httpsListener
	token := ""
	for {
		var out struct {
			Listeners []httpsListener
			NextToken string
		}
		params := map[string]string{"ListenerProtocol": "https", "MaxResults": "100"}
		if token != "" {
			params["NextToken"] = token
		}
		if err := c.Call(ctx, aliyun.SLB, true, "DescribeLoadBalancerListeners", params, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Listeners...)
		if out.NextToken == "" || len(out.Listeners) == 0 {
			return all, nil
		}
		token = out.NextToken
	}
}

// Discover lists the HTTPS listeners of every region the credential's
// Regions names (default cn-hangzhou): one resource for each listener's
// default certificate and one for each domain extension.
func (d *Deployer) Discover(ctx context.Context, t deploy.Target) ([]deploy.Discovered, error) {
	var out []deploy.Discovered
	for _, region := range aliyun.Regions(t) {
		rt := t
		rt.RegionID = region
		c, err := d.hub.Client(rt, "SLB", "")
		if err != nil {
			return nil, err
		}
		ls, err := d.httpsListeners(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("aliyun/SLB: discover %s: %w", region, err)
		}
		certs, err := d.serverCerts(ctx, c, "")
		if err != nil {
			return nil, fmt.Errorf("aliyun/SLB: discover %s: %w", region, err)
		}
		byID := map[string]serverCert{}
		for _, x := range certs {
			byID[x.ServerCertificateID] = x
		}
		sha := func(id string) string {
			name := byID[id].ServerCertificateName
			if s := strings.TrimPrefix(name, aliyun.UploadPrefix); s != name && len(s) == 64 {
				return strings.ToUpper(s)
			}
			return "" // SLB shows only a SHA-1 of the others
		}
		for _, l := range ls {
			port := strconv.Itoa(l.ListenerPort)
			key := l.LoadBalancerID + "/" + port
			out = append(out, deploy.Discovered{Key: region + "/" + key, CloudProduct: "SLB", RegionID: region, InstanceID: l.LoadBalancerID,
				ListenerPort: port, Config: json.RawMessage(`{"DefaultResource":true}`), DefaultResource: true, EnableHTTPS: true,
				CertSha2: sha(l.HTTPSListenerConfig.ServerCertificateID)})
			exts, err := d.extensions(ctx, c, l.LoadBalancerID, port)
			if err != nil {
				return nil, fmt.Errorf("aliyun/SLB: discover %s %s: %w", region, key, err)
			}
			for _, e := range exts {
				out = append(out, deploy.Discovered{Key: region + "/" + key + "/" + e.Domain, CloudProduct: "SLB", Domain: e.Domain, RegionID: region,
					InstanceID: l.LoadBalancerID, ListenerPort: port, EnableHTTPS: true, CertSha2: sha(e.ServerCertificateID)})
			}
		}
	}
	return out, nil
}

// Sweep deletes, in the target's region, the server certificates certfleet
// uploaded that no listener or domain extension uses, keeping the newest
// KeepPrevious.
func (d *Deployer) Sweep(ctx context.Context, t deploy.Target) error {
	var cfg Config
	if err := Description.DecodeConfig(t.Config, &cfg); err != nil {
		return err
	}
	keep := aliyun.KeepPrevious(cfg.KeepPrevious)
	c, err := d.hub.Client(t, "SLB", cfg.Endpoint)
	if err != nil {
		return err
	}
	ls, err := d.httpsListeners(ctx, c)
	if err != nil {
		return fmt.Errorf("aliyun/SLB: sweep: %w", err)
	}
	inUse := map[string]bool{}
	for _, l := range ls {
		inUse[l.HTTPSListenerConfig.ServerCertificateID] = true
		exts, err := d.extensions(ctx, c, l.LoadBalancerID, strconv.Itoa(l.ListenerPort))
		if err != nil {
			return fmt.Errorf("aliyun/SLB: sweep: %w", err)
		}
		for _, e := range exts {
			inUse[e.ServerCertificateID] = true
		}
	}
	certs, err := d.serverCerts(ctx, c, "")
	if err != nil {
		return fmt.Errorf("aliyun/SLB: sweep: %w", err)
	}
	var ups []aliyun.Uploaded
	for _, x := range certs {
		ups = append(ups, aliyun.Uploaded{ID: x.ServerCertificateID, Name: x.ServerCertificateName, Order: x.CreateTimeStamp})
	}
	deleted, err := aliyun.SweepUploads(ctx, ups, inUse, keep, func(ctx context.Context, id string) error {
		return c.Call(ctx, aliyun.SLB, true, "DeleteServerCertificate", map[string]string{"ServerCertificateId": id}, nil)
	})
	names := map[string]string{}
	for _, x := range certs {
		names[x.ServerCertificateID] = x.ServerCertificateName
	}
	for _, id := range deleted {
		c.Forget("SLB/" + c.Region() + "/" + strings.ToUpper(strings.TrimPrefix(names[id], aliyun.UploadPrefix)))
	}
	if err != nil {
		return fmt.Errorf("aliyun/SLB: sweep: %w", err)
	}
	return nil
}

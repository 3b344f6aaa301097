// Package cdn deploys certificates to Alibaba Cloud CDN domains (CloudName
// "aliyun", CloudProduct "CDN"): the certificate is uploaded once to the
// account's certificate service (CAS) and bound to the resource's Domain by
// its CertId (SetCdnDomainSSLCertificate, CertType=cas), then read back.
//
// It is not a generic CDN client: it makes only the calls listed in the
// RAM policy of docs/deployers.md.
package cdn

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/aliyun"
)

// Description is aliyun/CDN's Description.
var Description = deploy.Description{
	CloudName:    aliyun.CloudName,
	CloudProduct: "CDN",
	Summary:      "Binds the certificate, uploaded once to the account's certificate service, to an Alibaba Cloud CDN domain (the resource's Domain).",
	Config:       []deploy.Field{aliyun.FieldEndpoint, aliyun.FieldKeepPrevious},
	Access:       aliyun.AccessSpec,
}

// Config is a CDN resource's Config.
type Config struct {
	Endpoint     string
	KeepPrevious *int
}

// Variant is what differs between the CDN products that bind CAS
// certificates to accelerated domains the same way (CDN, DCDN): their API,
// action names and answer fields.
type Variant struct {
	Description deploy.Description
	API         aliyun.API
	// Describe, Set and List are the actions that describe domains'
	// certificates (comma-separated DomainName), set one domain's, and
	// list the account's domains (PageSize, PageNumber).
	Describe, Set, List string
	// BatchSet sets several domains' certificate at once ("" for none).
	BatchSet string
}

// CDNVariant is Alibaba Cloud CDN (2018-05-10).
var CDNVariant = Variant{Description: Description, API: aliyun.CDN, Describe: "DescribeDomainCertificateInfo",
	Set: "SetCdnDomainSSLCertificate", List: "DescribeUserDomains", BatchSet: "BatchSetCdnDomainServerCertificate"}

// Deployer binds certificates to CDN domains. It is safe for concurrent use.
type Deployer struct {
	hub  *aliyun.Hub
	v    Variant
	name string // "aliyun/CDN", for errors
}

var (
	_ deploy.Product         = (*Deployer)(nil)
	_ deploy.Rollbacker      = (*Deployer)(nil)
	_ deploy.Snapshotter     = (*Deployer)(nil)
	_ deploy.Checker         = (*Deployer)(nil)
	_ deploy.Discoverer      = (*Deployer)(nil)
	_ deploy.Sweeper         = (*Deployer)(nil)
	_ deploy.ConfigValidator = (*Deployer)(nil)
)

// New returns a CDN deployer over hub, and registers CDN's bindings as CAS
// users for hub's sweeps.
func New(hub *aliyun.Hub) *Deployer { return NewVariant(hub, CDNVariant) }

// NewVariant returns a deployer for another product of CDN's kind (DCDN).
func NewVariant(hub *aliyun.Hub, v Variant) *Deployer {
	d := &Deployer{hub: hub, v: v, name: v.Description.Name()}
	hub.RegisterCASUser(v.Description.CloudProduct, d.casInUse)
	return d
}

// ValidateConfig checks Endpoint.
func (d *Deployer) ValidateConfig(config json.RawMessage) error {
	var cfg Config
	if err := d.v.Description.DecodeConfig(config, &cfg); err != nil {
		return err
	}
	return aliyun.ValidateEndpoint(d.v.Description.CloudProduct, cfg.Endpoint)
}

// Describe returns Description.
func (d *Deployer) Describe() deploy.Description { return d.v.Description }

// binding is what a domain serves, as DescribeDomainCertificateInfo says;
// it is also the snapshot Rollback restores.
type binding struct {
	SSL      bool
	CertType string `json:",omitempty"`
	CertID   int64  `json:"CertId,omitempty"`
	CertName string `json:",omitempty"`
}

func (d *Deployer) client(t deploy.Target) (*aliyun.Client, error) {
	var cfg Config
	if err := d.v.Description.DecodeConfig(t.Config, &cfg); err != nil {
		return nil, err
	}
	if err := aliyun.ValidateEndpoint(d.v.Description.CloudProduct, cfg.Endpoint); err != nil {
		return nil, err
	}
	if t.Domain == "" {
		return nil, deploy.Permanentf("%s: the resource has no Domain: set it to the accelerated domain name", d.name)
	}
	return d.hub.Client(t, d.v.Description.CloudProduct, cfg.Endpoint)
}

type certInfo struct {
	DomainName              string
	CertType                string
	CertID                  string `json:"CertId"`
	CertName                string
	ServerCertificateStatus string
	// SSLProtocol is DCDN's name of ServerCertificateStatus.
	SSLProtocol    string
	CertExpireTime string
}

func (in certInfo) on() bool { return in.ServerCertificateStatus == "on" || in.SSLProtocol == "on" }

func (d *Deployer) describe(ctx context.Context, c *aliyun.Client, domains ...string) ([]certInfo, error) {
	var out struct {
		CertInfos struct{ CertInfo []certInfo }
	}
	if err := c.Call(ctx, d.v.API, true, d.v.Describe, map[string]string{"DomainName": strings.Join(domains, ",")}, &out); err != nil {
		return nil, err
	}
	return out.CertInfos.CertInfo, nil
}

// describeOne describes one domain; with batching on, concurrent
// deployments share DescribeDomainCertificateInfo calls (50 domains each).
func (d *Deployer) describeOne(ctx context.Context, c *aliyun.Client, domain string) ([]certInfo, error) {
	if !c.Batch() {
		return d.describe(ctx, c, domain)
	}
	ep, err := c.Endpoint(d.v.API, true)
	if err != nil {
		return nil, deploy.Permanent(err)
	}
	res, err := c.Batched(ctx, d.v.Description.CloudProduct+"/describe/"+ep.String(), d.v.Describe, domain, maxBatch,
		func(ctx context.Context, domains []string) (map[string]any, error) {
			var out struct {
				CertInfos struct{ CertInfo []certInfo }
			}
			err := c.SendWaited(ctx, d.v.API, true, d.v.Describe, map[string]string{"DomainName": strings.Join(domains, ",")}, &out)
			if err != nil && len(domains) > 1 && deploy.IsPermanent(err) {
				return d.oneByOne(ctx, domains, func(domain string) (any, error) { return d.describe(ctx, c, domain) })
			}
			if err != nil {
				return nil, err
			}
			m := map[string]any{}
			for _, in := range out.CertInfos.CertInfo {
				m[in.DomainName] = []certInfo{in}
			}
			return m, nil
		})
	if err != nil {
		return nil, err
	}
	if e, ok := res.(error); ok {
		return nil, e
	}
	infos, _ := res.([]certInfo)
	return infos, nil
}

// oneByOne answers a batch whose combined call was refused (one unknown
// domain refuses them all) with a call per item; an item's error becomes
// its result.
func (d *Deployer) oneByOne(ctx context.Context, items []string, call func(string) (any, error)) (map[string]any, error) {
	m := map[string]any{}
	for _, it := range items {
		v, err := call(it)
		if err != nil {
			m[it] = err
			continue
		}
		m[it] = v
	}
	return m, nil
}

// maxBatch is how many domains one CDN batch call carries.
const maxBatch = 50

func (d *Deployer) current(ctx context.Context, c *aliyun.Client, domain string) (binding, error) {
	infos, err := d.describeOne(ctx, c, domain)
	if err != nil {
		return binding{}, fmt.Errorf("%s %s: %w", d.name, domain, err)
	}
	for _, in := range infos {
		if in.DomainName == domain && in.on() {
			id, _ := strconv.ParseInt(in.CertID, 10, 64)
			return binding{SSL: true, CertType: in.CertType, CertID: id, CertName: in.CertName}, nil
		}
	}
	return binding{}, nil
}

// Snapshot records the domain's binding: on or off, and the CAS CertId.
func (d *Deployer) Snapshot(ctx context.Context, req deploy.Request) ([]byte, error) {
	c, err := d.client(req.Target)
	if err != nil {
		return nil, err
	}
	b, err := d.current(ctx, c, req.Target.Domain)
	if err != nil {
		return nil, err
	}
	return json.Marshal(b)
}

// AlreadyDeployed reports whether the domain serves a CAS certificate with
// the bundle's SHA-256.
func (d *Deployer) AlreadyDeployed(ctx context.Context, req deploy.Request) (bool, error) {
	c, err := d.client(req.Target)
	if err != nil {
		return false, err
	}
	b, err := d.current(ctx, c, req.Target.Domain)
	if err != nil || !b.SSL || b.CertType != "cas" {
		return false, err
	}
	sha, err := c.CASSha2(ctx, b.CertID)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", d.name, req.Target.Domain, err)
	}
	return sha == aliyun.BundleSHA256(req.Bundle), nil
}

// Deploy uploads the bundle to CAS (once per fingerprint), binds it to the
// domain and reads the binding back; previous is the binding before.
func (d *Deployer) Deploy(ctx context.Context, req deploy.Request) ([]byte, error) {
	c, err := d.client(req.Target)
	if err != nil {
		return nil, err
	}
	domain := req.Target.Domain
	before, err := d.current(ctx, c, domain)
	if err != nil {
		return nil, err
	}
	previous, _ := json.Marshal(before)
	id, err := c.UploadCAS(ctx, req.Bundle)
	if err != nil {
		return previous, fmt.Errorf("%s %s: %w", d.name, domain, err)
	}
	if before.SSL && before.CertType == "cas" && before.CertID == id {
		return previous, nil
	}
	if err := d.bind(ctx, c, domain, binding{SSL: true, CertType: "cas", CertID: id, CertName: aliyun.UploadName(aliyun.BundleSHA256(req.Bundle))}); err != nil {
		if aliyun.Code(err) == "InvalidCertificate.NotFound" {
			c.ForgetCAS(aliyun.BundleSHA256(req.Bundle)) // deleted behind our back: upload again next attempt
			err = fmt.Errorf("%w (certfleet will upload it again on the next attempt)", err)
		}
		return previous, err
	}
	return previous, nil
}

// bind sets the domain's binding and reads it back.
func (d *Deployer) bind(ctx context.Context, c *aliyun.Client, domain string, b binding) error {
	params := map[string]string{"DomainName": domain, "SSLProtocol": "off"}
	if b.SSL {
		params["SSLProtocol"] = "on"
		params["CertType"] = "cas"
		params["CertId"] = strconv.FormatInt(b.CertID, 10)
		params["CertName"] = b.CertName
		params["CertRegion"] = "cn-hangzhou"
	}
	if err := d.set(ctx, c, domain, params); err != nil {
		return fmt.Errorf("%s %s: %w", d.name, domain, err)
	}
	got, err := d.current(ctx, c, domain)
	if err != nil {
		return fmt.Errorf("%s %s: read back: %w", d.name, domain, err)
	}
	if got.SSL != b.SSL || (b.SSL && got.CertID != b.CertID) {
		return fmt.Errorf("%s %s: read back after the change: the domain serves %s, want %s", d.name, domain, describeBinding(got), describeBinding(b))
	}
	return nil
}

// set changes one domain's binding; with batching on, concurrent
// deployments of one CAS certificate share BatchSetCdnDomainServerCertificate
// calls (50 domains each).
func (d *Deployer) set(ctx context.Context, c *aliyun.Client, domain string, params map[string]string) error {
	single := func(domain string) (any, error) {
		p := maps.Clone(params)
		p["DomainName"] = domain
		return nil, c.Call(ctx, d.v.API, true, d.v.Set, p, nil)
	}
	if !c.Batch() || d.v.BatchSet == "" || params["SSLProtocol"] != "on" {
		_, err := single(domain)
		return err
	}
	ep, err := c.Endpoint(d.v.API, true)
	if err != nil {
		return deploy.Permanent(err)
	}
	res, err := c.Batched(ctx, d.v.Description.CloudProduct+"/set/"+ep.String()+"/"+params["CertId"], d.v.BatchSet, domain, maxBatch,
		func(ctx context.Context, domains []string) (map[string]any, error) {
			p := maps.Clone(params)
			p["DomainName"] = strings.Join(domains, ",")
			err := c.SendWaited(ctx, d.v.API, true, d.v.BatchSet, p, nil)
			if err != nil && len(domains) > 1 && deploy.IsPermanent(err) {
				return d.oneByOne(ctx, domains, single)
			}
			return nil, err
		})
	if err != nil {
		return err
	}
	if e, ok := res.(error); ok {
		return e
	}
	return nil
}

func describeBinding(b binding) string {
	switch {
	case !b.SSL:
		return "no certificate (HTTPS off)"
	case b.CertType == "cas":
		return fmt.Sprintf("CAS certificate %d", b.CertID)
	}
	return fmt.Sprintf("a %s certificate %q", b.CertType, b.CertName)
}

// Rollback restores the binding previous recorded: HTTPS off, or the CAS
// certificate it named. A previous binding certfleet cannot restore by id
// (an inline "upload" certificate) is restored from req.Bundle, the
// certificate the engine says the resource held.
func (d *Deployer) Rollback(ctx context.Context, req deploy.Request, previous []byte) error {
	c, err := d.client(req.Target)
	if err != nil {
		return err
	}
	var b binding
	if len(previous) > 0 {
		if err := json.Unmarshal(previous, &b); err != nil {
			return deploy.Permanentf("%s %s: the recorded previous binding is unreadable: %v", d.name, req.Target.Domain, err)
		}
	} else if req.Bundle.CertID == 0 {
		return deploy.Permanentf("%s %s: nothing was recorded before the deployment, and no certificate to restore", d.name, req.Target.Domain)
	}
	if b.SSL && b.CertType != "cas" || len(previous) == 0 {
		if req.Bundle.CertID == 0 {
			return deploy.Permanentf("%s %s: the previous certificate was not a CAS certificate and the engine gave none to restore", d.name, req.Target.Domain)
		}
		id, err := c.UploadCAS(ctx, req.Bundle)
		if err != nil {
			return fmt.Errorf("%s %s: %w", d.name, req.Target.Domain, err)
		}
		b = binding{SSL: true, CertType: "cas", CertID: id, CertName: aliyun.UploadName(aliyun.BundleSHA256(req.Bundle))}
	}
	cur, err := d.current(ctx, c, req.Target.Domain)
	if err != nil {
		return err
	}
	if cur.SSL == b.SSL && (!b.SSL || cur.CertID == b.CertID) {
		return nil
	}
	err = d.bind(ctx, c, req.Target.Domain, b)
	if aliyun.Code(err) == "InvalidCertificate.NotFound" && req.Bundle.CertID != 0 {
		// The recorded CAS certificate was deleted since (a cleanup with
		// KeepPrevious 0, someone else): bind the engine's copy instead.
		c.ForgetCAS(aliyun.BundleSHA256(req.Bundle))
		id, uerr := c.UploadCAS(ctx, req.Bundle)
		if uerr != nil {
			return fmt.Errorf("%s %s: %w", d.name, req.Target.Domain, uerr)
		}
		return d.bind(ctx, c, req.Target.Domain, binding{SSL: true, CertType: "cas", CertID: id, CertName: aliyun.UploadName(aliyun.BundleSHA256(req.Bundle))})
	}
	return err
}

type userDomain struct {
	DomainName  string
	SslProtocol string
}

func (d *Deployer) domains(ctx context.Context, c *aliyun.Client) ([]userDomain, error) {
	var all []userDomain
	for page := 1; ; page++ {
		var out struct {
			Domains    struct{ PageData []userDomain }
			TotalCount int
		}
		if err := c.Call(ctx, d.v.API, true, d.v.List, map[string]string{
			"PageSize": "500", "PageNumber": strconv.Itoa(page)}, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Domains.PageData...)
		if len(out.Domains.PageData) == 0 || len(all) >= out.TotalCount {
			return all, nil
		}
	}
}

// certInfos describes the HTTPS domains, 50 a call.
func (d *Deployer) certInfos(ctx context.Context, c *aliyun.Client) ([]certInfo, error) {
	doms, err := d.domains(ctx, c)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, x := range doms {
		names = append(names, x.DomainName)
	}
	var all []certInfo
	for len(names) > 0 {
		n := min(len(names), 50)
		infos, err := d.describe(ctx, c, names[:n]...)
		if err != nil {
			return nil, err
		}
		all = append(all, infos...)
		names = names[n:]
	}
	return all, nil
}

func (d *Deployer) casInUse(ctx context.Context, c *aliyun.Client) ([]int64, error) {
	infos, err := d.certInfos(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.v.Description.CloudProduct, err)
	}
	var ids []int64
	for _, in := range infos {
		if in.on() && in.CertType == "cas" {
			if id, err := strconv.ParseInt(in.CertID, 10, 64); err == nil {
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// Discover lists every CDN domain of the account, HTTPS or not (each can
// take a certificate), with the SHA-256 of the CAS certificate it serves.
func (d *Deployer) Discover(ctx context.Context, t deploy.Target) ([]deploy.Discovered, error) {
	c, err := d.hub.Client(t, d.v.Description.CloudProduct, "")
	if err != nil {
		return nil, err
	}
	infos, err := d.certInfos(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%s: discover: %w", d.name, err)
	}
	shas := map[int64]string{}
	var out []deploy.Discovered
	for _, in := range infos {
		x := deploy.Discovered{Key: in.DomainName, CloudProduct: d.v.Description.CloudProduct, Domain: in.DomainName, EnableHTTPS: in.on()}
		if x.EnableHTTPS && in.CertType == "cas" {
			id, _ := strconv.ParseInt(in.CertID, 10, 64)
			if _, ok := shas[id]; !ok {
				shas[id], _ = c.CASSha2(ctx, id)
			}
			x.CertSha2 = shas[id]
		}
		if e, err := time.Parse("2006-01-02T15:04:05Z", in.CertExpireTime); err == nil {
			x.CertEndTime = e
		}
		out = append(out, x)
	}
	return out, nil
}

// Sweep deletes CAS certificates certfleet uploaded that no CDN domain nor
// any other registered product binds, keeping the newest KeepPrevious.
func (d *Deployer) Sweep(ctx context.Context, t deploy.Target) error {
	var cfg Config
	if err := d.v.Description.DecodeConfig(t.Config, &cfg); err != nil {
		return err
	}
	return d.hub.SweepCASFor(ctx, t, d.v.Description.CloudProduct, cfg.Endpoint, cfg.KeepPrevious)
}

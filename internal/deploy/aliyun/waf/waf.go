// Package waf deploys certificates to domains protected by Alibaba Cloud
// Web Application Firewall 3.0 (CloudName "aliyun", CloudProduct "WAF",
// API 2021-10-01). The certificate is uploaded once to the account's
// certificate service (CAS) and bound by its CertId ("<CertId>-cn-hangzhou")
// to the HTTPS listen configuration of the resource's Domain in the WAF
// instance InstanceId: DescribeDomainDetail reads the domain's Listen and
// Redirect configuration, ModifyDomain writes it back with only CertId
// changed (ModifyDomain replaces the whole configuration, so every other
// field is sent as it was read), and the domain is read back.
//
// It is not a WAF client: it makes only the calls of its RAM policy and
// never adds, removes or reconfigures a domain beyond its certificate.
package waf

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/aliyun"
)

// Description is aliyun/WAF's Description.
var Description = deploy.Description{
	CloudName:    aliyun.CloudName,
	CloudProduct: "WAF",
	Summary:      "Binds the certificate, uploaded once to the account's certificate service, to the HTTPS listen configuration of a domain protected by a WAF 3.0 instance (RegionId, InstanceId, Domain), leaving the rest of the domain's configuration as it was.",
	Config:       []deploy.Field{aliyun.FieldEndpoint, aliyun.FieldKeepPrevious},
	Access:       aliyun.AccessSpec,
}

// CASRegion is the region suffix of WAF's CertId for a CAS certificate
// ("<CertId>-cn-hangzhou"), the certificate service of the China site.
const CASRegion = "cn-hangzhou"

// Config is a WAF resource's Config.
type Config struct {
	Endpoint     string
	KeepPrevious *int
}

// Deployer binds certificates to WAF domains. It is safe for concurrent use.
type Deployer struct {
	hub  *aliyun.Hub
	name string // "aliyun/WAF"
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

// New returns a WAF deployer over hub, and registers WAF's bindings as CAS
// users for hub's sweeps.
func New(hub *aliyun.Hub) *Deployer {
	d := &Deployer{hub: hub, name: Description.Name()}
	hub.RegisterCASUser(Description.CloudProduct, d.casInUse)
	return d
}

// Describe returns Description.
func (d *Deployer) Describe() deploy.Description { return Description }

// ValidateConfig checks Endpoint.
func (d *Deployer) ValidateConfig(config json.RawMessage) error {
	var cfg Config
	if err := Description.DecodeConfig(config, &cfg); err != nil {
		return err
	}
	return aliyun.ValidateEndpoint(Description.CloudProduct, cfg.Endpoint)
}

// CertID is WAF's CertId of CAS certificate casID.
func CertID(casID int64) string { return strconv.FormatInt(casID, 10) + "-" + CASRegion }

// CASID is the CAS certificate id of a WAF CertId ("123-cn-hangzhou" or
// "123"); 0 when it names none.
func CASID(certID string) int64 {
	head, _, _ := strings.Cut(certID, "-")
	n, _ := strconv.ParseInt(head, 10, 64)
	return n
}

type domain struct {
	c        *aliyun.Client
	instance string
	domain   string
	display  string
}

func (d *Deployer) target(t deploy.Target) (*domain, error) {
	var cfg Config
	if err := Description.DecodeConfig(t.Config, &cfg); err != nil {
		return nil, err
	}
	if err := aliyun.ValidateEndpoint(Description.CloudProduct, cfg.Endpoint); err != nil {
		return nil, err
	}
	if t.InstanceID == "" {
		return nil, deploy.Permanentf("%s: the resource has no InstanceId: set it to the WAF instance's id (waf_…, DescribeInstance)", d.name)
	}
	if t.Domain == "" {
		return nil, deploy.Permanentf("%s: the resource has no Domain: set it to the domain the WAF instance protects", d.name)
	}
	c, err := d.hub.Client(t, Description.CloudProduct, cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	return &domain{c: c, instance: t.InstanceID, domain: t.Domain,
		display: fmt.Sprintf("%s %s %s %s", d.name, c.Region(), t.InstanceID, t.Domain)}, nil
}

// detail is DescribeDomainDetail's answer. Listen and Redirect are kept
// field by field as read, so that ModifyDomain sends back what it does not
// change.
type detail struct {
	Listen     map[string]json.RawMessage
	Redirect   map[string]json.RawMessage
	CertDetail struct {
		EndTime int64
	}
}

func (x detail) certID() string {
	var s string
	_ = json.Unmarshal(x.Listen["CertId"], &s)
	return s
}

func (x detail) https() bool {
	var ports []int
	_ = json.Unmarshal(x.Listen["HttpsPorts"], &ports)
	return len(ports) > 0
}

func describe(ctx context.Context, c *aliyun.Client, instance, name string) (detail, error) {
	var x detail
	err := c.Call(ctx, aliyun.WAF, true, "DescribeDomainDetail", map[string]string{"InstanceId": instance, "Domain": name}, &x)
	return x, err
}

func (l *domain) read(ctx context.Context) (detail, error) {
	x, err := describe(ctx, l.c, l.instance, l.domain)
	if err != nil {
		return detail{}, fmt.Errorf("%s: %w", l.display, err)
	}
	if x.Listen == nil || x.Redirect == nil {
		return detail{}, fmt.Errorf("%s: DescribeDomainDetail answered without the domain's Listen or Redirect configuration", l.display)
	}
	return x, nil
}

// state is the snapshot Rollback restores: the CertId bound ("" none).
type state struct {
	CertID string `json:"CertId"`
}

// redirectForModify converts DescribeDomainDetail's Redirect into what
// ModifyDomain takes: Backends and BackupBackends are read as objects
// {"Backend": "…"} but written as strings. Every other field is kept as
// read.
func redirectForModify(r map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(r))
	for k, v := range r {
		out[k] = v
	}
	for _, k := range []string{"Backends", "BackupBackends"} {
		raw, ok := r[k]
		if !ok {
			continue
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("Redirect.%s is not a list: %v", k, err)
		}
		ss := make([]string, 0, len(items))
		for _, it := range items {
			var s string
			if json.Unmarshal(it, &s) == nil {
				ss = append(ss, s)
				continue
			}
			var o struct{ Backend string }
			if err := json.Unmarshal(it, &o); err != nil || o.Backend == "" {
				return nil, fmt.Errorf("Redirect.%s holds an entry certfleet cannot read: %s", k, it)
			}
			ss = append(ss, o.Backend)
		}
		out[k], _ = json.Marshal(ss)
	}
	return out, nil
}

// write binds certID to the domain (ModifyDomain with the configuration
// read in x, CertId changed) and reads it back.
func (l *domain) write(ctx context.Context, x detail, certID string) error {
	if !x.https() {
		return deploy.Permanentf("%s: the domain has no HTTPS listen port (Listen.HttpsPorts is empty): add one in the WAF console; certfleet changes only the certificate", l.display)
	}
	listen := make(map[string]json.RawMessage, len(x.Listen))
	for k, v := range x.Listen {
		listen[k] = v
	}
	listen["CertId"], _ = json.Marshal(certID)
	redirect, err := redirectForModify(x.Redirect)
	if err != nil {
		return deploy.Permanentf("%s: %v", l.display, err)
	}
	lj, _ := json.Marshal(listen)
	rj, _ := json.Marshal(redirect)
	if err := l.c.Call(ctx, aliyun.WAF, true, "ModifyDomain", map[string]string{
		"InstanceId": l.instance, "Domain": l.domain, "Listen": string(lj), "Redirect": string(rj)}, nil); err != nil {
		return fmt.Errorf("%s: %w", l.display, err)
	}
	got, err := l.read(ctx)
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if CASID(got.certID()) != CASID(certID) {
		return fmt.Errorf("%s: read back after the change: the domain binds %q, want %q", l.display, got.certID(), certID)
	}
	return nil
}

// Snapshot records the CertId the domain binds.
func (d *Deployer) Snapshot(ctx context.Context, req deploy.Request) ([]byte, error) {
	l, err := d.target(req.Target)
	if err != nil {
		return nil, err
	}
	x, err := l.read(ctx)
	if err != nil {
		return nil, err
	}
	return json.Marshal(state{CertID: x.certID()})
}

// AlreadyDeployed reports whether the domain binds a CAS certificate with
// the bundle's SHA-256.
func (d *Deployer) AlreadyDeployed(ctx context.Context, req deploy.Request) (bool, error) {
	l, err := d.target(req.Target)
	if err != nil {
		return false, err
	}
	x, err := l.read(ctx)
	if err != nil {
		return false, err
	}
	id := CASID(x.certID())
	if id == 0 || !x.https() {
		return false, nil
	}
	sha, err := l.c.CASSha2(ctx, id)
	if err != nil {
		if aliyun.Code(err) == "NotFound.Certificate" {
			return false, nil
		}
		return false, fmt.Errorf("%s: %w", l.display, err)
	}
	return sha == aliyun.BundleSHA256(req.Bundle), nil
}

// Deploy uploads the bundle to CAS (once per fingerprint), binds it to the
// domain and reads the domain back; previous is the CertId before.
func (d *Deployer) Deploy(ctx context.Context, req deploy.Request) ([]byte, error) {
	l, err := d.target(req.Target)
	if err != nil {
		return nil, err
	}
	before, err := l.read(ctx)
	if err != nil {
		return nil, err
	}
	previous, _ := json.Marshal(state{CertID: before.certID()})
	if !before.https() {
		return previous, deploy.Permanentf("%s: the domain has no HTTPS listen port (Listen.HttpsPorts is empty): add one in the WAF console; certfleet changes only the certificate", l.display)
	}
	id, err := l.c.UploadCAS(ctx, req.Bundle)
	if err != nil {
		return previous, fmt.Errorf("%s: %w", l.display, err)
	}
	if CASID(before.certID()) == id {
		return previous, nil
	}
	err = l.write(ctx, before, CertID(id))
	if aliyun.Code(err) == "Certificate.NotFound" {
		// The upload certfleet remembered was deleted behind its back:
		// upload the certificate again and bind the new copy.
		l.c.ForgetCAS(aliyun.BundleSHA256(req.Bundle))
		if id, err = l.c.UploadCAS(ctx, req.Bundle); err != nil {
			return previous, fmt.Errorf("%s: %w", l.display, err)
		}
		if before, err = l.read(ctx); err != nil {
			return previous, err
		}
		err = l.write(ctx, before, CertID(id))
	}
	return previous, err
}

// Rollback binds the recorded CertId again; without a record (or with a
// recorded certificate deleted since) it binds req.Bundle, the certificate
// the engine says the domain held.
func (d *Deployer) Rollback(ctx context.Context, req deploy.Request, previous []byte) error {
	l, err := d.target(req.Target)
	if err != nil {
		return err
	}
	var want state
	if len(previous) > 0 {
		if err := json.Unmarshal(previous, &want); err != nil {
			return deploy.Permanentf("%s: the recorded previous binding is unreadable: %v", l.display, err)
		}
	}
	upload := func() (string, error) {
		if req.Bundle.CertID == 0 {
			return "", deploy.Permanentf("%s: nothing was recorded before the deployment, and no certificate to restore", l.display)
		}
		id, err := l.c.UploadCAS(ctx, req.Bundle)
		if err != nil {
			return "", fmt.Errorf("%s: %w", l.display, err)
		}
		return CertID(id), nil
	}
	if want.CertID == "" {
		// The domain bound nothing before (it cannot serve HTTPS without a
		// certificate, so the deployment never changed it) or nothing was
		// recorded: restore the engine's copy.
		if want.CertID, err = upload(); err != nil {
			return err
		}
	}
	cur, err := l.read(ctx)
	if err != nil {
		return err
	}
	if CASID(cur.certID()) == CASID(want.CertID) {
		return nil
	}
	err = l.write(ctx, cur, want.CertID)
	if aliyun.Code(err) == "Certificate.NotFound" && req.Bundle.CertID != 0 {
		// The recorded certificate was deleted since: bind the engine's copy.
		l.c.ForgetCAS(aliyun.BundleSHA256(req.Bundle))
		id, uerr := upload()
		if uerr != nil {
			return uerr
		}
		if cur, err = l.read(ctx); err != nil {
			return err
		}
		return l.write(ctx, cur, id)
	}
	return err
}

// instance returns the WAF instance of c's region, "" when the account has
// none there.
func instance(ctx context.Context, c *aliyun.Client) (string, error) {
	var out struct {
		InstanceID string `json:"InstanceId"`
	}
	if err := c.Call(ctx, aliyun.WAF, true, "DescribeInstance", nil, &out); err != nil {
		return "", err
	}
	return out.InstanceID, nil
}

type wafDomain struct {
	Domain string
}

func domains(ctx context.Context, c *aliyun.Client, inst string) ([]string, error) {
	var all []string
	for page := 1; ; page++ {
		var out struct {
			Domains    []wafDomain
			TotalCount int
		}
		if err := c.Call(ctx, aliyun.WAF, true, "DescribeDomains", map[string]string{
			"InstanceId": inst, "PageSize": "50", "PageNumber": strconv.Itoa(page)}, &out); err != nil {
			return nil, err
		}
		for _, x := range out.Domains {
			all = append(all, x.Domain)
		}
		if len(out.Domains) == 0 || len(all) >= out.TotalCount {
			return all, nil
		}
	}
}

type bound struct {
	domain string
	detail detail
}

// bindings lists the domains of the WAF instance in c's region with their
// configuration; none without an instance.
func bindings(ctx context.Context, c *aliyun.Client) (string, []bound, error) {
	inst, err := instance(ctx, c)
	if err != nil || inst == "" {
		return "", nil, err
	}
	names, err := domains(ctx, c, inst)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", inst, err)
	}
	out := make([]bound, 0, len(names))
	for _, n := range names {
		x, err := describe(ctx, c, inst, n)
		if err != nil {
			return "", nil, fmt.Errorf("%s %s: %w", inst, n, err)
		}
		out = append(out, bound{n, x})
	}
	return inst, out, nil
}

// casInUse lists the CAS certificates the WAF instance of cn-hangzhou binds
// (whatever region the sweeping product's client calls: WAF's CertIds name
// CAS certificates of cn-hangzhou, and WAF has no endpoint in most regions).
func (d *Deployer) casInUse(ctx context.Context, c *aliyun.Client) ([]int64, error) {
	_, bs, err := bindings(ctx, c.InRegion(CASRegion))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Description.CloudProduct, err)
	}
	var ids []int64
	for _, b := range bs {
		if id := CASID(b.detail.certID()); id != 0 {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Regions are the regions of WAF 3.0's API: cn-hangzhou for the Chinese
// mainland, ap-southeast-1 outside it.
var Regions = []string{"cn-hangzhou", "ap-southeast-1"}

// Discover lists the domains of the WAF instance of every WAF region the
// credential's Regions names (cn-hangzhou when it names none of them), with
// the SHA-256 of the CAS certificate each binds.
func (d *Deployer) Discover(ctx context.Context, t deploy.Target) ([]deploy.Discovered, error) {
	var out []deploy.Discovered
	shas := map[int64]string{}
	var regions []string
	for _, r := range aliyun.Regions(t) {
		if slices.Contains(Regions, r) {
			regions = append(regions, r)
		}
	}
	if len(regions) == 0 {
		regions = []string{CASRegion}
	}
	for _, region := range regions {
		rt := t
		rt.RegionID = region
		c, err := d.hub.Client(rt, Description.CloudProduct, "")
		if err != nil {
			return nil, err
		}
		inst, bs, err := bindings(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("%s: discover %s: %w", d.name, region, err)
		}
		for _, b := range bs {
			x := deploy.Discovered{Key: region + "/" + inst + "/" + b.domain, CloudProduct: Description.CloudProduct, Domain: b.domain,
				RegionID: region, InstanceID: inst, EnableHTTPS: b.detail.https()}
			if id := CASID(b.detail.certID()); id != 0 {
				if _, ok := shas[id]; !ok {
					sha, err := c.CASSha2(ctx, id)
					if err != nil && aliyun.Code(err) != "NotFound.Certificate" {
						return nil, fmt.Errorf("%s: discover %s: %w", d.name, b.domain, err)
					}
					shas[id] = sha
				}
				x.CertSha2 = shas[id]
			}
			if e := b.detail.CertDetail.EndTime; e > 0 {
				x.CertEndTime = time.UnixMilli(e).UTC()
			}
			out = append(out, x)
		}
	}
	return out, nil
}

// Sweep deletes CAS certificates certfleet uploaded that no WAF domain nor
// any other registered product binds, keeping the newest KeepPrevious.
func (d *Deployer) Sweep(ctx context.Context, t deploy.Target) error {
	var cfg Config
	if err := Description.DecodeConfig(t.Config, &cfg); err != nil {
		return err
	}
	return d.hub.SweepCASFor(ctx, t, Description.CloudProduct, cfg.Endpoint, cfg.KeepPrevious)
}

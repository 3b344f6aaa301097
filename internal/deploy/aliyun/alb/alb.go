// Package alb deploys certificates to Alibaba Cloud Application Load
// Balancer (ALB) HTTPS listeners (CloudName "aliyun", CloudProduct "ALB").
// The certificate is uploaded once to the account's certificate service
// (CAS) and bound by its CertificateId either as the listener's default
// certificate (Config DefaultResource=true; UpdateListenerAttribute) or as
// an additional certificate for the resource's Domain
// (AssociateAdditionalCertificatesWithListener), replacing only the
// additional certificate that served that domain and nothing else.
//
// It is not a load-balancer manager: it changes certificate bindings only.
package alb

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/aliyun"
)

// Description is aliyun/ALB's Description.
var Description = deploy.Description{
	CloudName:    aliyun.CloudName,
	CloudProduct: "ALB",
	Summary:      "Binds the certificate, uploaded once to the account's certificate service, to an Application Load Balancer HTTPS listener (RegionId, ListenerId): its default certificate or the additional certificate serving Domain.",
	Config:       []deploy.Field{aliyun.FieldDefaultResource, aliyun.FieldEndpoint, aliyun.FieldKeepPrevious},
	Access:       aliyun.AccessSpec,
}

// CASRegion is the region suffix of ALB's CertificateId for a CAS
// certificate ("<CertId>-cn-hangzhou"), the certificate service of the
// China site.
const CASRegion = "cn-hangzhou"

// Config is an ALB resource's Config.
type Config struct {
	DefaultResource bool
	Endpoint        string
	KeepPrevious    *int
}

// Variant is what differs between the load balancers that bind CAS
// certificates to listeners the same way (ALB, NLB): their API, the
// listeners' protocol and how certificate parameters are named.
type Variant struct {
	Description deploy.Description
	API         aliyun.API
	// Protocol is the ListenerProtocol of listeners with certificates.
	Protocol string
	// Param names the i-th (1-based) certificate parameter of action.
	Param func(action string, i int) string
}

// ALBVariant is Application Load Balancer (2020-06-16).
var ALBVariant = Variant{Description: Description, API: aliyun.ALB, Protocol: "HTTPS",
	Param: func(_ string, i int) string { return fmt.Sprintf("Certificates.%d.CertificateId", i) }}

// Deployer binds certificates to ALB listeners. It is safe for concurrent use.
type Deployer struct {
	hub  *aliyun.Hub
	v    Variant
	name string // "aliyun/ALB"
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

// New returns an ALB deployer over hub, and registers ALB's bindings as CAS
// users for hub's sweeps.
func New(hub *aliyun.Hub) *Deployer { return NewVariant(hub, ALBVariant) }

// NewVariant returns a deployer for another load balancer of ALB's kind (NLB).
func NewVariant(hub *aliyun.Hub, v Variant) *Deployer {
	d := &Deployer{hub: hub, v: v, name: v.Description.Name()}
	hub.RegisterCASUser(v.Description.CloudProduct, d.casInUse)
	return d
}

// Describe returns Description.
func (d *Deployer) Describe() deploy.Description { return d.v.Description }

// ValidateConfig checks Endpoint.
func (d *Deployer) ValidateConfig(config json.RawMessage) error {
	var cfg Config
	if err := d.v.Description.DecodeConfig(config, &cfg); err != nil {
		return err
	}
	return aliyun.ValidateEndpoint(d.v.Description.CloudProduct, cfg.Endpoint)
}

func certID(casID int64) string { return strconv.FormatInt(casID, 10) + "-" + CASRegion }

func casID(certID string) int64 {
	head, _, _ := strings.Cut(certID, "-")
	n, _ := strconv.ParseInt(head, 10, 64)
	return n
}

// ListenerID returns the ALB listener a target names: its ListenerId, or a
// ListenerPort of the form "lsn-…" / "lsn-…@443"; "" when it names none.
func ListenerID(t deploy.Target) string {
	for _, s := range []string{t.ListenerID, t.ListenerPort} {
		if strings.HasPrefix(s, "lsn-") {
			id, _, _ := strings.Cut(s, "@")
			return id
		}
	}
	return ""
}

type listener struct {
	c       *aliyun.Client
	cfg     Config
	id      string
	domain  string
	display string
}

func (d *Deployer) listener(t deploy.Target) (*listener, error) {
	var cfg Config
	if err := d.v.Description.DecodeConfig(t.Config, &cfg); err != nil {
		return nil, err
	}
	if err := aliyun.ValidateEndpoint(d.v.Description.CloudProduct, cfg.Endpoint); err != nil {
		return nil, err
	}
	id := ListenerID(t)
	if id == "" {
		return nil, deploy.Permanentf("%s: the resource names no listener: set ListenerId (or ListenerPort) to the listener's id, lsn-…@PORT", d.name)
	}
	if !cfg.DefaultResource && t.Domain == "" {
		return nil, deploy.Permanentf("%s: the resource has no Domain: set it to the domain the additional certificate serves, or Config DefaultResource to true", d.name)
	}
	c, err := d.hub.Client(t, d.v.Description.CloudProduct, cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	l := &listener{c: c, cfg: cfg, id: id, domain: t.Domain, display: fmt.Sprintf("%s %s %s", d.name, c.Region(), id)}
	if !cfg.DefaultResource {
		l.display += " " + t.Domain
	}
	return l, nil
}

type listenerCert struct {
	CertificateID string `json:"CertificateId"`
	IsDefault     bool
	Status        string
}

func (d *Deployer) certs(ctx context.Context, c *aliyun.Client, id string) ([]listenerCert, error) {
	var all []listenerCert
	token := ""
	for {
		var out struct {
			Certificates []listenerCert
			NextToken    string
		}
		params := map[string]string{"ListenerId": id, "CertificateType": "Server", "MaxResults": "100"}
		if token != "" {
			params["NextToken"] = token
		}
		if err := c.Call(ctx, d.v.API, true, "ListListenerCertificates", params, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Certificates...)
		if out.NextToken == "" || len(out.Certificates) == 0 {
			return all, nil
		}
		token = out.NextToken
	}
}

// state is a binding, and the snapshot Rollback restores: the default
// certificate, or the additional certificate(s) covering Domain.
type state struct {
	Default bool
	// CertificateIDs are ALB CertificateIds ("123-cn-hangzhou"): the
	// default one, or the additional ones covering Domain (none, usually
	// one).
	CertificateIDs []string `json:"CertificateIds"`
}

func (l *listener) current(ctx context.Context, d *Deployer) (state, error) {
	certs, err := d.certs(ctx, l.c, l.id)
	if err != nil {
		return state{}, fmt.Errorf("%s: %w", l.display, err)
	}
	s := state{Default: l.cfg.DefaultResource, CertificateIDs: []string{}}
	for _, x := range certs {
		if x.IsDefault != l.cfg.DefaultResource {
			continue
		}
		if l.cfg.DefaultResource {
			s.CertificateIDs = append(s.CertificateIDs, x.CertificateID)
			continue
		}
		detail, err := l.c.CASDetail(ctx, casID(x.CertificateID))
		if err != nil {
			if aliyun.Code(err) == "NotFound.Certificate" {
				continue // not a CAS certificate of this account: serves no one we know
			}
			return state{}, fmt.Errorf("%s: %w", l.display, err)
		}
		if slices.ContainsFunc(detail.Names(), func(n string) bool { return aliyun.Covers(n, l.domain) }) {
			s.CertificateIDs = append(s.CertificateIDs, x.CertificateID)
		}
	}
	return s, nil
}

// Snapshot records the default certificate, or the additional ones serving
// Domain.
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

// AlreadyDeployed reports whether the binding holds a CAS certificate with
// the bundle's SHA-256.
func (d *Deployer) AlreadyDeployed(ctx context.Context, req deploy.Request) (bool, error) {
	l, err := d.listener(req.Target)
	if err != nil {
		return false, err
	}
	s, err := l.current(ctx, d)
	if err != nil {
		return false, err
	}
	want := aliyun.BundleSHA256(req.Bundle)
	for _, id := range s.CertificateIDs {
		sha, err := l.c.CASSha2(ctx, casID(id))
		if err != nil {
			return false, fmt.Errorf("%s: %w", l.display, err)
		}
		if sha == want {
			return true, nil
		}
	}
	return false, nil
}

// Deploy uploads the bundle to CAS (once per fingerprint), binds it, and
// reads the listener's certificates back.
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
	id, err := l.c.UploadCAS(ctx, req.Bundle)
	if err != nil {
		return previous, fmt.Errorf("%s: %w", l.display, err)
	}
	want := state{Default: before.Default, CertificateIDs: []string{certID(id)}}
	if slices.Equal(before.CertificateIDs, want.CertificateIDs) {
		return previous, nil
	}
	if !before.Default && len(before.CertificateIDs) > 0 {
		// An additional certificate that also serves names the new one
		// does not cover stays: other domains still need it.
		nd, err := l.c.CASDetail(ctx, id)
		if err != nil {
			return previous, fmt.Errorf("%s: %w", l.display, err)
		}
		for _, old := range before.CertificateIDs {
			od, err := l.c.CASDetail(ctx, casID(old))
			if err != nil {
				return previous, fmt.Errorf("%s: %w", l.display, err)
			}
			for _, n := range od.Names() {
				if !slices.ContainsFunc(nd.Names(), func(m string) bool { return m == n || (!strings.HasPrefix(n, "*.") && aliyun.Covers(m, n)) }) {
					want.CertificateIDs = append(want.CertificateIDs, old)
					break
				}
			}
		}
	}
	return previous, d.bind(ctx, l, before, want)
}

// bind makes the binding want: the default certificate replaced, or the
// additional certificates covering Domain replaced by want's (associating
// the new first, so the domain is never left without one), then reads the
// listener back.
func (d *Deployer) bind(ctx context.Context, l *listener, cur, want state) error {
	call := func(action string, ids []string) error {
		if len(ids) == 0 {
			return nil
		}
		params := map[string]string{"ListenerId": l.id}
		for i, id := range ids {
			params[d.v.Param(action, i+1)] = id
		}
		if err := l.c.Call(ctx, d.v.API, true, action, params, nil); err != nil {
			return fmt.Errorf("%s: %w", l.display, err)
		}
		return nil
	}
	if l.cfg.DefaultResource {
		if len(want.CertificateIDs) != 1 {
			return deploy.Permanentf("%s: an HTTPS listener needs exactly one default certificate", l.display)
		}
		if err := call("UpdateListenerAttribute", want.CertificateIDs); err != nil {
			return err
		}
	} else {
		var add, remove []string
		for _, id := range want.CertificateIDs {
			if !slices.Contains(cur.CertificateIDs, id) {
				add = append(add, id)
			}
		}
		for _, id := range cur.CertificateIDs {
			if !slices.Contains(want.CertificateIDs, id) {
				remove = append(remove, id)
			}
		}
		if err := call("AssociateAdditionalCertificatesWithListener", add); err != nil {
			return err
		}
		if err := call("DissociateAdditionalCertificatesFromListener", remove); err != nil {
			return err
		}
	}
	got, err := l.current(ctx, d)
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	slices.Sort(got.CertificateIDs)
	w := slices.Clone(want.CertificateIDs)
	slices.Sort(w)
	if !slices.Equal(got.CertificateIDs, w) {
		return fmt.Errorf("%s: read back after the change: the listener binds %v, want %v", l.display, got.CertificateIDs, w)
	}
	return nil
}

// Rollback restores the recorded certificates; without a record it
// deploys req.Bundle.
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
		id, err := l.c.UploadCAS(ctx, req.Bundle)
		if err != nil {
			return fmt.Errorf("%s: %w", l.display, err)
		}
		want.CertificateIDs = []string{certID(id)}
	}
	cur, err := l.current(ctx, d)
	if err != nil {
		return err
	}
	a, b := slices.Clone(cur.CertificateIDs), slices.Clone(want.CertificateIDs)
	slices.Sort(a)
	slices.Sort(b)
	if slices.Equal(a, b) {
		return nil
	}
	err = d.bind(ctx, l, cur, want)
	if aliyun.Code(err) == "ResourceNotFound.Certificate" && req.Bundle.CertID != 0 && len(want.CertificateIDs) == 1 {
		// The recorded certificate was deleted since: bind the engine's copy.
		l.c.ForgetCAS(aliyun.BundleSHA256(req.Bundle))
		id, uerr := l.c.UploadCAS(ctx, req.Bundle)
		if uerr != nil {
			return fmt.Errorf("%s: %w", l.display, uerr)
		}
		return d.bind(ctx, l, cur, state{Default: want.Default, CertificateIDs: []string{certID(id)}})
	}
	return err
}

type albListener struct {
	ListenerID       string `json:"ListenerId"`
	LoadBalancerID   string `json:"LoadBalancerId"`
	ListenerPort     int
	ListenerProtocol string
}

func (d *Deployer) listeners(ctx context.Context, c *aliyun.Client) ([]albListener, error) {
	var all []albListener
	token := ""
	for {
		var out struct {
			Listeners []albListener
			NextToken string
		}
		params := map[string]string{"ListenerProtocol": d.v.Protocol, "MaxResults": "100"}
		if token != "" {
			params["NextToken"] = token
		}
		if err := c.Call(ctx, d.v.API, true, "ListListeners", params, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Listeners...)
		if out.NextToken == "" || len(out.Listeners) == 0 {
			return all, nil
		}
		token = out.NextToken
	}
}

func (d *Deployer) casInUse(ctx context.Context, c *aliyun.Client) ([]int64, error) {
	ls, err := d.listeners(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.v.Description.CloudProduct, err)
	}
	var ids []int64
	for _, l := range ls {
		certs, err := d.certs(ctx, c, l.ListenerID)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", d.v.Description.CloudProduct, l.ListenerID, err)
		}
		for _, x := range certs {
			ids = append(ids, casID(x.CertificateID))
		}
	}
	return ids, nil
}

// Discover lists the HTTPS listeners of every region the credential's
// Regions names: one resource for each default certificate and one for
// each additional certificate's common name.
func (d *Deployer) Discover(ctx context.Context, t deploy.Target) ([]deploy.Discovered, error) {
	var out []deploy.Discovered
	for _, region := range aliyun.Regions(t) {
		rt := t
		rt.RegionID = region
		c, err := d.hub.Client(rt, d.v.Description.CloudProduct, "")
		if err != nil {
			return nil, err
		}
		ls, err := d.listeners(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("%s: discover %s: %w", d.name, region, err)
		}
		for _, l := range ls {
			certs, err := d.certs(ctx, c, l.ListenerID)
			if err != nil {
				return nil, fmt.Errorf("%s: discover %s: %w", d.name, l.ListenerID, err)
			}
			port := strconv.Itoa(l.ListenerPort)
			lid := l.ListenerID + "@" + port
			for _, x := range certs {
				detail, err := c.CASDetail(ctx, casID(x.CertificateID))
				if err != nil && aliyun.Code(err) != "NotFound.Certificate" {
					return nil, fmt.Errorf("%s: discover %s: %w", d.name, l.ListenerID, err)
				}
				r := deploy.Discovered{CloudProduct: d.v.Description.CloudProduct, RegionID: region, InstanceID: l.LoadBalancerID, ListenerPort: port,
					ListenerID: lid, EnableHTTPS: true, CertSha2: detail.Sha2, DefaultResource: x.IsDefault}
				if x.IsDefault {
					r.Key = region + "/" + l.ListenerID
					r.Config = json.RawMessage(`{"DefaultResource":true}`)
				} else {
					if detail.CommonName == "" {
						continue // a certificate CAS does not know: no domain to name the resource by
					}
					r.Key = region + "/" + l.ListenerID + "/" + detail.CommonName
					r.Domain = detail.CommonName
				}
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// Sweep deletes CAS certificates certfleet uploaded that no ALB listener nor
// any other registered product binds, keeping the newest KeepPrevious.
func (d *Deployer) Sweep(ctx context.Context, t deploy.Target) error {
	var cfg Config
	if err := d.v.Description.DecodeConfig(t.Config, &cfg); err != nil {
		return err
	}
	return d.hub.SweepCASFor(ctx, t, d.v.Description.CloudProduct, cfg.Endpoint, cfg.KeepPrevious)
}

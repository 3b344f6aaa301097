package tencent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
)

func asAPI(err error, ae **APIError) bool { return errors.As(err, ae) }

// binding is what a resource is bound to, as recorded before a change and
// restored by Rollback.
type binding struct {
	// On is false when the resource serves no certificate (CDN HTTPS off,
	// EdgeOne Mode disable).
	On bool
	// Mode is EdgeOne's certificate mode (disable, eofreecert, sslcert).
	Mode   string   `json:",omitempty"`
	CertID string   `json:",omitempty"`
	More   []string `json:",omitempty"` // further EdgeOne certificates
}

// product is what differs between the three: how a resource's binding is
// read and written.
type product interface {
	name() string
	read(ctx context.Context, s *session, t deploy.Target) (binding, error)
	write(ctx context.Context, s *session, t deploy.Target, b binding) error
}

// Deployer is one Tencent Cloud product. It is safe for concurrent use.
type Deployer struct {
	b    *base
	desc deploy.Description
	p    product
}

var (
	_ deploy.Product     = (*Deployer)(nil)
	_ deploy.Rollbacker  = (*Deployer)(nil)
	_ deploy.Snapshotter = (*Deployer)(nil)
	_ deploy.Checker     = (*Deployer)(nil)
	_ deploy.Discoverer  = (*Deployer)(nil)
	_ deploy.Sweeper     = (*Deployer)(nil)
)

// Describe returns the product's Description.
func (d *Deployer) Describe() deploy.Description { return d.desc }

func (d *Deployer) open(t deploy.Target) (*session, error) {
	if err := d.validate(t.Config); err != nil {
		return nil, err
	}
	if t.Domain == "" && !(d.p.name() == "CLB" && clbConfigOf(t).isDefault()) {
		return nil, deploy.Permanentf("Tencent/%s: the resource needs a Domain", d.p.name())
	}
	return d.b.session(t, d.p.name())
}

func (d *Deployer) validate(config json.RawMessage) error {
	switch d.p.name() {
	case "CLB":
		var c CLBConfig
		return CLBDescription.DecodeConfig(config, &c)
	case "TEO":
		var c TEOConfig
		return TEODescription.DecodeConfig(config, &c)
	}
	var c CDNConfig
	return CDNDescription.DecodeConfig(config, &c)
}

// Snapshot records the resource's binding.
func (d *Deployer) Snapshot(ctx context.Context, req deploy.Request) ([]byte, error) {
	s, err := d.open(req.Target)
	if err != nil {
		return nil, err
	}
	b, err := d.p.read(ctx, s, req.Target)
	if err != nil {
		return nil, err
	}
	return json.Marshal(b)
}

// AlreadyDeployed reports whether the resource is bound to an SSL
// certificate holding the bundle.
func (d *Deployer) AlreadyDeployed(ctx context.Context, req deploy.Request) (bool, error) {
	s, err := d.open(req.Target)
	if err != nil {
		return false, err
	}
	return d.holds(ctx, s, req.Target, req.Bundle.Sha2)
}

func (d *Deployer) holds(ctx context.Context, s *session, t deploy.Target, sha string) (bool, error) {
	b, err := d.p.read(ctx, s, t)
	if err != nil || !b.On || b.CertID == "" {
		return false, err
	}
	got, err := s.shaOf(ctx, b.CertID)
	return err == nil && got != "" && got == strings.ToUpper(sha), err
}

// Deploy uploads the bundle to SSL (once per fingerprint), binds it
// through the product's API and reads the binding back.
func (d *Deployer) Deploy(ctx context.Context, req deploy.Request) ([]byte, error) {
	s, err := d.open(req.Target)
	if err != nil {
		return nil, err
	}
	if err := checkBundle(s.product, req.Bundle); err != nil {
		return nil, err
	}
	before, err := d.p.read(ctx, s, req.Target)
	if err != nil {
		return nil, err
	}
	prev, _ := json.Marshal(before)
	id, err := s.ensureUploaded(ctx, req.Bundle)
	if err != nil {
		return prev, err
	}
	if before.On && before.CertID == id && len(before.More) == 0 {
		return prev, nil
	}
	if err := d.p.write(ctx, s, req.Target, binding{On: true, Mode: "sslcert", CertID: id}); err != nil {
		return prev, err
	}
	after, err := d.p.read(ctx, s, req.Target)
	if err != nil {
		return prev, err
	}
	if !after.On || after.CertID != id {
		return prev, fmt.Errorf("%s: %s still shows certificate %q after the change, not %s (certificate %d)", s.product, where(d.p.name(), req.Target), after.CertID, id, req.Bundle.CertID)
	}
	return prev, nil
}

// Rollback rebinds the recorded certificate ID (or turns HTTPS off / back
// to the recorded EdgeOne mode). Without a record it deploys req.Bundle.
func (d *Deployer) Rollback(ctx context.Context, req deploy.Request, previous []byte) error {
	s, err := d.open(req.Target)
	if err != nil {
		return err
	}
	if len(previous) == 0 {
		if req.Bundle.CertID == 0 {
			return nil
		}
		_, err := d.Deploy(ctx, req)
		return err
	}
	var want binding
	if err := json.Unmarshal(previous, &want); err != nil {
		return deploy.Permanentf("%s: the recorded previous state is unreadable: %v", s.product, err)
	}
	now, err := d.p.read(ctx, s, req.Target)
	if err != nil {
		return err
	}
	if now.On == want.On && now.CertID == want.CertID && now.Mode == want.Mode && strings.Join(now.More, ",") == strings.Join(want.More, ",") {
		return nil
	}
	return d.p.write(ctx, s, req.Target, want)
}

func where(product string, t deploy.Target) string {
	if product == "CLB" {
		c := clbConfigOf(t)
		if c.isDefault() {
			return fmt.Sprintf("listener %s of %s", c.ListenerId, c.LoadBalancerId)
		}
		return fmt.Sprintf("domain %s of listener %s of %s", t.Domain, c.ListenerId, c.LoadBalancerId)
	}
	return "domain " + t.Domain
}

// Sweep deletes certfleet's SSL uploads that no CDN domain, CLB listener
// (in the CloudAccess's Regions and the target's) or EdgeOne domain is
// bound to, keeping the newest KeepPrevious.
func (d *Deployer) Sweep(ctx context.Context, t deploy.Target) error {
	s, err := d.open(t)
	if err != nil {
		return err
	}
	var k struct{ KeepPrevious *int }
	json.Unmarshal(t.Config, &k)
	regions := regionsOf(s)
	if d.p.name() == "CLB" {
		if r := clbConfigOf(t).RegionId; r != "" && !contains(regions, r) {
			regions = append(regions, r)
		}
	}
	inUse, err := allBindings(ctx, s, regions)
	if err != nil {
		return err
	}
	_, err = s.sweep(ctx, keepOf(k.KeepPrevious), inUse)
	return err
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func regionsOf(s *session) []string {
	if len(s.ac.Regions) == 0 {
		return []string{"ap-guangzhou"}
	}
	return append([]string(nil), s.ac.Regions...)
}

// allBindings collects the certificate IDs every product binds.
func allBindings(ctx context.Context, s *session, regions []string) (map[string]bool, error) {
	inUse := map[string]bool{}
	domains, err := cdnDomains(ctx, s, nil)
	if err != nil {
		return nil, err
	}
	for _, dm := range domains {
		if dm.Https != nil && dm.Https.CertInfo != nil {
			inUse[dm.Https.CertInfo.CertId] = true
		}
	}
	for _, r := range regions {
		lbs, err := clbLoadBalancers(ctx, s, r)
		if err != nil {
			return nil, err
		}
		for _, lb := range lbs {
			ls, err := clbListeners(ctx, s, r, lb.LoadBalancerId, "")
			if err != nil {
				return nil, err
			}
			for _, l := range ls {
				if l.Certificate != nil {
					inUse[l.Certificate.CertId] = true
				}
				for _, rule := range l.Rules {
					if rule.Certificate != nil {
						inUse[rule.Certificate.CertId] = true
					}
				}
			}
		}
	}
	zones, err := teoZones(ctx, s)
	if err != nil {
		return nil, err
	}
	for _, z := range zones {
		ds, err := teoDomains(ctx, s, z.ZoneId, "")
		if err != nil {
			return nil, err
		}
		for _, dm := range ds {
			for _, c := range dm.Certificate.List {
				inUse[c.CertId] = true
			}
		}
	}
	return inUse, nil
}

// discovered fills what every product's discovery shares.
func discovered(ctx context.Context, s *session, product, key, domain string, b binding, cfg map[string]any) (deploy.Discovered, error) {
	f := deploy.Discovered{Key: key, CloudProduct: product, Domain: domain, EnableHTTPS: b.On}
	if cfg == nil {
		cfg = map[string]any{}
	}
	f.Config, _ = json.Marshal(cfg)
	if b.CertID != "" {
		sha, names, notAfter, _, err := s.certSha(ctx, b.CertID)
		if err != nil {
			return f, err
		}
		f.CertSha2, f.CertEndTime = sha, notAfter
		if f.Domain == "" && len(names) > 0 {
			f.Domain = names[0] // a listener's default: the name its certificate serves
		}
	}
	return f, nil
}

// Discover lists the product's HTTPS-capable resources.
func (d *Deployer) Discover(ctx context.Context, t deploy.Target) ([]deploy.Discovered, error) {
	s, err := d.b.session(t, d.p.name())
	if err != nil {
		return nil, err
	}
	switch d.p.name() {
	case "CLB":
		return clbDiscover(ctx, s, regionsOf(s))
	case "TEO":
		return teoDiscover(ctx, s)
	}
	return cdnDiscover(ctx, s)
}

// poll is the pause between DescribeTaskStatus calls.
func (s *session) poll() time.Duration { return s.b.poll }

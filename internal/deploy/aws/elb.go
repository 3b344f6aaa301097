package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/certfleet/certfleet/internal/deploy"
)

// ELBDescription is aws/ELB's Description.
var ELBDescription = deploy.Description{
	CloudName:    CloudName,
	CloudProduct: "ELB",
	Summary:      "Sets an ALB/NLB HTTPS or TLS listener's default certificate, or adds the Domain's SNI certificate, leaving every other certificate of the listener as it was.",
	Config: []deploy.Field{
		{Name: "ListenerArn", Type: deploy.TypeString, Required: true,
			Help: "The listener's ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/…)."},
		{Name: "RegionId", Type: deploy.TypeString,
			Help: "The listener's region; defaults to the region in ListenerArn."},
		{Name: "DefaultResource", Type: deploy.TypeBoolean, Default: "true",
			Help: "true: replace the listener's default certificate; false: the SNI (additional) certificate serving Domain only."},
		keepField,
	},
	Access: accessSpec,
}

// ELBConfig is an aws/ELB resource's Config.
type ELBConfig struct {
	ListenerArn     string
	RegionId        string
	DefaultResource *bool
	KeepPrevious    *int
}

func (c ELBConfig) isDefault() bool { return c.DefaultResource == nil || *c.DefaultResource }

// ELB deploys to load balancer listeners. It is safe for concurrent use.
type ELB struct{ b *base }

var (
	_ deploy.Product         = (*ELB)(nil)
	_ deploy.Rollbacker      = (*ELB)(nil)
	_ deploy.Snapshotter     = (*ELB)(nil)
	_ deploy.Checker         = (*ELB)(nil)
	_ deploy.ConfigValidator = (*ELB)(nil)
	_ deploy.Discoverer      = (*ELB)(nil)
	_ deploy.Sweeper         = (*ELB)(nil)
)

// NewELB returns the aws/ELB product.
func NewELB(o Options) *ELB { return &ELB{b: newBase(o)} }

// Describe returns ELBDescription.
func (d *ELB) Describe() deploy.Description { return ELBDescription }

// ValidateConfig checks that ListenerArn is a listener ARN and that
// RegionId, when given, matches it.
func (d *ELB) ValidateConfig(config json.RawMessage) error {
	_, err := parseELB(config)
	return err
}

func parseELB(config json.RawMessage) (ELBConfig, error) {
	var c ELBConfig
	if err := ELBDescription.DecodeConfig(config, &c); err != nil {
		return c, err
	}
	if !strings.HasPrefix(c.ListenerArn, "arn:") || !strings.Contains(c.ListenerArn, ":listener/") || regionOf(c.ListenerArn) == "" {
		return c, deploy.Permanentf("aws/ELB: Config key \"ListenerArn\" must be a listener ARN like arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/name/id/id (got %q)", c.ListenerArn)
	}
	if c.RegionId == "" {
		c.RegionId = regionOf(c.ListenerArn)
	} else if c.RegionId != regionOf(c.ListenerArn) {
		return c, deploy.Permanentf("aws/ELB: Config key \"RegionId\" %q is not the region of ListenerArn (%s)", c.RegionId, regionOf(c.ListenerArn))
	}
	return c, nil
}

// elbSnapshot is ELB's previous state.
type elbSnapshot struct {
	// Default is the default certificate's ARN (default mode).
	Default string `json:",omitempty"`
	// SNI are the additional certificates serving Domain (SNI mode).
	SNI []string `json:",omitempty"`
}

// listenerState is what a listener holds.
type listenerState struct {
	Default    string
	Additional []string // non-default certificate ARNs
}

func (s *session) listener(ctx context.Context, arn string) (listenerState, error) {
	var st listenerState
	out, err := s.elb.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{arn}})
	if err != nil {
		return st, classify(err, "ELB DescribeListeners "+arn)
	}
	if len(out.Listeners) == 0 {
		return st, deploy.Permanentf("aws/ELB: listener %s not found", arn)
	}
	l := out.Listeners[0]
	if l.Protocol != elbtypes.ProtocolEnumHttps && l.Protocol != elbtypes.ProtocolEnumTls {
		return st, deploy.Permanentf("aws/ELB: listener %s is %s; only HTTPS and TLS listeners hold certificates", arn, l.Protocol)
	}
	for _, c := range l.Certificates {
		if c.IsDefault == nil || *c.IsDefault || st.Default == "" {
			st.Default = sdk.ToString(c.CertificateArn)
			break
		}
	}
	p := elb.NewDescribeListenerCertificatesPaginator(s.elb, &elb.DescribeListenerCertificatesInput{ListenerArn: sdk.String(arn)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return st, classify(err, "ELB DescribeListenerCertificates "+arn)
		}
		for _, c := range page.Certificates {
			a := sdk.ToString(c.CertificateArn)
			if sdk.ToBool(c.IsDefault) || a == st.Default || slices.Contains(st.Additional, a) {
				continue
			}
			st.Additional = append(st.Additional, a)
		}
	}
	return st, nil
}

// serving returns the additional certificates of st that serve domain.
func (s *session) serving(ctx context.Context, st listenerState, domain string) ([]certInfo, error) {
	var out []certInfo
	for _, a := range st.Additional {
		info, found, err := s.describeCert(ctx, a)
		if err != nil {
			return nil, err
		}
		if found && covers(info.Names, domain) {
			out = append(out, info)
		}
	}
	return out, nil
}

func (d *ELB) open(t deploy.Target) (ELBConfig, *session, error) {
	c, err := parseELB(t.Config)
	if err != nil {
		return c, nil, err
	}
	if !c.isDefault() && t.Domain == "" {
		return c, nil, deploy.Permanentf("aws/ELB: an SNI resource (DefaultResource false) needs a Domain")
	}
	s, err := d.b.session(t, "ELB", c.RegionId)
	return c, s, err
}

// Snapshot records the listener's default certificate ARN, or the ARNs of
// the additional certificates serving Domain.
func (d *ELB) Snapshot(ctx context.Context, req deploy.Request) ([]byte, error) {
	c, s, err := d.open(req.Target)
	if err != nil {
		return nil, err
	}
	st, err := s.listener(ctx, c.ListenerArn)
	if err != nil {
		return nil, err
	}
	var snap elbSnapshot
	if c.isDefault() {
		snap.Default = st.Default
	} else {
		serving, err := s.serving(ctx, st, req.Target.Domain)
		if err != nil {
			return nil, err
		}
		for _, i := range serving {
			snap.SNI = append(snap.SNI, i.Arn)
		}
	}
	return json.Marshal(snap)
}

// AlreadyDeployed reports whether the listener's default certificate (or
// the SNI certificate serving Domain, with no older one of ours beside it)
// is the bundle.
func (d *ELB) AlreadyDeployed(ctx context.Context, req deploy.Request) (bool, error) {
	c, s, err := d.open(req.Target)
	if err != nil {
		return false, err
	}
	return s.elbHolds(ctx, c, req.Target.Domain, req.Bundle.Sha2)
}

func (s *session) elbHolds(ctx context.Context, c ELBConfig, domain, sha string) (bool, error) {
	st, err := s.listener(ctx, c.ListenerArn)
	if err != nil {
		return false, err
	}
	if c.isDefault() {
		info, _, err := s.describeCert(ctx, st.Default)
		return err == nil && info.Sha2 != "" && info.Sha2 == strings.ToUpper(sha), err
	}
	serving, err := s.serving(ctx, st, domain)
	if err != nil {
		return false, err
	}
	var ours *certInfo
	for i := range serving {
		if serving[i].Sha2 == strings.ToUpper(sha) {
			ours = &serving[i]
		}
	}
	if ours == nil {
		return false, nil
	}
	for _, o := range serving {
		if o.Arn != ours.Arn && subset(o.Names, ours.Names) {
			return false, nil // an older certificate Deploy would replace is still there
		}
	}
	return true, nil
}

// Deploy imports the bundle into ACM (once per fingerprint), then either
// makes it the listener's default certificate (ModifyListener; the
// additional certificates are checked afterwards and put back if the call
// removed any) or adds it as an additional certificate and removes the
// additional certificates it replaces: those serving Domain whose every
// name the new certificate also serves, so no other host loses its
// certificate. It reads the listener back and fails unless it shows the
// bundle.
func (d *ELB) Deploy(ctx context.Context, req deploy.Request) ([]byte, error) {
	c, s, err := d.open(req.Target)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := pemParts(s.product, req.Bundle); err != nil {
		return nil, err
	}
	before, err := s.listener(ctx, c.ListenerArn)
	if err != nil {
		return nil, err
	}
	arn, err := s.ensureImported(ctx, req.Bundle)
	if err != nil {
		return nil, err
	}
	var snap elbSnapshot
	if c.isDefault() {
		snap.Default = before.Default
		if err := s.setDefault(ctx, c.ListenerArn, arn, before.Additional); err != nil {
			return nil, err
		}
	} else {
		serving, err := s.serving(ctx, before, req.Target.Domain)
		if err != nil {
			return nil, err
		}
		newInfo, _, err := s.describeCert(ctx, arn)
		if err != nil {
			return nil, err
		}
		var replaced []string
		for _, o := range serving {
			snap.SNI = append(snap.SNI, o.Arn)
			if o.Arn != arn && subset(o.Names, newInfo.Names) {
				replaced = append(replaced, o.Arn)
			}
		}
		if !slices.Contains(before.Additional, arn) {
			if err := s.addCerts(ctx, c.ListenerArn, []string{arn}); err != nil {
				return nil, err
			}
		}
		if err := s.removeCerts(ctx, c.ListenerArn, replaced); err != nil {
			return nil, err
		}
	}
	prev, _ := json.Marshal(snap)
	ok, err := s.elbHolds(ctx, c, req.Target.Domain, req.Bundle.Sha2)
	if err != nil {
		return prev, err
	}
	if !ok {
		return prev, fmt.Errorf("aws/ELB: listener %s does not show certificate %d (%s) after the change", c.ListenerArn, req.Bundle.CertID, arn)
	}
	return prev, nil
}

// setDefault makes arn the default certificate and makes sure the
// additional certificates are still there.
func (s *session) setDefault(ctx context.Context, listener, arn string, additional []string) error {
	_, err := s.elb.ModifyListener(ctx, &elb.ModifyListenerInput{ListenerArn: sdk.String(listener),
		Certificates: []elbtypes.Certificate{{CertificateArn: sdk.String(arn)}}})
	if err != nil {
		return classify(err, "ELB ModifyListener "+listener)
	}
	after, err := s.listener(ctx, listener)
	if err != nil {
		return err
	}
	var missing []string
	for _, a := range additional {
		if a != arn && !slices.Contains(after.Additional, a) {
			missing = append(missing, a)
		}
	}
	return s.addCerts(ctx, listener, missing)
}

func certList(arns []string) []elbtypes.Certificate {
	out := make([]elbtypes.Certificate, len(arns))
	for i, a := range arns {
		out[i] = elbtypes.Certificate{CertificateArn: sdk.String(a)}
	}
	return out
}

func (s *session) addCerts(ctx context.Context, listener string, arns []string) error {
	if len(arns) == 0 {
		return nil
	}
	_, err := s.elb.AddListenerCertificates(ctx, &elb.AddListenerCertificatesInput{ListenerArn: sdk.String(listener), Certificates: certList(arns)})
	return classify(err, "ELB AddListenerCertificates "+listener)
}

func (s *session) removeCerts(ctx context.Context, listener string, arns []string) error {
	if len(arns) == 0 {
		return nil
	}
	_, err := s.elb.RemoveListenerCertificates(ctx, &elb.RemoveListenerCertificatesInput{ListenerArn: sdk.String(listener), Certificates: certList(arns)})
	return classify(err, "ELB RemoveListenerCertificates "+listener)
}

// Rollback restores the recorded state: the default certificate ARN, or
// the SNI certificates serving Domain (adding back the recorded ones and
// removing certfleet's own imports serving Domain that were not there).
// Without a record it deploys req.Bundle, if any.
func (d *ELB) Rollback(ctx context.Context, req deploy.Request, previous []byte) error {
	c, s, err := d.open(req.Target)
	if err != nil {
		return err
	}
	var snap elbSnapshot
	if err := decodeSnapshot("ELB", previous, &snap); err != nil {
		return err
	}
	st, err := s.listener(ctx, c.ListenerArn)
	if err != nil {
		return err
	}
	if c.isDefault() {
		want := snap.Default
		if want == "" {
			if req.Bundle.CertID == 0 {
				return nil // nothing recorded, nothing to restore: a listener always has a default
			}
			if want, err = s.ensureImported(ctx, req.Bundle); err != nil {
				return err
			}
		}
		if st.Default == want {
			return nil
		}
		return s.setDefault(ctx, c.ListenerArn, want, st.Additional)
	}
	serving, err := s.serving(ctx, st, req.Target.Domain)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, a := range snap.SNI {
		want[a] = true
	}
	if len(previous) == 0 && req.Bundle.CertID != 0 {
		arn, err := s.ensureImported(ctx, req.Bundle)
		if err != nil {
			return err
		}
		want[arn] = true
	}
	var add, remove []string
	for _, a := range sortedKeys(want) {
		if !slices.Contains(st.Additional, a) {
			add = append(add, a)
		}
	}
	for _, o := range serving {
		if want[o.Arn] {
			continue
		}
		tags, err := s.tags(ctx, o.Arn)
		if err != nil {
			return err
		}
		if tags[tagSha256] != "" {
			remove = append(remove, o.Arn)
		}
	}
	if err := s.addCerts(ctx, c.ListenerArn, add); err != nil {
		return err
	}
	return s.removeCerts(ctx, c.ListenerArn, remove)
}

// Sweep deletes certfleet's unused imports in the target's region (see
// session.sweep), counting as used every certificate of every listener of
// the region's load balancers.
func (d *ELB) Sweep(ctx context.Context, t deploy.Target) error {
	c, s, err := d.open(t)
	if err != nil {
		return err
	}
	_, err = sweepRegion(ctx, s, keepOf(c.KeepPrevious))
	return err
}

func keepOf(k *int) int {
	if k == nil {
		return 1
	}
	return *k
}

// sweepRegion collects the region's bindings (listeners; distributions too
// in us-east-1, where CloudFront's certificates live) and sweeps.
func sweepRegion(ctx context.Context, s *session, keep int) ([]string, error) {
	inUse := map[string]bool{}
	lbs, err := s.loadBalancers(ctx)
	if err != nil {
		return nil, err
	}
	for _, lb := range lbs {
		ls, err := s.listeners(ctx, sdk.ToString(lb.LoadBalancerArn))
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			if l.Protocol != elbtypes.ProtocolEnumHttps && l.Protocol != elbtypes.ProtocolEnumTls {
				continue
			}
			st, err := s.listener(ctx, sdk.ToString(l.ListenerArn))
			if err != nil {
				return nil, err
			}
			inUse[st.Default] = true
			for _, a := range st.Additional {
				inUse[a] = true
			}
		}
	}
	if s.region == cloudFrontRegion {
		dists, err := s.distributions(ctx)
		if err != nil {
			return nil, err
		}
		for _, dd := range dists {
			if vc := dd.ViewerCertificate; vc != nil && vc.ACMCertificateArn != nil {
				inUse[*vc.ACMCertificateArn] = true
			}
		}
	}
	return s.sweep(ctx, keep, inUse)
}

func (s *session) loadBalancers(ctx context.Context) ([]elbtypes.LoadBalancer, error) {
	var out []elbtypes.LoadBalancer
	p := elb.NewDescribeLoadBalancersPaginator(s.elb, &elb.DescribeLoadBalancersInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(err, "ELB DescribeLoadBalancers in "+s.region)
		}
		out = append(out, page.LoadBalancers...)
	}
	return out, nil
}

func (s *session) listeners(ctx context.Context, lb string) ([]elbtypes.Listener, error) {
	var out []elbtypes.Listener
	p := elb.NewDescribeListenersPaginator(s.elb, &elb.DescribeListenersInput{LoadBalancerArn: sdk.String(lb)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(err, "ELB DescribeListeners "+lb)
		}
		out = append(out, page.Listeners...)
	}
	return out, nil
}

// Discover lists the HTTPS and TLS listeners of every load balancer in the
// CloudAccess's Regions: one resource for each listener's default
// certificate, and one for each additional certificate (its first name as
// Domain).
func (d *ELB) Discover(ctx context.Context, t deploy.Target) ([]deploy.Discovered, error) {
	regions, err := regionsOf(t)
	if err != nil {
		return nil, err
	}
	var out []deploy.Discovered
	for _, region := range regions {
		s, err := d.b.session(t, "ELB", region)
		if err != nil {
			return nil, err
		}
		lbs, err := s.loadBalancers(ctx)
		if err != nil {
			return nil, err
		}
		for _, lb := range lbs {
			ls, err := s.listeners(ctx, sdk.ToString(lb.LoadBalancerArn))
			if err != nil {
				return nil, err
			}
			sort.Slice(ls, func(i, j int) bool { return sdk.ToString(ls[i].ListenerArn) < sdk.ToString(ls[j].ListenerArn) })
			for _, l := range ls {
				if l.Protocol != elbtypes.ProtocolEnumHttps && l.Protocol != elbtypes.ProtocolEnumTls {
					continue
				}
				larn := sdk.ToString(l.ListenerArn)
				st, err := s.listener(ctx, larn)
				if err != nil {
					return nil, err
				}
				one := func(arn string, def bool) error {
					info, _, err := s.describeCert(ctx, arn)
					if err != nil {
						return err
					}
					domain := ""
					if len(info.Names) > 0 {
						domain = info.Names[0]
					}
					key := larn + "/default"
					if !def {
						key = larn + "/" + domain
					}
					cfg, _ := json.Marshal(map[string]any{"ListenerArn": larn, "RegionId": region, "DefaultResource": def})
					out = append(out, deploy.Discovered{
						Key: key, CloudProduct: "ELB", Domain: domain, RegionID: region,
						InstanceID: sdk.ToString(lb.LoadBalancerName), ListenerPort: fmt.Sprint(sdk.ToInt32(l.Port)),
						ListenerID: larn, Config: cfg, DefaultResource: def, EnableHTTPS: true,
						CertSha2: info.Sha2, CertEndTime: info.NotAfter,
					})
					return nil
				}
				if st.Default != "" {
					if err := one(st.Default, true); err != nil {
						return nil, err
					}
				}
				for _, a := range st.Additional {
					if err := one(a, false); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return out, nil
}

// regionsOf returns the CloudAccess's Regions (default us-east-1).
func regionsOf(t deploy.Target) ([]string, error) {
	if t.Access == nil {
		return nil, deploy.Permanentf("aws: discovery needs a CloudAccess")
	}
	ac, err := decodeAccess(t.Access)
	if err != nil {
		return nil, err
	}
	if len(ac.Regions) == 0 {
		return []string{"us-east-1"}, nil
	}
	return ac.Regions, nil
}

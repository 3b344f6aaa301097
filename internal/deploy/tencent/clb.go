package tencent

import (
	"context"
	"fmt"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
)

// CLBDescription is Tencent/CLB's Description.
var CLBDescription = deploy.Description{
	CloudName:    CloudName,
	CloudProduct: "CLB",
	Summary:      "Sets a CLB HTTPS listener's certificate, or the certificate of one SNI domain of it (the resource's Domain), leaving every other binding as it was.",
	Config: []deploy.Field{
		{Name: "RegionId", Type: deploy.TypeString, Required: true, Help: "The load balancer's region (ap-guangzhou)."},
		{Name: "LoadBalancerId", Type: deploy.TypeString, Required: true, Help: "The load balancer's ID (lb-…)."},
		{Name: "ListenerId", Type: deploy.TypeString, Required: true, Help: "The HTTPS listener's ID (lbl-…)."},
		{Name: "DefaultResource", Type: deploy.TypeBoolean, Default: "true",
			Help: "true: the listener's own certificate (ModifyListener); false: the certificate of the listener's SNI domain Domain only (ModifyDomainAttributes)."},
		keepField,
	},
	Access: accessSpec,
}

// CLBConfig is a CLB resource's Config.
type CLBConfig struct {
	RegionId        string
	LoadBalancerId  string
	ListenerId      string
	DefaultResource *bool
	KeepPrevious    *int
}

func (c CLBConfig) isDefault() bool { return c.DefaultResource == nil || *c.DefaultResource }

func clbConfigOf(t deploy.Target) CLBConfig {
	var c CLBConfig
	CLBDescription.DecodeConfig(t.Config, &c)
	return c
}

// NewCLB returns the Tencent/CLB product.
func NewCLB(o Options) *Deployer {
	return &Deployer{b: newBase(o), desc: CLBDescription, p: clbProduct{}}
}

type clbProduct struct{}

func (clbProduct) name() string { return "CLB" }

type clbCert struct {
	SSLMode string
	CertId  string
}

type clbListener struct {
	ListenerId  string
	Protocol    string
	Port        int
	SniSwitch   int
	Certificate *clbCert
	Rules       []struct {
		LocationId  string
		Domain      string
		Url         string
		Certificate *clbCert
	}
}

type clbLB struct {
	LoadBalancerId   string
	LoadBalancerName string
}

func clbLoadBalancers(ctx context.Context, s *session, region string) ([]clbLB, error) {
	var all []clbLB
	for offset := 0; ; {
		var out struct {
			TotalCount      int
			LoadBalancerSet []clbLB
		}
		if err := s.call(ctx, "clb", "DescribeLoadBalancers", region, map[string]any{"Offset": offset, "Limit": 100}, &out); err != nil {
			return nil, err
		}
		all = append(all, out.LoadBalancerSet...)
		offset += len(out.LoadBalancerSet)
		if len(out.LoadBalancerSet) == 0 || offset >= out.TotalCount {
			return all, nil
		}
	}
}

// clbListeners returns the load balancer's HTTPS listeners (only id, when given).
func clbListeners(ctx context.Context, s *session, region, lb, id string) ([]clbListener, error) {
	params := map[string]any{"LoadBalancerId": lb, "Protocol": "HTTPS"}
	if id != "" {
		params["ListenerIds"] = []string{id}
	}
	var out struct{ Listeners []clbListener }
	if err := s.call(ctx, "clb", "DescribeListeners", region, params, &out); err != nil {
		return nil, err
	}
	return out.Listeners, nil
}

func (clbProduct) listener(ctx context.Context, s *session, c CLBConfig) (clbListener, error) {
	ls, err := clbListeners(ctx, s, c.RegionId, c.LoadBalancerId, c.ListenerId)
	if err != nil {
		return clbListener{}, err
	}
	for _, l := range ls {
		if l.ListenerId == c.ListenerId {
			return l, nil
		}
	}
	return clbListener{}, deploy.Permanentf("Tencent/CLB: %s has no HTTPS listener %s in %s", c.LoadBalancerId, c.ListenerId, c.RegionId)
}

func (p clbProduct) read(ctx context.Context, s *session, t deploy.Target) (binding, error) {
	c := clbConfigOf(t)
	l, err := p.listener(ctx, s, c)
	if err != nil {
		return binding{}, err
	}
	if c.isDefault() {
		if l.Certificate == nil || l.Certificate.CertId == "" {
			return binding{}, nil
		}
		return binding{On: true, CertID: l.Certificate.CertId}, nil
	}
	for _, r := range l.Rules {
		if r.Domain == t.Domain {
			if r.Certificate == nil || r.Certificate.CertId == "" {
				return binding{}, nil
			}
			return binding{On: true, CertID: r.Certificate.CertId}, nil
		}
	}
	return binding{}, deploy.Permanentf("Tencent/CLB: listener %s of %s has no domain %s; create its forwarding rule first", c.ListenerId, c.LoadBalancerId, t.Domain)
}

func (p clbProduct) write(ctx context.Context, s *session, t deploy.Target, b binding) error {
	c := clbConfigOf(t)
	if !b.On || b.CertID == "" {
		return deploy.Permanentf("Tencent/CLB: %s held no certificate before; an HTTPS listener cannot be left without one, so there is nothing to roll back to", where("CLB", t))
	}
	params := map[string]any{"LoadBalancerId": c.LoadBalancerId, "ListenerId": c.ListenerId,
		"Certificate": map[string]any{"SSLMode": "UNIDIRECTIONAL", "CertId": b.CertID}}
	action := "ModifyListener"
	if !c.isDefault() {
		action = "ModifyDomainAttributes"
		params["Domain"] = t.Domain
	}
	var out struct{ RequestId string }
	if err := s.call(ctx, "clb", action, c.RegionId, params, &out); err != nil {
		return err
	}
	return waitTask(ctx, s, c.RegionId, action, out.RequestId)
}

// waitTask polls an asynchronous CLB change (its RequestId is the task ID)
// until it succeeds or fails; at most two minutes.
func waitTask(ctx context.Context, s *session, region, action, task string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var out struct{ Status int }
		if err := s.call(ctx, "clb", "DescribeTaskStatus", region, map[string]any{"TaskId": task}, &out); err != nil {
			return err
		}
		switch out.Status {
		case 0:
			return nil
		case 1:
			return fmt.Errorf("Tencent/CLB: %s task %s failed (DescribeTaskStatus 1)", action, task)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Tencent/CLB: %s task %s still running after 2 minutes", action, task)
		}
		if err := wait(ctx, s.poll()); err != nil {
			return fmt.Errorf("Tencent/CLB: waiting for %s task %s: %w", action, task, err)
		}
	}
}

func clbDiscover(ctx context.Context, s *session, regions []string) ([]deploy.Discovered, error) {
	var out []deploy.Discovered
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
				add := func(key, domain string, cert *clbCert, def bool) error {
					b := binding{}
					if cert != nil && cert.CertId != "" {
						b = binding{On: true, CertID: cert.CertId}
					}
					f, err := discovered(ctx, s, "CLB", key, domain, b, map[string]any{"RegionId": r,
						"LoadBalancerId": lb.LoadBalancerId, "ListenerId": l.ListenerId, "DefaultResource": def})
					if err != nil {
						return err
					}
					f.RegionID, f.InstanceID, f.ListenerID = r, lb.LoadBalancerId, l.ListenerId
					f.ListenerPort, f.DefaultResource = fmt.Sprint(l.Port), def
					out = append(out, f)
					return nil
				}
				if l.SniSwitch == 0 {
					if err := add(lb.LoadBalancerId+"/"+l.ListenerId+"/default", "", l.Certificate, true); err != nil {
						return nil, err
					}
					continue
				}
				seen := map[string]bool{}
				for _, rule := range l.Rules {
					if seen[rule.Domain] {
						continue
					}
					seen[rule.Domain] = true
					if err := add(lb.LoadBalancerId+"/"+l.ListenerId+"/"+rule.Domain, rule.Domain, rule.Certificate, false); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return out, nil
}

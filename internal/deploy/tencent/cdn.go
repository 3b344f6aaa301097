package tencent

import (
	"context"

	"github.com/certfleet/certfleet/internal/deploy"
)

// CDNDescription is Tencent/TencentCDN's Description.
var CDNDescription = deploy.Description{
	CloudName:    CloudName,
	CloudProduct: "TencentCDN",
	Summary:      "Turns HTTPS on for a Tencent CDN domain (the resource's Domain) with the certificate, uploaded once to Tencent SSL.",
	Config:       []deploy.Field{keepField},
	Access:       accessSpec,
}

// CDNConfig is a TencentCDN resource's Config.
type CDNConfig struct {
	KeepPrevious *int
}

// NewCDN returns the Tencent/TencentCDN product.
func NewCDN(o Options) *Deployer {
	return &Deployer{b: newBase(o), desc: CDNDescription, p: cdnProduct{}}
}

type cdnProduct struct{}

func (cdnProduct) name() string { return "TencentCDN" }

type cdnHTTPS struct {
	Switch   string
	CertInfo *struct {
		CertId     string
		ExpireTime string `json:",omitempty"`
	} `json:",omitempty"`
}

type cdnDomain struct {
	Domain     string
	ResourceId string
	Status     string
	Https      *cdnHTTPS
}

// cdnDomains returns the domains named (all of them when names is empty).
func cdnDomains(ctx context.Context, s *session, names []string) ([]cdnDomain, error) {
	var all []cdnDomain
	for offset := 0; ; {
		params := map[string]any{"Offset": offset, "Limit": 100}
		if len(names) > 0 {
			params["Filters"] = []map[string]any{{"Name": "domain", "Value": names}}
		}
		var out struct {
			Domains     []cdnDomain
			TotalNumber int
		}
		if err := s.call(ctx, "cdn", "DescribeDomainsConfig", "", params, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Domains...)
		offset += len(out.Domains)
		if len(out.Domains) == 0 || offset >= out.TotalNumber {
			return all, nil
		}
	}
}

func (cdnProduct) read(ctx context.Context, s *session, t deploy.Target) (binding, error) {
	ds, err := cdnDomains(ctx, s, []string{t.Domain})
	if err != nil {
		return binding{}, err
	}
	for _, d := range ds {
		if d.Domain == t.Domain {
			return cdnBinding(d), nil
		}
	}
	return binding{}, deploy.Permanentf("Tencent/TencentCDN: domain %s is not a CDN domain of this account", t.Domain)
}

func cdnBinding(d cdnDomain) binding {
	b := binding{}
	if d.Https != nil {
		b.On = d.Https.Switch == "on"
		if d.Https.CertInfo != nil {
			b.CertID = d.Https.CertInfo.CertId
		}
	}
	return b
}

func (cdnProduct) write(ctx context.Context, s *session, t deploy.Target, b binding) error {
	https := map[string]any{"Switch": "off"}
	if b.On {
		https = map[string]any{"Switch": "on", "CertInfo": map[string]any{"CertId": b.CertID}}
	}
	return s.call(ctx, "cdn", "UpdateDomainConfig", "", map[string]any{"Domain": t.Domain, "Https": https}, nil)
}

func cdnDiscover(ctx context.Context, s *session) ([]deploy.Discovered, error) {
	ds, err := cdnDomains(ctx, s, nil)
	if err != nil {
		return nil, err
	}
	var out []deploy.Discovered
	for _, d := range ds {
		f, err := discovered(ctx, s, "TencentCDN", d.Domain, d.Domain, cdnBinding(d), nil)
		if err != nil {
			return nil, err
		}
		f.InstanceID = d.ResourceId
		out = append(out, f)
	}
	return out, nil
}

package tencent

import (
	"context"

	"github.com/certfleet/certfleet/internal/deploy"
)

// TEODescription is Tencent/TEO's Description.
var TEODescription = deploy.Description{
	CloudName:    CloudName,
	CloudProduct: "TEO",
	Summary:      "Sets the certificate of an EdgeOne acceleration domain (the resource's Domain) to the certificate, uploaded once to Tencent SSL.",
	Config: []deploy.Field{
		{Name: "ZoneId", Type: deploy.TypeString, Required: true, Help: "The EdgeOne site (zone) the domain belongs to (zone-…)."},
		keepField,
	},
	Access: accessSpec,
}

// TEOConfig is a TEO resource's Config.
type TEOConfig struct {
	ZoneId       string
	KeepPrevious *int
}

// NewTEO returns the Tencent/TEO product.
func NewTEO(o Options) *Deployer {
	return &Deployer{b: newBase(o), desc: TEODescription, p: teoProduct{}}
}

type teoProduct struct{}

func (teoProduct) name() string { return "TEO" }

type teoDomain struct {
	ZoneId       string
	DomainName   string
	DomainStatus string
	Certificate  struct {
		Mode string
		List []struct {
			CertId     string
			Alias      string `json:",omitempty"`
			ExpireTime string `json:",omitempty"`
		}
	}
}

type teoZone struct{ ZoneId, ZoneName string }

func teoZones(ctx context.Context, s *session) ([]teoZone, error) {
	var all []teoZone
	for offset := 0; ; {
		var out struct {
			TotalCount int
			Zones      []teoZone
		}
		if err := s.call(ctx, "teo", "DescribeZones", "", map[string]any{"Offset": offset, "Limit": 100}, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Zones...)
		offset += len(out.Zones)
		if len(out.Zones) == 0 || offset >= out.TotalCount {
			return all, nil
		}
	}
}

// teoDomains returns the zone's acceleration domains (only name, when given).
func teoDomains(ctx context.Context, s *session, zone, name string) ([]teoDomain, error) {
	var all []teoDomain
	for offset := 0; ; {
		params := map[string]any{"ZoneId": zone, "Offset": offset, "Limit": 200}
		if name != "" {
			params["Filters"] = []map[string]any{{"Name": "domain-name", "Values": []string{name}}}
		}
		var out struct {
			TotalCount          int
			AccelerationDomains []teoDomain
		}
		if err := s.call(ctx, "teo", "DescribeAccelerationDomains", "", params, &out); err != nil {
			return nil, err
		}
		all = append(all, out.AccelerationDomains...)
		offset += len(out.AccelerationDomains)
		if len(out.AccelerationDomains) == 0 || offset >= out.TotalCount {
			return all, nil
		}
	}
}

func teoBinding(d teoDomain) binding {
	b := binding{Mode: d.Certificate.Mode, On: d.Certificate.Mode == "sslcert"}
	for i, c := range d.Certificate.List {
		if i == 0 {
			b.CertID = c.CertId
		} else {
			b.More = append(b.More, c.CertId)
		}
	}
	if !b.On {
		b.CertID, b.More = "", nil
	}
	return b
}

func (teoProduct) read(ctx context.Context, s *session, t deploy.Target) (binding, error) {
	var c TEOConfig
	if err := TEODescription.DecodeConfig(t.Config, &c); err != nil {
		return binding{}, err
	}
	ds, err := teoDomains(ctx, s, c.ZoneId, t.Domain)
	if err != nil {
		return binding{}, err
	}
	for _, d := range ds {
		if d.DomainName == t.Domain {
			return teoBinding(d), nil
		}
	}
	return binding{}, deploy.Permanentf("Tencent/TEO: zone %s has no acceleration domain %s", c.ZoneId, t.Domain)
}

func (teoProduct) write(ctx context.Context, s *session, t deploy.Target, b binding) error {
	var c TEOConfig
	if err := TEODescription.DecodeConfig(t.Config, &c); err != nil {
		return err
	}
	params := map[string]any{"ZoneId": c.ZoneId, "Hosts": []string{t.Domain}}
	switch {
	case b.On:
		certs := []map[string]any{{"CertId": b.CertID}}
		for _, m := range b.More {
			certs = append(certs, map[string]any{"CertId": m})
		}
		params["Mode"], params["ServerCertInfo"] = "sslcert", certs
	case b.Mode != "":
		params["Mode"] = b.Mode
	default:
		params["Mode"] = "disable"
	}
	return s.call(ctx, "teo", "ModifyHostsCertificate", "", params, nil)
}

func teoDiscover(ctx context.Context, s *session) ([]deploy.Discovered, error) {
	zones, err := teoZones(ctx, s)
	if err != nil {
		return nil, err
	}
	var out []deploy.Discovered
	for _, z := range zones {
		ds, err := teoDomains(ctx, s, z.ZoneId, "")
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			f, err := discovered(ctx, s, "TEO", z.ZoneId+"/"+d.DomainName, d.DomainName, teoBinding(d), map[string]any{"ZoneId": z.ZoneId})
			if err != nil {
				return nil, err
			}
			f.InstanceID = z.ZoneId
			out = append(out, f)
		}
	}
	return out, nil
}

package aliyunfake

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// WAFInstance is a WAF 3.0 instance; an account has at most one per region
// (cn-hangzhou for the Chinese mainland, ap-southeast-1 outside it).
type WAFInstance struct {
	ID, Region, Edition string
}

// WAFListen is a WAF domain's listen configuration, as DescribeDomainDetail
// answers it and ModifyDomain takes it (a JSON string).
type WAFListen struct {
	CertID             string   `json:"CertId,omitempty"`
	CipherSuite        int      `json:",omitempty"`
	CustomCiphers      []string `json:",omitempty"`
	EnableTLSv3        bool
	ExclusiveIP        bool  `json:"ExclusiveIp"`
	FocusHTTPS         bool  `json:"FocusHttps"`
	HTTP2Enabled       bool  `json:"Http2Enabled"`
	HTTPPorts          []int `json:"HttpPorts"`
	HTTPSPorts         []int `json:"HttpsPorts"`
	IPv6Enabled        bool
	ProtectionResource string   `json:",omitempty"`
	TLSVersion         string   `json:",omitempty"`
	XffHeaderMode      int      `json:",omitempty"`
	XffHeaders         []string `json:",omitempty"`
	SM2Enabled         bool
	SM2CertID          string `json:"SM2CertId,omitempty"`
}

// WAFHeader is one request header a WAF domain adds toward the origin.
type WAFHeader struct{ Key, Value string }

// WAFRedirect is a WAF domain's forwarding configuration. Backends are
// strings here and in ModifyDomain, but objects {"Backend": "…"} in
// DescribeDomainDetail's answer (as the reference documents both).
type WAFRedirect struct {
	Backends          []string
	BackupBackends    []string `json:",omitempty"`
	Loadbalance       string
	FocusHTTPBackend  bool `json:"FocusHttpBackend"`
	SniEnabled        bool
	SniHost           string `json:",omitempty"`
	Keepalive         bool
	KeepaliveRequests int `json:",omitempty"`
	KeepaliveTimeout  int `json:",omitempty"`
	Retry             bool
	ConnectTimeout    int         `json:",omitempty"`
	ReadTimeout       int         `json:",omitempty"`
	WriteTimeout      int         `json:",omitempty"`
	XffProto          bool        `json:",omitempty"`
	RequestHeaders    []WAFHeader `json:",omitempty"`
}

// WAFDomain is a domain a WAF instance protects (CNAME access).
type WAFDomain struct {
	InstanceID, Domain string
	AccessType         string
	Listen             WAFListen
	Redirect           WAFRedirect
	// Modified counts ModifyDomain calls that changed it.
	Modified int
}

func (f *Fake) wafInit() {
	if f.wafInstances == nil {
		f.wafInstances = map[string]*WAFInstance{}
		f.wafDomains = map[string]*WAFDomain{}
	}
}

// AddWAFInstance adds a WAF 3.0 instance in region.
func (f *Fake) AddWAFInstance(region, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wafInit()
	f.wafInstances[id] = &WAFInstance{ID: id, Region: region, Edition: "Enterprise"}
}

// AddWAFDomain adds (or replaces) a domain of instance with d's
// configuration; d.Listen.CertID is "<CAS CertId>-cn-hangzhou" or "".
func (f *Fake) AddWAFDomain(instance string, d WAFDomain) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wafInit()
	d.InstanceID = instance
	if d.AccessType == "" {
		d.AccessType = "share"
	}
	f.wafDomains[instance+"/"+d.Domain] = &d
}

// WAF returns a copy of a domain of instance (zero when it has none).
func (f *Fake) WAF(instance, domain string) WAFDomain {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.wafDomains[instance+"/"+domain]
	if d == nil {
		return WAFDomain{}
	}
	var c WAFDomain
	b, _ := json.Marshal(d)
	json.Unmarshal(b, &c)
	return c
}

func (f *Fake) wafInstance(c *call) (*WAFInstance, *apiError) {
	if aerr := required(c, "InstanceId"); aerr != nil {
		return nil, aerr
	}
	f.wafInit()
	in := f.wafInstances[c.get("InstanceId")]
	if in == nil || in.Region != c.get("RegionId") {
		return nil, errorf(404, "Instance.NotFound", "The specified instance %s does not exist in region %s.", c.get("InstanceId"), c.get("RegionId"))
	}
	return in, nil
}

func (f *Fake) wafDomain(c *call) (*WAFDomain, *apiError) {
	in, aerr := f.wafInstance(c)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := required(c, "Domain"); aerr != nil {
		return nil, aerr
	}
	d := f.wafDomains[in.ID+"/"+c.get("Domain")]
	if d == nil {
		return nil, errorf(404, "Domain.NotFound", "The domain %s is not added to the WAF instance.", c.get("Domain"))
	}
	return d, nil
}

func (f *Fake) wafInUse(id int64) bool {
	for _, d := range f.wafDomains {
		if d.Listen.CertID != "" && casIDOfALB(d.Listen.CertID) == id {
			return true
		}
	}
	return false
}

func wafCertDetail(f *Fake, certID string) map[string]any {
	x := f.cas[casIDOfALB(certID)]
	if x == nil {
		return nil
	}
	return map[string]any{"Id": certID, "Name": x.Name, "CommonName": x.CommonName, "Sans": x.Sans,
		"StartTime": x.NotAfter.AddDate(0, 0, -90).UnixMilli(), "EndTime": x.NotAfter.UnixMilli()}
}

func init() {
	const v = "2021-10-01"
	actions[v+"/DescribeInstance"] = func(f *Fake, c *call) (any, *apiError) {
		f.wafInit()
		for _, in := range f.wafInstances {
			if in.Region == c.get("RegionId") {
				return map[string]any{"InstanceId": in.ID, "RegionId": in.Region, "Edition": in.Edition, "Status": 1, "PayType": "Subscription",
					"StartTime": f.now().AddDate(0, -1, 0).UnixMilli(), "EndTime": f.now().AddDate(1, 0, 0).UnixMilli()}, nil
			}
		}
		return map[string]any{}, nil // no instance in the region: the fields are absent
	}
	actions[v+"/DescribeDomains"] = func(f *Fake, c *call) (any, *apiError) {
		in, aerr := f.wafInstance(c)
		if aerr != nil {
			return nil, aerr
		}
		var names []string
		for _, d := range f.wafDomains {
			if d.InstanceID == in.ID && (c.get("Domain") == "" || strings.Contains(d.Domain, c.get("Domain"))) {
				names = append(names, d.Domain)
			}
		}
		sort.Strings(names)
		size := atoi(c.get("PageSize"), 10)
		if size > 50 {
			return nil, errorf(400, "InvalidParameter", "The specified PageSize is out of range (1-50).")
		}
		number := atoi(c.get("PageNumber"), 1)
		list := []map[string]any{}
		for _, name := range page(names, number, size) {
			d := f.wafDomains[in.ID+"/"+name]
			list = append(list, map[string]any{"Domain": d.Domain, "DomainId": d.Domain + "-waf", "Cname": "fake" + strconv.Itoa(len(d.Domain)) + ".waf.example",
				"Status": 1, "ListenPorts": map[string]any{"Http": nonNil(d.Listen.HTTPPorts), "Https": nonNil(d.Listen.HTTPSPorts)},
				"Backeds": map[string]any{"Http": backendObjs(d.Redirect.Backends), "Https": backendObjs(d.Redirect.Backends)}})
		}
		return map[string]any{"Domains": list, "TotalCount": len(names)}, nil
	}
	actions[v+"/DescribeDomainDetail"] = func(f *Fake, c *call) (any, *apiError) {
		d, aerr := f.wafDomain(c)
		if aerr != nil {
			return nil, aerr
		}
		var redirect map[string]any
		b, _ := json.Marshal(d.Redirect)
		json.Unmarshal(b, &redirect)
		objs := func(ss []string) []map[string]string {
			out := []map[string]string{}
			for _, s := range ss {
				out = append(out, map[string]string{"Backend": s})
			}
			return out
		}
		redirect["Backends"] = objs(d.Redirect.Backends)
		if len(d.Redirect.BackupBackends) > 0 {
			redirect["BackupBackends"] = objs(d.Redirect.BackupBackends)
		}
		out := map[string]any{"Domain": d.Domain, "DomainId": d.Domain + "-waf", "Status": 1, "Cname": "fake.waf.example",
			"Listen": d.Listen, "Redirect": redirect}
		if d.Listen.CertID != "" {
			if cd := wafCertDetail(f, d.Listen.CertID); cd != nil {
				out["CertDetail"] = cd
			}
		}
		return out, nil
	}
	actions[v+"/ModifyDomain"] = func(f *Fake, c *call) (any, *apiError) {
		if aerr := required(c, "Listen", "Redirect"); aerr != nil {
			return nil, aerr
		}
		d, aerr := f.wafDomain(c)
		if aerr != nil {
			return nil, aerr
		}
		var listen WAFListen
		var redirect WAFRedirect
		for _, p := range []struct {
			name string
			into any
		}{{"Listen", &listen}, {"Redirect", &redirect}} {
			dec := json.NewDecoder(bytes.NewReader([]byte(c.get(p.name))))
			dec.DisallowUnknownFields()
			if err := dec.Decode(p.into); err != nil {
				return nil, errorf(400, "InvalidParameter", "The specified parameter %s is invalid: %v.", p.name, err)
			}
		}
		if len(listen.HTTPPorts) == 0 && len(listen.HTTPSPorts) == 0 {
			return nil, errorf(400, "InvalidParameter", "The listen configuration must have an HTTP or an HTTPS port.")
		}
		if len(redirect.Backends) == 0 {
			return nil, errorf(400, "InvalidParameter", "The redirect configuration must have a backend.")
		}
		if len(listen.HTTPSPorts) > 0 {
			if listen.CertID == "" {
				return nil, errorf(400, "InvalidParameter", "CertId is required when HttpsPorts is set.")
			}
			if !strings.HasSuffix(listen.CertID, "-cn-hangzhou") || f.cas[casIDOfALB(listen.CertID)] == nil {
				return nil, errorf(404, "Certificate.NotFound", "The specified certificate %s does not exist.", listen.CertID)
			}
		}
		if at := c.get("AccessType"); at != "" {
			d.AccessType = at
		}
		d.Listen, d.Redirect = listen, redirect
		d.Modified++
		return map[string]any{"DomainInfo": map[string]any{"Domain": d.Domain, "DomainId": d.Domain + "-waf", "Cname": "fake.waf.example"}}, nil
	}
}

func nonNil(x []int) []int {
	if x == nil {
		return []int{}
	}
	return x
}

func backendObjs(ss []string) []map[string]string {
	out := []map[string]string{}
	for _, s := range ss {
		out = append(out, map[string]string{"Backend": s})
	}
	return out
}

package aliyunfake

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CASCert is a certificate in the account's certificate service.
type CASCert struct {
	ID          int64
	Name        string
	CertPEM     string
	Sha2        string // upper-case hex SHA-256 of the leaf
	CommonName  string
	Sans        []string
	NotAfter    time.Time
	Fingerprint string // SHA-1, upper-case hex
}

// CDNDomain is a CDN (or DCDN) accelerated domain.
type CDNDomain struct {
	Name string
	// SSL is whether HTTPS is on; CertType "cas" binds CertID, "upload"
	// binds the PEM in CertPEM.
	SSL      bool
	CertType string
	CertID   int64
	CertName string
	CertPEM  string
}

// SLBCert is an SLB server certificate.
type SLBCert struct {
	ID, Name, Region string
	CertPEM          string
	Sha2             string
	Fingerprint      string // SHA-1, lower-case pairs joined by ':'
	CommonName       string
	NotAfter         time.Time
	Order            int64
}

// LoadBalancer is a Classic Load Balancer (SLB) instance.
type LoadBalancer struct {
	ID, Region string
	Listeners  map[int]*SLBListener
}

// SLBListener is an SLB listener; HTTPS ones carry certificates.
type SLBListener struct {
	Port       int
	Protocol   string // "https", "http", "tcp"
	ServerCert string
	Extensions []*DomainExtension
}

// DomainExtension is an SLB listener's SNI certificate for one domain.
type DomainExtension struct {
	ID, Domain, ServerCert string
}

// ALBListener is an Application Load Balancer listener.
type ALBListener struct {
	ID, LoadBalancerID, Region string
	Port                       int
	Protocol                   string // "HTTPS", "HTTP", "QUIC"
	// Default is the default certificate's CertificateId; Additional the
	// additional ones, in association order.
	Default    string
	Additional []string
}

func leafInfo(certPEM string) (sha2, sha1hex, cn string, sans []string, notAfter time.Time, err error) {
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil || b.Type != "CERTIFICATE" {
		return "", "", "", nil, time.Time{}, fmt.Errorf("no certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return "", "", "", nil, time.Time{}, err
	}
	s2 := sha256.Sum256(b.Bytes)
	s1 := sha1.Sum(b.Bytes)
	return strings.ToUpper(hex.EncodeToString(s2[:])), hex.EncodeToString(s1[:]), c.Subject.CommonName, c.DNSNames, c.NotAfter, nil
}

func colonHex(h string) string {
	var parts []string
	for i := 0; i+2 <= len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// AddCASCert puts a certificate in CAS as if someone uploaded it (not
// certfleet, unless name says so) and returns its CertId.
func (f *Fake) AddCASCert(name, certPEM string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, aerr := f.addCAS(name, certPEM)
	if aerr != nil {
		panic(aerr.message)
	}
	return c.ID
}

func (f *Fake) addCAS(name, certPEM string) (*CASCert, *apiError) {
	sha2, s1, cn, sans, na, err := leafInfo(certPEM)
	if err != nil {
		return nil, errorf(400, "InvalidParameter.Cert", "The certificate is not a valid PEM certificate.")
	}
	if f.casQuota > 0 && len(f.cas) >= f.casQuota {
		return nil, errorf(400, "QuotaExceeded.Certificate", "The number of certificates exceeds the quota (%d).", f.casQuota)
	}
	c := &CASCert{ID: f.id(), Name: name, CertPEM: certPEM, Sha2: sha2, CommonName: cn, Sans: sans, NotAfter: na, Fingerprint: strings.ToUpper(s1)}
	f.cas[c.ID] = c
	return c, nil
}

// DeleteCAS deletes a CAS certificate whatever binds it (as someone
// working around certfleet would, through the console).
func (f *Fake) DeleteCAS(id int64) { f.mu.Lock(); delete(f.cas, id); f.mu.Unlock() }

// CAS returns a copy of the CAS certificates, by CertId.
func (f *Fake) CAS() map[int64]CASCert {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[int64]CASCert{}
	for k, v := range f.cas {
		m[k] = *v
	}
	return m
}

// AddCDNDomain adds a domain; with certID > 0 it serves that CAS certificate.
func (f *Fake) AddCDNDomain(name string, certID int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := &CDNDomain{Name: name}
	if certID > 0 {
		d.SSL, d.CertType, d.CertID, d.CertName = true, "cas", certID, f.cas[certID].Name
	}
	f.cdn[name] = d
}

// CDN returns a copy of the CDN domains.
func (f *Fake) CDN() map[string]CDNDomain {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]CDNDomain{}
	for k, v := range f.cdn {
		m[k] = *v
	}
	return m
}

// CDNServedSha2 returns the SHA-256 of what domain serves, "" for nothing.
func (f *Fake) CDNServedSha2(domain string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.cdn[domain]
	if d == nil || !d.SSL {
		return ""
	}
	if d.CertType == "cas" {
		if c := f.cas[d.CertID]; c != nil {
			return c.Sha2
		}
		return "missing"
	}
	s, _, _, _, _, _ := leafInfo(d.CertPEM)
	return s
}

// AddSLBCert adds an SLB server certificate (as someone uploaded it) and
// returns its id.
func (f *Fake) AddSLBCert(region, name, certPEM string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, aerr := f.addSLBCert(region, name, certPEM)
	if aerr != nil {
		panic(aerr.message)
	}
	return c.ID
}

func (f *Fake) addSLBCert(region, name, certPEM string) (*SLBCert, *apiError) {
	sha2, s1, cn, _, na, err := leafInfo(certPEM)
	if err != nil {
		return nil, errorf(400, "InvalidParameter", "The specified ServerCertificate is not a valid PEM certificate.")
	}
	if f.slbQuota > 0 && len(f.slbCerts) >= f.slbQuota {
		return nil, errorf(400, "QuotaExceeded.ServerCertificate", "The number of server certificates exceeds the quota (%d).", f.slbQuota)
	}
	n := f.id()
	c := &SLBCert{ID: fmt.Sprintf("%d_%s", n, strings.Repeat("1", 8)), Name: name, Region: region, CertPEM: certPEM, Sha2: sha2,
		Fingerprint: colonHex(s1), CommonName: cn, NotAfter: na, Order: n}
	f.slbCerts[c.ID] = c
	return c, nil
}

// AddLoadBalancer adds an SLB instance with an HTTPS listener on each port,
// serving serverCert.
func (f *Fake) AddLoadBalancer(region, id, serverCert string, ports ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lb := f.lbs[id]
	if lb == nil {
		lb = &LoadBalancer{ID: id, Region: region, Listeners: map[int]*SLBListener{}}
		f.lbs[id] = lb
	}
	for _, p := range ports {
		lb.Listeners[p] = &SLBListener{Port: p, Protocol: "https", ServerCert: serverCert}
	}
}

// AddDomainExtension adds an SNI certificate to an SLB listener.
func (f *Fake) AddDomainExtension(lbID string, port int, domain, serverCert string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.lbs[lbID].Listeners[port]
	e := &DomainExtension{ID: fmt.Sprintf("de-%d", f.id()), Domain: domain, ServerCert: serverCert}
	l.Extensions = append(l.Extensions, e)
	return e.ID
}

// SLBListenerState is a copy of a listener's bindings.
type SLBListenerState struct {
	ServerCert string
	Extensions map[string]string // Domain → ServerCertificateId
}

// SLB returns a copy of one listener's bindings.
func (f *Fake) SLB(lbID string, port int) SLBListenerState {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := SLBListenerState{Extensions: map[string]string{}}
	if lb := f.lbs[lbID]; lb != nil {
		if l := lb.Listeners[port]; l != nil {
			s.ServerCert = l.ServerCert
			for _, e := range l.Extensions {
				s.Extensions[e.Domain] = e.ServerCert
			}
		}
	}
	return s
}

// SLBCerts returns a copy of the SLB server certificates.
func (f *Fake) SLBCerts() map[string]SLBCert {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]SLBCert{}
	for k, v := range f.slbCerts {
		m[k] = *v
	}
	return m
}

// SLBCertSha2 returns the SHA-256 of a server certificate, "" if unknown.
func (f *Fake) SLBCertSha2(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.slbCerts[id]; c != nil {
		return c.Sha2
	}
	return ""
}

// AddALBListener adds an ALB HTTPS listener serving the default certificate
// (a CertificateId, "<CAS CertId>-cn-hangzhou").
func (f *Fake) AddALBListener(region, lbID, listenerID string, port int, defaultCert string, additional ...string) {
	f.addListener(f.albListeners, "HTTPS", region, lbID, listenerID, port, defaultCert, additional)
}

// ALB returns a copy of one ALB listener.
func (f *Fake) ALB(listenerID string) ALBListener { return f.listener(f.albListeners, listenerID) }

// addListener adds an ALB or NLB listener to listeners.
func (f *Fake) addListener(listeners map[string]*ALBListener, protocol, region, lbID, listenerID string, port int, defaultCert string,
	additional []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	listeners[listenerID] = &ALBListener{ID: listenerID, LoadBalancerID: lbID, Region: region, Port: port, Protocol: protocol,
		Default: defaultCert, Additional: append([]string(nil), additional...)}
}

// listener returns a copy of one ALB or NLB listener (zero when unknown).
func (f *Fake) listener(listeners map[string]*ALBListener, listenerID string) ALBListener {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := listeners[listenerID]
	if l == nil {
		return ALBListener{}
	}
	c := *l
	c.Additional = append([]string(nil), l.Additional...)
	return c
}

// ALBCertID is the CertificateId ALB uses for CAS certificate id.
func ALBCertID(casID int64) string { return strconv.FormatInt(casID, 10) + "-cn-hangzhou" }

func casIDOfALB(certID string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(certID, "-cn-hangzhou"), 10, 64)
	return n
}

// CASSha2 returns the SHA-256 of a CAS certificate, "" if unknown.
func (f *Fake) CASSha2(id int64) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.cas[id]; c != nil {
		return c.Sha2
	}
	return ""
}

func (f *Fake) casInUse(id int64) bool {
	if f.wafInUse(id) {
		return true
	}
	for _, d := range f.dcdn {
		if d.SSL && d.CertType == "cas" && d.CertID == id {
			return true
		}
	}
	for _, d := range f.cdn {
		if d.SSL && d.CertType == "cas" && d.CertID == id {
			return true
		}
	}
	for _, b := range f.buckets {
		for _, c := range b.Cnames {
			if c != "" && casIDOfALB(c) == id {
				return true
			}
		}
	}
	for _, l := range f.nlbListeners {
		if casIDOfALB(l.Default) == id || slices.ContainsFunc(l.Additional, func(a string) bool { return casIDOfALB(a) == id }) {
			return true
		}
	}
	for _, l := range f.albListeners {
		if casIDOfALB(l.Default) == id {
			return true
		}
		for _, a := range l.Additional {
			if casIDOfALB(a) == id {
				return true
			}
		}
	}
	return false
}

var setDomainsImpl func(f *Fake, c *call, names []string, m map[string]*CDNDomain) *apiError

func setDomains(f *Fake, c *call, names []string, m map[string]*CDNDomain) *apiError {
	return setDomainsImpl(f, c, names, m)
}

// AddDCDNDomain adds a DCDN domain; with certID > 0 it serves that CAS
// certificate.
func (f *Fake) AddDCDNDomain(name string, certID int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := &CDNDomain{Name: name}
	if certID > 0 {
		d.SSL, d.CertType, d.CertID, d.CertName = true, "cas", certID, f.cas[certID].Name
	}
	f.dcdn[name] = d
}

// DCDNServedSha2 returns the SHA-256 of what a DCDN domain serves.
func (f *Fake) DCDNServedSha2(domain string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.dcdn[domain]
	if d == nil || !d.SSL {
		return ""
	}
	if c := f.cas[d.CertID]; c != nil {
		return c.Sha2
	}
	return "missing"
}

func init() {
	// STS 2015-04-01
	actions["2015-04-01/AssumeRole"] = func(f *Fake, c *call) (any, *apiError) {
		if aerr := required(c, "RoleArn", "RoleSessionName"); aerr != nil {
			return nil, aerr
		}
		if !f.roles[c.get("RoleArn")] {
			return nil, errorf(404, "EntityNotExist.Role", "The role not exists: %s.", c.get("RoleArn"))
		}
		ak, secret, token := fmt.Sprintf("STS.%d", f.id()), fmt.Sprintf("sts-secret-%d", f.id()), fmt.Sprintf("token-%d", f.id())
		f.keys[ak], f.tokens[ak] = secret, token
		exp := f.now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05Z")
		return map[string]any{"Credentials": map[string]string{"AccessKeyId": ak, "AccessKeySecret": secret, "SecurityToken": token, "Expiration": exp},
			"AssumedRoleUser": map[string]string{"Arn": c.get("RoleArn") + "/" + c.get("RoleSessionName"), "AssumedRoleId": "3" + ak}}, nil
	}

	// CAS 2020-04-07
	actions["2020-04-07/UploadUserCertificate"] = func(f *Fake, c *call) (any, *apiError) {
		if aerr := required(c, "Name", "Cert", "Key"); aerr != nil {
			return nil, aerr
		}
		if _, err := tls.X509KeyPair([]byte(c.get("Cert")), []byte(c.get("Key"))); err != nil {
			return nil, errorf(400, "InvalidParameter.CertificateKeyNotMatch", "The certificate and the private key do not match or cannot be parsed.")
		}
		for _, x := range f.cas {
			if x.Name == c.get("Name") {
				return nil, errorf(400, "NameRepeat", "The certificate name already exists.")
			}
		}
		x, aerr := f.addCAS(c.get("Name"), c.get("Cert"))
		if aerr != nil {
			return nil, aerr
		}
		return map[string]any{"CertId": x.ID}, nil
	}
	actions["2020-04-07/ListUserCertificateOrder"] = func(f *Fake, c *call) (any, *apiError) {
		if t := c.get("OrderType"); t != "UPLOAD" && t != "" {
			return map[string]any{"CertificateOrderList": []any{}, "TotalCount": 0, "CurrentPage": 1, "ShowSize": 10}, nil
		}
		ids := make([]int64, 0, len(f.cas))
		for id := range f.cas {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] > ids[j] })
		var list []map[string]any
		kw := c.get("Keyword")
		for _, id := range ids {
			x := f.cas[id]
			if kw != "" && !strings.Contains(x.Name, kw) && !strings.Contains(x.CommonName, kw) {
				continue
			}
			list = append(list, map[string]any{"CertificateId": x.ID, "Name": x.Name, "Sha2": x.Sha2, "Fingerprint": x.Fingerprint,
				"CommonName": x.CommonName, "Sans": strings.Join(x.Sans, ","), "CertEndTime": x.NotAfter.UnixMilli(),
				"EndDate": x.NotAfter.Format("2006-01-02"), "Upload": true, "SourceType": "upload", "Status": "ISSUED",
				"Expired": f.now().After(x.NotAfter)})
		}
		show := min(atoi(c.get("ShowSize"), 10), 100)
		cur := atoi(c.get("CurrentPage"), 1)
		p := page(list, cur, show)
		if p == nil {
			p = []map[string]any{}
		}
		return map[string]any{"CertificateOrderList": p, "TotalCount": len(list), "CurrentPage": cur, "ShowSize": show}, nil
	}
	actions["2020-04-07/GetUserCertificateDetail"] = func(f *Fake, c *call) (any, *apiError) {
		id, _ := strconv.ParseInt(c.get("CertId"), 10, 64)
		x := f.cas[id]
		if x == nil {
			return nil, errorf(404, "NotFound.Certificate", "The certificate does not exist.")
		}
		out := map[string]any{"Id": x.ID, "Name": x.Name, "Sha2": x.Sha2, "Fingerprint": x.Fingerprint, "Common": x.CommonName,
			"Sans": strings.Join(x.Sans, ","), "EndDate": x.NotAfter.Format("2006-01-02"), "CertIdentifier": ALBCertID(x.ID)}
		if c.get("CertFilter") != "true" {
			out["Cert"] = x.CertPEM
		}
		return out, nil
	}
	actions["2020-04-07/DeleteUserCertificate"] = func(f *Fake, c *call) (any, *apiError) {
		id, _ := strconv.ParseInt(c.get("CertId"), 10, 64)
		if f.cas[id] == nil {
			return nil, errorf(404, "NotFound.Certificate", "The certificate does not exist.")
		}
		if f.casInUse(id) {
			return nil, errorf(400, "OperationDenied.CertificateInUse", "The certificate is deployed to a cloud product and cannot be deleted.")
		}
		delete(f.cas, id)
		return map[string]any{}, nil
	}

	// CDN 2018-05-10
	cdnCertInfo := func(f *Fake, d *CDNDomain) map[string]any {
		info := map[string]any{"DomainName": d.Name, "ServerCertificateStatus": "off", "Status": "success"}
		if !d.SSL {
			return info
		}
		info["ServerCertificateStatus"] = "on"
		info["CertType"] = d.CertType
		info["CertName"] = d.CertName
		pemText := d.CertPEM
		if d.CertType == "cas" {
			info["CertId"] = strconv.FormatInt(d.CertID, 10)
			info["CertRegion"] = "cn-hangzhou"
			if x := f.cas[d.CertID]; x != nil {
				pemText = x.CertPEM
			}
		}
		if _, _, cn, _, na, err := leafInfo(pemText); err == nil {
			info["CertDomainName"] = cn
			info["CertExpireTime"] = na.UTC().Format("2006-01-02T15:04:05Z")
		}
		return info
	}
	describeDomains := func(f *Fake, c *call, m map[string]*CDNDomain, dcdn bool) (any, *apiError) {
		if aerr := required(c, "DomainName"); aerr != nil {
			return nil, aerr
		}
		var infos []map[string]any
		for _, name := range strings.Split(c.get("DomainName"), ",") {
			d := m[name]
			if d == nil {
				return nil, errorf(404, "InvalidDomain.NotFound", "The domain %s does not exist.", name)
			}
			info := cdnCertInfo(f, d)
			if dcdn { // DCDN names the status SSLProtocol
				info["SSLProtocol"] = info["ServerCertificateStatus"]
			}
			infos = append(infos, info)
		}
		return map[string]any{"CertInfos": map[string]any{"CertInfo": infos}}, nil
	}
	actions["2018-05-10/DescribeDomainCertificateInfo"] = func(f *Fake, c *call) (any, *apiError) { return describeDomains(f, c, f.cdn, false) }
	actions["2018-01-15/DescribeDcdnDomainCertificateInfo"] = func(f *Fake, c *call) (any, *apiError) { return describeDomains(f, c, f.dcdn, true) }
	actions["2018-01-15/SetDcdnDomainSSLCertificate"] = func(f *Fake, c *call) (any, *apiError) {
		if aerr := required(c, "DomainName", "SSLProtocol"); aerr != nil {
			return nil, aerr
		}
		return map[string]any{}, setDomains(f, c, []string{c.get("DomainName")}, f.dcdn)
	}
	setDomainsImpl = func(f *Fake, c *call, names []string, m map[string]*CDNDomain) *apiError {
		for _, name := range names {
			if m[name] == nil {
				return errorf(404, "InvalidDomain.NotFound", "The domain %s does not exist.", name)
			}
		}
		switch c.get("SSLProtocol") {
		case "off":
			for _, name := range names {
				*m[name] = CDNDomain{Name: name}
			}
			return nil
		case "on":
		default:
			return errorf(400, "InvalidSSLProtocol.ValueNotSupported", "The specified SSLProtocol is invalid.")
		}
		d := CDNDomain{SSL: true, CertType: c.get("CertType"), CertName: c.get("CertName")}
		switch d.CertType {
		case "cas":
			id, _ := strconv.ParseInt(c.get("CertId"), 10, 64)
			if id == 0 {
				for _, x := range f.cas {
					if x.Name == d.CertName {
						id = x.ID
					}
				}
			}
			x := f.cas[id]
			if x == nil {
				return errorf(404, "InvalidCertificate.NotFound", "The certificate does not exist.")
			}
			d.CertID, d.CertName = id, x.Name
		case "upload":
			if _, err := tls.X509KeyPair([]byte(c.get("SSLPub")), []byte(c.get("SSLPri"))); err != nil {
				return errorf(400, "CertificateNotMatch", "The certificate and the private key do not match.")
			}
			d.CertPEM = c.get("SSLPub")
		default:
			return errorf(400, "InvalidCertType.ValueNotSupported", "The specified CertType is invalid.")
		}
		for _, name := range names {
			dd := d
			dd.Name = name
			*m[name] = dd
		}
		return nil
	}
	actions["2018-05-10/SetCdnDomainSSLCertificate"] = func(f *Fake, c *call) (any, *apiError) {
		if aerr := required(c, "DomainName", "SSLProtocol"); aerr != nil {
			return nil, aerr
		}
		return map[string]any{}, setDomains(f, c, []string{c.get("DomainName")}, f.cdn)
	}
	actions["2018-05-10/BatchSetCdnDomainServerCertificate"] = func(f *Fake, c *call) (any, *apiError) {
		if aerr := required(c, "DomainName", "SSLProtocol"); aerr != nil {
			return nil, aerr
		}
		names := strings.Split(c.get("DomainName"), ",")
		if len(names) > 50 {
			return nil, errorf(400, "InvalidDomainName.TooMany", "At most 50 domains may be set at once.")
		}
		return map[string]any{}, setDomains(f, c, names, f.cdn)
	}
	listDomains := func(f *Fake, c *call, m map[string]*CDNDomain) (any, *apiError) {
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		sort.Strings(names)
		var data []map[string]any
		for _, n := range names {
			d := m[n]
			ssl := "off"
			if d.SSL {
				ssl = "on"
			}
			data = append(data, map[string]any{"DomainName": n, "Cname": n + ".w.kunlunsl.com", "DomainStatus": "online", "CdnType": "web", "SslProtocol": ssl})
		}
		size, num := min(atoi(c.get("PageSize"), 20), 500), atoi(c.get("PageNumber"), 1)
		p := page(data, num, size)
		if p == nil {
			p = []map[string]any{}
		}
		return map[string]any{"Domains": map[string]any{"PageData": p}, "TotalCount": len(data), "PageNumber": num, "PageSize": size}, nil
	}
	actions["2018-05-10/DescribeUserDomains"] = func(f *Fake, c *call) (any, *apiError) { return listDomains(f, c, f.cdn) }
	actions["2018-01-15/DescribeDcdnUserDomains"] = func(f *Fake, c *call) (any, *apiError) { return listDomains(f, c, f.dcdn) }

	// SLB 2014-05-15
	slbListener := func(f *Fake, c *call) (*SLBListener, *apiError) {
		if aerr := required(c, "LoadBalancerId", "ListenerPort"); aerr != nil {
			return nil, aerr
		}
		lb := f.lbs[c.get("LoadBalancerId")]
		if lb == nil || lb.Region != c.get("RegionId") {
			return nil, errorf(404, "InvalidLoadBalancerId.NotFound", "The specified LoadBalancerId does not exist.")
		}
		port, _ := strconv.Atoi(c.get("ListenerPort"))
		l := lb.Listeners[port]
		if l == nil || l.Protocol != "https" {
			return nil, errorf(400, "InvalidParameter", "The specified ListenerPort does not exist or is not an HTTPS listener.")
		}
		return l, nil
	}
	slbCert := func(f *Fake, c *call, id string) *apiError {
		x := f.slbCerts[id]
		if x == nil || x.Region != c.get("RegionId") {
			return errorf(404, "ServerCertificateId.NotFound", "The specified ServerCertificateId does not exist.")
		}
		return nil
	}
	extensions := func(l *SLBListener) []map[string]any {
		out := []map[string]any{}
		for _, e := range l.Extensions {
			out = append(out, map[string]any{"DomainExtensionId": e.ID, "Domain": e.Domain, "ServerCertificateId": e.ServerCert})
		}
		return out
	}
	actions["2014-05-15/UploadServerCertificate"] = func(f *Fake, c *call) (any, *apiError) {
		if aerr := required(c, "ServerCertificate", "PrivateKey", "RegionId"); aerr != nil {
			return nil, aerr
		}
		if _, err := tls.X509KeyPair([]byte(c.get("ServerCertificate")), []byte(c.get("PrivateKey"))); err != nil {
			return nil, errorf(400, "InvalidParameter", "The specified ServerCertificate and PrivateKey do not match.")
		}
		x, aerr := f.addSLBCert(c.get("RegionId"), c.get("ServerCertificateName"), c.get("ServerCertificate"))
		if aerr != nil {
			return nil, aerr
		}
		return map[string]any{"ServerCertificateId": x.ID, "ServerCertificateName": x.Name, "Fingerprint": x.Fingerprint,
			"RegionId": x.Region, "CommonName": x.CommonName, "ExpireTimeStamp": x.NotAfter.UnixMilli()}, nil
	}
	actions["2014-05-15/DescribeServerCertificates"] = func(f *Fake, c *call) (any, *apiError) {
		var list []map[string]any
		var certs []*SLBCert
		for _, x := range f.slbCerts {
			if x.Region == c.get("RegionId") && (c.get("ServerCertificateId") == "" || c.get("ServerCertificateId") == x.ID) {
				certs = append(certs, x)
			}
		}
		sort.Slice(certs, func(i, j int) bool { return certs[i].Order < certs[j].Order })
		for _, x := range certs {
			list = append(list, map[string]any{"ServerCertificateId": x.ID, "ServerCertificateName": x.Name, "Fingerprint": x.Fingerprint,
				"RegionId": x.Region, "CommonName": x.CommonName, "ExpireTimeStamp": x.NotAfter.UnixMilli(),
				"ExpireTime": x.NotAfter.UTC().Format("2006-01-02T15:04Z"), "IsAliCloudCertificate": 0, "CreateTimeStamp": x.Order})
		}
		if list == nil {
			list = []map[string]any{}
		}
		return map[string]any{"ServerCertificates": map[string]any{"ServerCertificate": list}}, nil
	}
	actions["2014-05-15/DeleteServerCertificate"] = func(f *Fake, c *call) (any, *apiError) {
		id := c.get("ServerCertificateId")
		if aerr := slbCert(f, c, id); aerr != nil {
			return nil, aerr
		}
		for _, lb := range f.lbs {
			for _, l := range lb.Listeners {
				if l.ServerCert == id {
					return nil, errorf(400, "ResourceInUse.ServerCertificate", "The specified ServerCertificate is in use.")
				}
				for _, e := range l.Extensions {
					if e.ServerCert == id {
						return nil, errorf(400, "ResourceInUse.ServerCertificate", "The specified ServerCertificate is in use.")
					}
				}
			}
		}
		delete(f.slbCerts, id)
		return map[string]any{}, nil
	}
	actions["2014-05-15/DescribeLoadBalancerHTTPSListenerAttribute"] = func(f *Fake, c *call) (any, *apiError) {
		l, aerr := slbListener(f, c)
		if aerr != nil {
			return nil, aerr
		}
		return map[string]any{"ListenerPort": l.Port, "BackendServerPort": 80, "Status": "running", "ServerCertificateId": l.ServerCert,
			"DomainExtensions": map[string]any{"DomainExtension": extensions(l)}}, nil
	}
	actions["2014-05-15/SetLoadBalancerHTTPSListenerAttribute"] = func(f *Fake, c *call) (any, *apiError) {
		l, aerr := slbListener(f, c)
		if aerr != nil {
			return nil, aerr
		}
		if id := c.get("ServerCertificateId"); id != "" {
			if aerr := slbCert(f, c, id); aerr != nil {
				return nil, aerr
			}
			l.ServerCert = id
		}
		return map[string]any{}, nil
	}
	actions["2014-05-15/DescribeDomainExtensions"] = func(f *Fake, c *call) (any, *apiError) {
		l, aerr := slbListener(f, c)
		if aerr != nil {
			return nil, aerr
		}
		return map[string]any{"DomainExtensions": map[string]any{"DomainExtension": extensions(l)}}, nil
	}
	findExt := func(f *Fake, c *call) (*SLBListener, int, *apiError) {
		if aerr := required(c, "DomainExtensionId"); aerr != nil {
			return nil, 0, aerr
		}
		for _, lb := range f.lbs {
			for _, l := range lb.Listeners {
				for i, e := range l.Extensions {
					if e.ID == c.get("DomainExtensionId") && lb.Region == c.get("RegionId") {
						return l, i, nil
					}
				}
			}
		}
		return nil, 0, errorf(404, "InvalidParameter.DomainExtensionId", "The specified DomainExtensionId does not exist.")
	}
	actions["2014-05-15/AddDomainExtension"] = func(f *Fake, c *call) (any, *apiError) {
		l, aerr := slbListener(f, c)
		if aerr != nil {
			return nil, aerr
		}
		if aerr := required(c, "Domain", "ServerCertificateId"); aerr != nil {
			return nil, aerr
		}
		if aerr := slbCert(f, c, c.get("ServerCertificateId")); aerr != nil {
			return nil, aerr
		}
		for _, e := range l.Extensions {
			if e.Domain == c.get("Domain") {
				return nil, errorf(400, "DomainExtensionProcessing", "The domain extension of %s already exists.", e.Domain)
			}
		}
		e := &DomainExtension{ID: fmt.Sprintf("de-%d", f.id()), Domain: c.get("Domain"), ServerCert: c.get("ServerCertificateId")}
		l.Extensions = append(l.Extensions, e)
		return map[string]any{"DomainExtensionId": e.ID, "ListenerPort": l.Port}, nil
	}
	actions["2014-05-15/SetDomainExtensionAttribute"] = func(f *Fake, c *call) (any, *apiError) {
		l, i, aerr := findExt(f, c)
		if aerr != nil {
			return nil, aerr
		}
		if aerr := slbCert(f, c, c.get("ServerCertificateId")); aerr != nil {
			return nil, aerr
		}
		l.Extensions[i].ServerCert = c.get("ServerCertificateId")
		return map[string]any{}, nil
	}
	actions["2014-05-15/DeleteDomainExtension"] = func(f *Fake, c *call) (any, *apiError) {
		l, i, aerr := findExt(f, c)
		if aerr != nil {
			return nil, aerr
		}
		l.Extensions = append(l.Extensions[:i], l.Extensions[i+1:]...)
		return map[string]any{}, nil
	}
	actions["2014-05-15/DescribeLoadBalancerListeners"] = func(f *Fake, c *call) (any, *apiError) {
		var list []map[string]any
		ids := make([]string, 0, len(f.lbs))
		for id, lb := range f.lbs {
			if lb.Region == c.get("RegionId") {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		for _, id := range ids {
			lb := f.lbs[id]
			ports := make([]int, 0, len(lb.Listeners))
			for p := range lb.Listeners {
				ports = append(ports, p)
			}
			sort.Ints(ports)
			for _, p := range ports {
				l := lb.Listeners[p]
				if proto := c.get("ListenerProtocol"); proto != "" && proto != l.Protocol {
					continue
				}
				item := map[string]any{"LoadBalancerId": id, "ListenerPort": p, "ListenerProtocol": l.Protocol, "Status": "running"}
				if l.Protocol == "https" {
					item["HTTPSListenerConfig"] = map[string]any{"ServerCertificateId": l.ServerCert}
				}
				list = append(list, item)
			}
		}
		p, next := tokenPage(list, c.get("NextToken"), min(atoi(c.get("MaxResults"), 20), 100))
		if p == nil {
			p = []map[string]any{}
		}
		return map[string]any{"Listeners": p, "NextToken": next, "TotalCount": len(list), "MaxResults": atoi(c.get("MaxResults"), 20)}, nil
	}

	// ALB 2020-06-16
	registerListeners("2020-06-16", func(f *Fake) map[string]*ALBListener { return f.albListeners }, "HTTPS",
		func(action string, i int) string { return fmt.Sprintf("Certificates.%d.CertificateId", i) })
	registerListeners("2022-04-30", func(f *Fake) map[string]*ALBListener { return f.nlbListeners }, "TCPSSL",
		func(action string, i int) string {
			if action == "UpdateListenerAttribute" {
				return fmt.Sprintf("CertificateIds.%d", i)
			}
			return fmt.Sprintf("AdditionalCertificateIds.%d", i)
		})
}

// registerListeners answers the listener-certificate actions of ALB
// (2020-06-16) or NLB (2022-04-30): the same shapes, NLB naming its
// certificate parameters CertificateIds.N / AdditionalCertificateIds.N.
func registerListeners(version string, listeners func(f *Fake) map[string]*ALBListener, protocol string, param func(action string, i int) string) {
	albListener := func(f *Fake, c *call) (*ALBListener, *apiError) {
		if aerr := required(c, "ListenerId"); aerr != nil {
			return nil, aerr
		}
		l := listeners(f)[c.get("ListenerId")]
		if l == nil || l.Region != c.get("RegionId") {
			return nil, errorf(404, "ResourceNotFound.Listener", "The specified resource %s is not found.", c.get("ListenerId"))
		}
		return l, nil
	}
	albCerts := func(f *Fake, c *call) ([]string, *apiError) {
		var ids []string
		for i := 1; ; i++ {
			id := c.get(param(c.action, i))
			if id == "" {
				break
			}
			if f.cas[casIDOfALB(id)] == nil {
				return nil, errorf(404, "ResourceNotFound.Certificate", "The specified certificate %s is not found.", id)
			}
			ids = append(ids, id)
		}
		return ids, nil
	}
	actions[version+"/GetListenerAttribute"] = func(f *Fake, c *call) (any, *apiError) {
		l, aerr := albListener(f, c)
		if aerr != nil {
			return nil, aerr
		}
		certs := []map[string]any{}
		if l.Default != "" {
			certs = append(certs, map[string]any{"CertificateId": l.Default})
		}
		return map[string]any{"ListenerId": l.ID, "LoadBalancerId": l.LoadBalancerID, "ListenerPort": l.Port, "ListenerProtocol": l.Protocol,
			"ListenerStatus": "Running", "Certificates": certs}, nil
	}
	actions[version+"/UpdateListenerAttribute"] = func(f *Fake, c *call) (any, *apiError) {
		l, aerr := albListener(f, c)
		if aerr != nil {
			return nil, aerr
		}
		ids, aerr := albCerts(f, c)
		if aerr != nil {
			return nil, aerr
		}
		if len(ids) > 1 {
			return nil, errorf(400, "OperationDenied.CertificateCount", "A listener has one default certificate.")
		}
		if len(ids) == 1 {
			l.Default = ids[0]
		}
		return map[string]any{"JobId": fmt.Sprintf("job-%d", f.id())}, nil
	}
	actions[version+"/ListListenerCertificates"] = func(f *Fake, c *call) (any, *apiError) {
		l, aerr := albListener(f, c)
		if aerr != nil {
			return nil, aerr
		}
		var list []map[string]any
		if l.Default != "" && c.get("CertificateType") != "Ca" {
			list = append(list, map[string]any{"CertificateId": l.Default, "IsDefault": true, "Status": "Associated", "CertificateType": "Server"})
		}
		for _, a := range l.Additional {
			list = append(list, map[string]any{"CertificateId": a, "IsDefault": false, "Status": "Associated", "CertificateType": "Server"})
		}
		p, next := tokenPage(list, c.get("NextToken"), min(atoi(c.get("MaxResults"), 20), 100))
		if p == nil {
			p = []map[string]any{}
		}
		return map[string]any{"Certificates": p, "NextToken": next, "TotalCount": len(list), "MaxResults": atoi(c.get("MaxResults"), 20)}, nil
	}
	actions[version+"/AssociateAdditionalCertificatesWithListener"] = func(f *Fake, c *call) (any, *apiError) {
		l, aerr := albListener(f, c)
		if aerr != nil {
			return nil, aerr
		}
		ids, aerr := albCerts(f, c)
		if aerr != nil {
			return nil, aerr
		}
		if len(ids) == 0 {
			return nil, errorf(400, "MissingParameter", "The input parameter \"Certificates\" that is mandatory for processing this request is not supplied.")
		}
	next:
		for _, id := range ids {
			for _, a := range l.Additional {
				if a == id {
					continue next
				}
			}
			l.Additional = append(l.Additional, id)
		}
		return map[string]any{"JobId": fmt.Sprintf("job-%d", f.id())}, nil
	}
	actions[version+"/DissociateAdditionalCertificatesFromListener"] = func(f *Fake, c *call) (any, *apiError) {
		l, aerr := albListener(f, c)
		if aerr != nil {
			return nil, aerr
		}
		ids, aerr := albCerts(f, c)
		if aerr != nil {
			return nil, aerr
		}
		for _, id := range ids {
			for i, a := range l.Additional {
				if a == id {
					l.Additional = append(l.Additional[:i], l.Additional[i+1:]...)
					break
				}
			}
		}
		return map[string]any{"JobId": fmt.Sprintf("job-%d", f.id())}, nil
	}
	actions[version+"/ListListeners"] = func(f *Fake, c *call) (any, *apiError) {
		var ids []string
		for id, l := range listeners(f) {
			if l.Region == c.get("RegionId") {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		var list []map[string]any
		for _, id := range ids {
			l := listeners(f)[id]
			if p := c.get("ListenerProtocol"); p != "" && p != l.Protocol {
				continue
			}
			list = append(list, map[string]any{"ListenerId": l.ID, "LoadBalancerId": l.LoadBalancerID, "ListenerPort": l.Port,
				"ListenerProtocol": l.Protocol, "ListenerStatus": "Running"})
		}
		p, next := tokenPage(list, c.get("NextToken"), min(atoi(c.get("MaxResults"), 20), 100))
		if p == nil {
			p = []map[string]any{}
		}
		return map[string]any{"Listeners": p, "NextToken": next, "TotalCount": len(list), "MaxResults": atoi(c.get("MaxResults"), 20)}, nil
	}
}

func certIDs(certs []map[string]any) []any {
	out := []any{}
	for _, c := range certs {
		out = append(out, c["CertificateId"])
	}
	return out
}

// AddNLBListener adds an NLB TCPSSL listener serving the default
// certificate (a CertificateId, "<CAS CertId>-cn-hangzhou").
func (f *Fake) AddNLBListener(region, lbID, listenerID string, port int, defaultCert string, additional ...string) {
	f.addListener(f.nlbListeners, "TCPSSL", region, lbID, listenerID, port, defaultCert, additional)
}

// NLB returns a copy of one NLB listener.
func (f *Fake) NLB(listenerID string) ALBListener { return f.listener(f.nlbListeners, listenerID) }

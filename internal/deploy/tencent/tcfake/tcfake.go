// Package tcfake is a fake Tencent Cloud API for tests: one HTTP server
// answering the SSL, CDN, CLB, TEO and STS actions certfleet calls, as the
// public API reference documents them. It verifies TC3-HMAC-SHA256
// signatures as Tencent does (scope, date, 5-minute window, body hash,
// signed content-type and host), keeps per-product state (SSL
// certificates, CDN domains, CLB listeners with SNI domain rules, EdgeOne
// acceleration domains), answers {"Response":{…,"RequestId"}} or
// {"Response":{"Error":{"Code","Message"},"RequestId"}} with HTTP 200, and
// injects faults (error codes, slow answers, asynchronous CLB tasks still
// running).
//
// It is for tests only. Where the reference is silent the fake guesses;
// each guess is marked GUESS in this file.
package tcfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cert is an SSL certificate.
type Cert struct {
	ID, Alias, PublicKey, Domain string
	Sha                          string // upper-case hex of the leaf
	Inserted                     time.Time
	NotAfter                     time.Time
}

// CDNDomain is a CDN domain's HTTPS configuration.
type CDNDomain struct {
	Switch string // "on" / "off"
	CertID string
}

// Listener is a CLB HTTPS listener.
type Listener struct {
	ID, LB, Region string
	Port           int
	SNI            bool
	CertID         string            // the listener's certificate (SNI off)
	Domains        map[string]string // SNI domain → certificate ID
}

// TEODomain is an EdgeOne acceleration domain.
type TEODomain struct {
	Mode    string // disable / eofreecert / sslcert
	CertIDs []string
}

// Fault is an injected failure: the next Times calls of Action answer Code.
type Fault struct {
	Action, Code, Message string
	Times                 int
	// Delay holds the answer back (a fault without Code makes the change
	// at once and answers late).
	Delay time.Duration
}

// Server is the fake. Its fields are guarded by mu; use the methods.
type Server struct {
	URL string
	srv *httptest.Server

	mu        sync.Mutex
	keys      map[string]string // SecretId → SecretKey
	tokens    map[string]string // temporary SecretId → token
	certs     map[string]*Cert
	cdn       map[string]*CDNDomain
	lbs       map[string]string // LB ID → region
	listeners map[string]*Listener
	zones     map[string]map[string]*TEODomain
	faults    []*Fault
	pending   map[string]int // CLB task → DescribeTaskStatus answers "running" left
	// TaskRunning is how many DescribeTaskStatus answers say 2 (running)
	// before 0 (done), for each new CLB task.
	TaskRunning int
	calls       map[string]int
	curRegion   string
	skew        time.Duration
	writes      map[string]int // per resource key, write actions
	n           int
	now         func() time.Time
}

// New starts a fake on loopback with one API key; it stops when t ends.
func New(t testing.TB, secretID, secretKey string) *Server {
	s := &Server{keys: map[string]string{secretID: secretKey}, tokens: map[string]string{},
		certs: map[string]*Cert{}, cdn: map[string]*CDNDomain{}, lbs: map[string]string{}, listeners: map[string]*Listener{},
		zones: map[string]map[string]*TEODomain{}, pending: map[string]int{}, calls: map[string]int{}, writes: map[string]int{}, now: time.Now}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

func (s *Server) id(prefix string) string {
	s.n++
	return fmt.Sprintf("%s%08d", prefix, s.n)
}

// AddCDNDomain adds a CDN domain with HTTPS off.
func (s *Server) AddCDNDomain(domain string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cdn[domain] = &CDNDomain{Switch: "off"}
}

// AddListener adds a load balancer (if new) with an HTTPS listener on
// port bound to certID; sni lists SNI domains (each bound to certID),
// turning SNI on. It returns the listener ID.
func (s *Server) AddListener(region, lb string, port int, certID string, sni ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lbs[lb] = region
	l := &Listener{ID: s.id("lbl-"), LB: lb, Region: region, Port: port, Domains: map[string]string{}}
	if len(sni) > 0 {
		l.SNI = true
		for _, d := range sni {
			l.Domains[d] = certID
		}
	} else {
		l.CertID = certID
	}
	s.listeners[l.ID] = l
	return l.ID
}

// BindSNI binds certID to an SNI domain of a listener, as a user's
// console would.
func (s *Server) BindSNI(listener, domain, certID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners[listener].Domains[domain] = certID
}

// AddTEODomain adds an acceleration domain with Mode disable.
func (s *Server) AddTEODomain(zone, domain string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.zones[zone] == nil {
		s.zones[zone] = map[string]*TEODomain{}
	}
	s.zones[zone][domain] = &TEODomain{Mode: "disable"}
}

// Upload stores a certificate as a user would (no certfleet alias).
func (s *Server) Upload(publicPEM, alias string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _ := s.newCert(publicPEM, alias)
	return c.ID
}

// CDN returns a CDN domain's state.
func (s *Server) CDN(domain string) CDNDomain {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.cdn[domain]; d != nil {
		return *d
	}
	return CDNDomain{}
}

// Listener returns a copy of a listener.
func (s *Server) Listener(id string) Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := *s.listeners[id]
	l.Domains = map[string]string{}
	for k, v := range s.listeners[id].Domains {
		l.Domains[k] = v
	}
	return l
}

// TEO returns an acceleration domain's state.
func (s *Server) TEO(zone, domain string) TEODomain {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.zones[zone][domain]; d != nil {
		return TEODomain{Mode: d.Mode, CertIDs: append([]string(nil), d.CertIDs...)}
	}
	return TEODomain{}
}

// Sha returns the fingerprint of an SSL certificate, "" when there is none.
func (s *Server) Sha(certID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.certs[certID]; c != nil {
		return c.Sha
	}
	return ""
}

// Certs returns the SSL certificates, by ID.
func (s *Server) Certs() map[string]Cert {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Cert{}
	for k, v := range s.certs {
		out[k] = *v
	}
	return out
}

// Calls counts the calls of action (all actions for "").
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if action == "" {
		n := 0
		for _, v := range s.calls {
			n += v
		}
		return n
	}
	return s.calls[action]
}

// Writes counts the state changes made to one resource ("cdn:DOMAIN",
// "clb:LISTENER" or "clb:LISTENER/DOMAIN", "teo:ZONE/DOMAIN").
func (s *Server) Writes(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes[key]
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// Advance moves the fake's clock forward (certificates' InsertTime, the
// signature window).
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skew += d
	skew := s.skew
	s.now = func() time.Time { return time.Now().Add(skew) }
}

// SetTaskRunning sets TaskRunning.
func (s *Server) SetTaskRunning(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.TaskRunning = n
}

// apiError is an error answer.
type apiError struct{ code, msg string }

func errf(code, format string, a ...any) *apiError { return &apiError{code, fmt.Sprintf(format, a...)} }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	reqID := fmt.Sprintf("%08x-fake-4000-8000-%012d", time.Now().UnixNano()&0xffffffff, time.Now().UnixNano()%1e12)
	action := r.Header.Get("X-TC-Action")
	out, aerr, delay := s.handle(r, body, action, reqID)
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	resp := map[string]any{}
	if aerr != nil {
		resp["Error"] = map[string]string{"Code": aerr.code, "Message": aerr.msg}
	} else {
		for k, v := range out {
			resp[k] = v
		}
	}
	resp["RequestId"] = reqID
	w.Header().Set("Content-Type", "application/json")
	// Tencent answers API errors with HTTP 200 and the Error object.
	json.NewEncoder(w).Encode(map[string]any{"Response": resp})
}

func (s *Server) handle(r *http.Request, body []byte, action, reqID string) (map[string]any, *apiError, time.Duration) {
	if r.Method != http.MethodPost {
		// GUESS: the fake takes POST only (certfleet's SDK profile uses POST).
		return nil, errf("UnsupportedProtocol", "HTTP method %s is not supported by this fake; use POST", r.Method), 0
	}
	service, aerr := s.verify(r, body)
	if aerr != nil {
		return nil, aerr, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.curRegion = r.Header.Get("X-TC-Region")
	s.calls[action]++
	for i, f := range s.faults {
		if f.Action == action && f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
			if f.Code != "" {
				msg := f.Message
				if msg == "" {
					msg = "injected fault"
				}
				return nil, errf(f.Code, "%s", msg), f.Delay
			}
			out, aerr := s.dispatch(service, action, body, reqID)
			return out, aerr, f.Delay
		}
	}
	out, aerr := s.dispatch(service, action, body, reqID)
	return out, aerr, 0
}

// verify checks the TC3-HMAC-SHA256 signature and returns the service
// named by the credential scope.
func (s *Server) verify(r *http.Request, body []byte) (string, *apiError) {
	auth := r.Header.Get("Authorization")
	const alg = "TC3-HMAC-SHA256 "
	if !strings.HasPrefix(auth, alg) {
		return "", errf("AuthFailure.SignatureFailure", "The provided credentials could not be validated. Please check your signature is correct.")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, alg), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 4 || scope[3] != "tc3_request" {
		return "", errf("AuthFailure.SignatureFailure", "The provided credentials could not be validated: malformed Credential.")
	}
	id, date, service := scope[0], scope[1], scope[2]
	s.mu.Lock()
	key, ok := s.keys[id]
	token := s.tokens[id]
	now := s.now()
	s.mu.Unlock()
	if !ok {
		return "", errf("AuthFailure.SecretIdNotFound", "The SecretId is not found, please ensure that your SecretId is correct.")
	}
	if token != "" && r.Header.Get("X-TC-Token") != token {
		return "", errf("AuthFailure.TokenFailure", "Token verification failed.")
	}
	ts, err := strconv.ParseInt(r.Header.Get("X-TC-Timestamp"), 10, 64)
	if err != nil {
		return "", errf("MissingParameter", "The request is missing a required parameter `X-TC-Timestamp`.")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return "", errf("AuthFailure.SignatureExpire", "Signature expired. Timestamp and server time cannot differ by more than 5 minutes.")
	}
	if time.Unix(ts, 0).UTC().Format("2006-01-02") != date {
		return "", errf("AuthFailure.SignatureFailure", "The credential scope date does not match X-TC-Timestamp.")
	}
	if fields["SignedHeaders"] != "content-type;host" {
		// GUESS: Tencent accepts other header sets; the SDK always signs these two.
		return "", errf("AuthFailure.SignatureFailure", "SignedHeaders must be content-type;host in this fake.")
	}
	if h := r.Host; strings.HasSuffix(h, ".tencentcloudapi.com") && !strings.HasPrefix(h, service+".") {
		return "", errf("AuthFailure.SignatureFailure", "The credential scope service %s does not match the host %s.", service, h)
	}
	bodyHash := sha256.Sum256(body)
	canonical := strings.Join([]string{"POST", "/", "",
		"content-type:" + r.Header.Get("Content-Type") + "\nhost:" + r.Host + "\n",
		"content-type;host", hex.EncodeToString(bodyHash[:])}, "\n")
	ch := sha256.Sum256([]byte(canonical))
	toSign := "TC3-HMAC-SHA256\n" + r.Header.Get("X-TC-Timestamp") + "\n" + date + "/" + service + "/tc3_request\n" + hex.EncodeToString(ch[:])
	k := hmacSum([]byte("TC3"+key), date)
	k = hmacSum(k, service)
	k = hmacSum(k, "tc3_request")
	want := hex.EncodeToString(hmacSum(k, toSign))
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return "", errf("AuthFailure.SignatureFailure", "The provided credentials could not be validated. Please check your signature is correct.")
	}
	return service, nil
}

func hmacSum(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// versions are the API versions the fake serves, per service.
var versions = map[string]string{"ssl": "2019-12-05", "cdn": "2018-06-06", "clb": "2018-03-17", "teo": "2022-09-01", "sts": "2018-08-13"}

func (s *Server) dispatch(service, action string, body []byte, reqID string) (map[string]any, *apiError) {
	var p map[string]json.RawMessage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, errf("InvalidParameter", "The request body is not valid JSON.")
	}
	str := func(k string) string {
		var v string
		json.Unmarshal(p[k], &v)
		return v
	}
	num := func(k string, def int) int {
		v := def
		if raw, ok := p[k]; ok {
			json.Unmarshal(raw, &v)
		}
		return v
	}
	switch service + "." + action {
	// --- SSL ---
	case "ssl.UploadCertificate":
		pub, key := str("CertificatePublicKey"), str("CertificatePrivateKey")
		if pub == "" || key == "" {
			return nil, errf("MissingParameter", "CertificatePublicKey and CertificatePrivateKey are required.")
		}
		if t := str("CertificateType"); t != "" && t != "SVR" {
			return nil, errf("InvalidParameterValue", "CertificateType %s is not supported by this fake.", t)
		}
		if !strings.Contains(key, "PRIVATE KEY") {
			return nil, errf("FailedOperation.CertificateParseError", "The private key could not be parsed.")
		}
		// GUESS: Repeatable=false returns the existing certificate's ID in
		// RepeatCertId when the same certificate (same leaf) was uploaded.
		var repeatable = true
		if raw, ok := p["Repeatable"]; ok {
			json.Unmarshal(raw, &repeatable)
		}
		sha, _, _ := leafOf(pub)
		if sha == "" {
			return nil, errf("FailedOperation.CertificateParseError", "The certificate could not be parsed.")
		}
		if !repeatable {
			for _, c := range s.certs {
				if c.Sha == sha {
					return map[string]any{"CertificateId": "", "RepeatCertId": c.ID}, nil
				}
			}
		}
		c, _ := s.newCert(pub, str("Alias"))
		return map[string]any{"CertificateId": c.ID, "RepeatCertId": ""}, nil
	case "ssl.DescribeCertificates":
		search := str("SearchKey")
		var list []*Cert
		for _, c := range s.certs {
			// GUESS: SearchKey matches a substring of the ID, Alias or Domain.
			if search == "" || strings.Contains(c.ID, search) || strings.Contains(c.Alias, search) || strings.Contains(c.Domain, search) {
				list = append(list, c)
			}
		}
		sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
		off, lim := num("Offset", 0), num("Limit", 20)
		if lim > 1000 {
			return nil, errf("InvalidParameterValue", "Limit must be at most 1000.")
		}
		total := len(list)
		list = page(list, off, lim)
		items := []map[string]any{}
		for _, c := range list {
			items = append(items, map[string]any{"CertificateId": c.ID, "Alias": c.Alias, "Domain": c.Domain,
				"CertificateType": "SVR", "CertEndTime": c.NotAfter.Format("2006-01-02 15:04:05"),
				"InsertTime": c.Inserted.Format("2006-01-02 15:04:05"), "Status": 1})
		}
		return map[string]any{"TotalCount": total, "Certificates": items}, nil
	case "ssl.DescribeCertificateDetail":
		c := s.certs[str("CertificateId")]
		if c == nil {
			return nil, errf("FailedOperation.CertificateNotFound", "The certificate does not exist.")
		}
		return map[string]any{"CertificateId": c.ID, "Alias": c.Alias, "Domain": c.Domain, "CertificatePublicKey": c.PublicKey,
			"CertEndTime": c.NotAfter.Format("2006-01-02 15:04:05")}, nil
	case "ssl.DeleteCertificate":
		id := str("CertificateId")
		if s.certs[id] == nil {
			return nil, errf("FailedOperation.CertificateNotFound", "The certificate does not exist.")
		}
		if s.inUse(id) {
			// GUESS: deleting a bound certificate fails with this code.
			return nil, errf("FailedOperation.DeleteResourceFailed", "The certificate is associated with cloud resources and cannot be deleted.")
		}
		delete(s.certs, id)
		return map[string]any{"DeleteResult": true}, nil

	// --- CDN ---
	case "cdn.DescribeDomainsConfig":
		var filters []struct {
			Name  string
			Value []string
		}
		json.Unmarshal(p["Filters"], &filters)
		var names []string
		for d := range s.cdn {
			ok := true
			for _, f := range filters {
				if f.Name == "domain" && !contains(f.Value, d) {
					ok = false
				}
			}
			if ok {
				names = append(names, d)
			}
		}
		sort.Strings(names)
		total := len(names)
		names = page(names, num("Offset", 0), num("Limit", 100))
		items := []map[string]any{}
		for _, d := range names {
			st := s.cdn[d]
			https := map[string]any{"Switch": st.Switch}
			if st.CertID != "" {
				https["CertInfo"] = map[string]any{"CertId": st.CertID, "CertName": s.aliasOf(st.CertID)}
			}
			items = append(items, map[string]any{"Domain": d, "ResourceId": "cdn-" + strings.ReplaceAll(d, ".", "-"), "Status": "online", "Https": https})
		}
		return map[string]any{"Domains": items, "TotalNumber": total}, nil
	case "cdn.UpdateDomainConfig":
		d := str("Domain")
		st := s.cdn[d]
		if st == nil {
			return nil, errf("ResourceNotFound.CdnHostNotExists", "Domain %s does not exist in this account.", d)
		}
		var https struct {
			Switch   string
			CertInfo *struct{ CertId string }
		}
		if err := json.Unmarshal(p["Https"], &https); err != nil {
			return nil, errf("InvalidParameter.CdnParamError", "Https is malformed.")
		}
		switch https.Switch {
		case "on":
			if https.CertInfo == nil || s.certs[https.CertInfo.CertId] == nil {
				return nil, errf("InvalidParameter.CdnCertNoCertInfo", "Https.CertInfo.CertId must name an SSL certificate.")
			}
			st.Switch, st.CertID = "on", https.CertInfo.CertId
		case "off":
			// GUESS: turning HTTPS off forgets the certificate.
			st.Switch, st.CertID = "off", ""
		default:
			return nil, errf("InvalidParameter.CdnParamError", "Https.Switch must be on or off.")
		}
		s.writes["cdn:"+d]++
		return map[string]any{}, nil

	// --- CLB ---
	case "clb.DescribeLoadBalancers":
		var ids []string
		region := s.regionOfCall()
		for id, r := range s.lbs {
			if region == "" || r == region {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		total := len(ids)
		ids = page(ids, num("Offset", 0), num("Limit", 20))
		items := []map[string]any{}
		for _, id := range ids {
			items = append(items, map[string]any{"LoadBalancerId": id, "LoadBalancerName": id + "-name", "LoadBalancerType": "OPEN"})
		}
		return map[string]any{"TotalCount": total, "LoadBalancerSet": items}, nil
	case "clb.DescribeListeners":
		lb := str("LoadBalancerId")
		if _, ok := s.lbs[lb]; !ok || s.lbs[lb] != s.regionOfCall() {
			return nil, errf("InvalidParameter.LBIdNotFound", "LoadBalancerId %s not found in region %s.", lb, s.regionOfCall())
		}
		var want []string
		json.Unmarshal(p["ListenerIds"], &want)
		var ls []*Listener
		for _, l := range s.listeners {
			if l.LB == lb && (len(want) == 0 || contains(want, l.ID)) {
				ls = append(ls, l)
			}
		}
		sort.Slice(ls, func(i, j int) bool { return ls[i].ID < ls[j].ID })
		items := []map[string]any{}
		for _, l := range ls {
			item := map[string]any{"ListenerId": l.ID, "Protocol": "HTTPS", "Port": l.Port, "SniSwitch": b2i(l.SNI)}
			if !l.SNI {
				item["Certificate"] = map[string]any{"SSLMode": "UNIDIRECTIONAL", "CertId": l.CertID}
			}
			var rules []map[string]any
			var ds []string
			for d := range l.Domains {
				ds = append(ds, d)
			}
			sort.Strings(ds)
			for i, d := range ds {
				rules = append(rules, map[string]any{"LocationId": fmt.Sprintf("loc-%s-%d", l.ID, i), "Domain": d, "Url": "/",
					"Certificate": map[string]any{"SSLMode": "UNIDIRECTIONAL", "CertId": l.Domains[d]}})
			}
			item["Rules"] = rules
			items = append(items, item)
		}
		return map[string]any{"Listeners": items, "TotalCount": len(items)}, nil
	case "clb.ModifyListener", "clb.ModifyDomainAttributes":
		l := s.listeners[str("ListenerId")]
		if l == nil || l.LB != str("LoadBalancerId") || l.Region != s.regionOfCall() {
			return nil, errf("InvalidParameter.ListenerIdNotFound", "ListenerId %s not found.", str("ListenerId"))
		}
		var cert struct{ SSLMode, CertId string }
		json.Unmarshal(p["Certificate"], &cert)
		if s.certs[cert.CertId] == nil {
			return nil, errf("InvalidParameter", "Certificate.CertId %s does not exist.", cert.CertId)
		}
		if action == "ModifyListener" {
			if l.SNI {
				// GUESS: an SNI listener refuses a listener-level certificate.
				return nil, errf("InvalidParameter", "The listener has SNI enabled; set certificates per domain.")
			}
			l.CertID = cert.CertId
			s.writes["clb:"+l.ID]++
		} else {
			d := str("Domain")
			if _, ok := l.Domains[d]; !ok {
				return nil, errf("InvalidParameter.DomainNotFound", "Domain %s has no rule on listener %s.", d, l.ID)
			}
			l.Domains[d] = cert.CertId
			s.writes["clb:"+l.ID+"/"+d]++
		}
		// The change is asynchronous: its RequestId is the task ID.
		s.pending[reqID] = s.TaskRunning
		return map[string]any{}, nil
	case "clb.DescribeTaskStatus":
		id := str("TaskId")
		left, ok := s.pending[id]
		if !ok {
			return nil, errf("InvalidParameter", "TaskId %s not found.", id)
		}
		if left > 0 {
			s.pending[id] = left - 1
			return map[string]any{"Status": 2}, nil
		}
		return map[string]any{"Status": 0}, nil

	// --- TEO ---
	case "teo.DescribeZones":
		var ids []string
		for z := range s.zones {
			ids = append(ids, z)
		}
		sort.Strings(ids)
		total := len(ids)
		items := []map[string]any{}
		for _, z := range page(ids, num("Offset", 0), num("Limit", 20)) {
			items = append(items, map[string]any{"ZoneId": z, "ZoneName": z + ".example"})
		}
		return map[string]any{"TotalCount": total, "Zones": items}, nil
	case "teo.DescribeAccelerationDomains":
		z := str("ZoneId")
		if s.zones[z] == nil {
			return nil, errf("ResourceNotFound", "ZoneId %s not found.", z)
		}
		var filters []struct {
			Name   string
			Values []string
		}
		json.Unmarshal(p["Filters"], &filters)
		var names []string
		for d := range s.zones[z] {
			ok := true
			for _, f := range filters {
				if f.Name == "domain-name" && !contains(f.Values, d) {
					ok = false
				}
			}
			if ok {
				names = append(names, d)
			}
		}
		sort.Strings(names)
		total := len(names)
		items := []map[string]any{}
		for _, d := range page(names, num("Offset", 0), num("Limit", 20)) {
			st := s.zones[z][d]
			list := []map[string]any{}
			for _, id := range st.CertIDs {
				list = append(list, map[string]any{"CertId": id, "Alias": s.aliasOf(id), "Type": "upload", "Status": "deployed"})
			}
			items = append(items, map[string]any{"ZoneId": z, "DomainName": d, "DomainStatus": "online",
				"Certificate": map[string]any{"Mode": st.Mode, "List": list}})
		}
		return map[string]any{"TotalCount": total, "AccelerationDomains": items}, nil
	case "teo.ModifyHostsCertificate":
		z := str("ZoneId")
		if s.zones[z] == nil {
			return nil, errf("ResourceNotFound", "ZoneId %s not found.", z)
		}
		var hosts []string
		json.Unmarshal(p["Hosts"], &hosts)
		var certs []struct{ CertId string }
		json.Unmarshal(p["ServerCertInfo"], &certs)
		mode := str("Mode")
		if mode == "" {
			mode = "sslcert" // GUESS: without Mode, ServerCertInfo implies sslcert (the older form of the call).
		}
		if mode != "disable" && mode != "eofreecert" && mode != "sslcert" {
			return nil, errf("InvalidParameter", "Mode %s is not disable, eofreecert or sslcert.", mode)
		}
		var ids []string
		for _, c := range certs {
			if s.certs[c.CertId] == nil {
				return nil, errf("InvalidParameter.CertNotExisted", "Certificate %s does not exist.", c.CertId)
			}
			ids = append(ids, c.CertId)
		}
		if mode == "sslcert" && len(ids) == 0 {
			return nil, errf("InvalidParameter", "Mode sslcert needs ServerCertInfo.")
		}
		for _, h := range hosts {
			if s.zones[z][h] == nil {
				return nil, errf("ResourceNotFound", "Domain %s is not in zone %s.", h, z)
			}
		}
		for _, h := range hosts {
			st := s.zones[z][h]
			st.Mode, st.CertIDs = mode, nil
			if mode == "sslcert" {
				st.CertIDs = ids
			}
			s.writes["teo:"+z+"/"+h]++
		}
		return map[string]any{}, nil

	// --- STS ---
	case "sts.AssumeRole":
		role := str("RoleArn")
		if !strings.HasPrefix(role, "qcs::cam::") {
			return nil, errf("InvalidParameter.ResourceError", "RoleArn %s is malformed.", role)
		}
		id, key, tok := s.id("AKIDtmp"), s.id("tmpkey-"), s.id("token-")
		s.keys[id], s.tokens[id] = key, tok
		exp := s.now().Add(time.Hour)
		return map[string]any{"Credentials": map[string]any{"TmpSecretId": id, "TmpSecretKey": key, "Token": tok},
			"ExpiredTime": exp.Unix(), "Expiration": exp.UTC().Format(time.RFC3339)}, nil
	}
	if _, ok := versions[service]; !ok {
		return nil, errf("InvalidAction", "Service %s is not served by this fake.", service)
	}
	return nil, errf("InvalidAction", "The action %s of %s is not served by this fake.", action, service)
}

// region of the current call: set by serve through the header (the
// handler holds mu, so one call at a time reads it).
func (s *Server) regionOfCall() string { return s.curRegion }

func (s *Server) newCert(pub, alias string) (*Cert, error) {
	sha, names, notAfter := leafOf(pub)
	c := &Cert{ID: s.id("cf"), Alias: alias, PublicKey: pub, Sha: sha, Inserted: s.now(), NotAfter: notAfter}
	if len(names) > 0 {
		c.Domain = names[0]
	}
	s.certs[c.ID] = c
	return c, nil
}

func (s *Server) aliasOf(id string) string {
	if c := s.certs[id]; c != nil {
		return c.Alias
	}
	return ""
}

func (s *Server) inUse(id string) bool {
	for _, d := range s.cdn {
		if d.CertID == id {
			return true
		}
	}
	for _, l := range s.listeners {
		if l.CertID == id {
			return true
		}
		for _, c := range l.Domains {
			if c == id {
				return true
			}
		}
	}
	for _, z := range s.zones {
		for _, d := range z {
			if contains(d.CertIDs, id) {
				return true
			}
		}
	}
	return false
}

func leafOf(p string) (sha string, names []string, notAfter time.Time) {
	blk, _ := pem.Decode([]byte(p))
	if blk == nil {
		return "", nil, time.Time{}
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return "", nil, time.Time{}
	}
	sum := sha256.Sum256(blk.Bytes)
	return strings.ToUpper(hex.EncodeToString(sum[:])), c.DNSNames, c.NotAfter
}

func page[T any](l []T, off, lim int) []T {
	if off >= len(l) {
		return nil
	}
	l = l[off:]
	if lim > 0 && lim < len(l) {
		l = l[:lim]
	}
	return l
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

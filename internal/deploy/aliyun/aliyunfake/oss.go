package aliyunfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Bucket is an OSS bucket with its custom domains (CNAMEs).
type Bucket struct {
	Name, Region string
	// Cnames maps a custom domain to the CertId bound to it
	// ("<CAS CertId>-cn-hangzhou"; "" for none).
	Cnames map[string]string
}

// AddBucket adds a bucket with custom domains, each bound to certID ("" for
// none).
func (f *Fake) AddBucket(region, name, certID string, domains ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.buckets == nil {
		f.buckets = map[string]*Bucket{}
	}
	b := &Bucket{Name: name, Region: region, Cnames: map[string]string{}}
	for _, d := range domains {
		b.Cnames[d] = certID
	}
	f.buckets[name] = b
}

// SetOSSCert binds certID to a bucket's custom domain.
func (f *Fake) SetOSSCert(bucket, domain, certID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buckets[bucket].Cnames[domain] = certID
}

// OSSCert returns the CertId bound to a bucket's custom domain ("" none).
func (f *Fake) OSSCert(bucket, domain string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b := f.buckets[bucket]; b != nil {
		return b.Cnames[domain]
	}
	return ""
}

type ossError struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	RequestID string `xml:"RequestId"`
	HostID    string `xml:"HostId"`
}

// serveOSS answers an OSS request (signed OSS4-HMAC-SHA256, path-style
// addressing: /BUCKET/?cname).
func (f *Fake) serveOSS(w http.ResponseWriter, r *http.Request, rid string) {
	w.Header().Set("x-oss-request-id", rid)
	fail := func(aerr *apiError) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(aerr.status)
		b, _ := xml.Marshal(ossError{Code: aerr.code, Message: aerr.message, RequestID: rid, HostID: r.Host})
		w.Write(append([]byte(xml.Header), b...))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		fail(errorf(400, "InvalidArgument", "The body could not be read."))
		return
	}
	bucket, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	ak, aerr := f.verifyOSS(r, bucket)
	if aerr != nil {
		fail(aerr)
		return
	}
	q := r.URL.Query()
	action := "ListBuckets"
	switch {
	case bucket == "":
	case q.Has("cname") && r.Method == http.MethodGet:
		action = "ListCname"
	case q.Has("cname") && r.Method == http.MethodPost && q.Get("comp") == "add":
		action = "PutCname"
	default:
		fail(errorf(400, "NotImplemented", "The fake answers ListBuckets, ListCname and PutCname only."))
		return
	}
	f.mu.Lock()
	f.calls[action]++
	lat := f.latency
	f.mu.Unlock()
	if lat > 0 {
		select {
		case <-time.After(lat):
		case <-r.Context().Done():
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.denied[ak+"/"+action] {
		fail(errorf(403, "AccessDenied", "You have no right to access this object because of bucket acl."))
		return
	}
	for _, key := range []string{action, "*"} {
		if fs := f.faults[key]; len(fs) > 0 {
			fs[0].n--
			code := fs[0].code
			if fs[0].n <= 0 {
				f.faults[key] = fs[1:]
			}
			fail(faultError(code))
			return
		}
	}
	var out any
	switch action {
	case "ListBuckets":
		type bucketXML struct {
			Name, Region, Location, CreationDate string
		}
		res := struct {
			XMLName xml.Name `xml:"ListAllMyBucketsResult"`
			Owner   struct{ ID, DisplayName string }
			Buckets struct {
				Bucket []bucketXML
			}
		}{}
		names := make([]string, 0, len(f.buckets))
		for n := range f.buckets {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			b := f.buckets[n]
			res.Buckets.Bucket = append(res.Buckets.Bucket, bucketXML{n, b.Region, "oss-" + b.Region, "2024-01-01T00:00:00.000Z"})
		}
		out = res
	case "ListCname", "PutCname":
		b := f.buckets[bucket]
		if b == nil {
			fail(errorf(404, "NoSuchBucket", "The specified bucket does not exist."))
			return
		}
		if action == "PutCname" {
			if aerr := f.putCname(b, body); aerr != nil {
				fail(aerr)
				return
			}
			w.WriteHeader(http.StatusOK)
			return
		}
		type certXML struct {
			Type, CertId, Status, CreationDate, Fingerprint, ValidStartDate, ValidEndDate string
		}
		type cnameXML struct {
			Domain, LastModified, Status string
			Certificate                  *certXML `xml:",omitempty"`
		}
		res := struct {
			XMLName xml.Name `xml:"ListCnameResult"`
			Bucket  string
			Owner   string
			Cname   []cnameXML
		}{Bucket: b.Name, Owner: "1234567890"}
		domains := make([]string, 0, len(b.Cnames))
		for d := range b.Cnames {
			domains = append(domains, d)
		}
		sort.Strings(domains)
		for _, d := range domains {
			c := cnameXML{Domain: d, LastModified: "2024-01-01T00:00:00.000Z", Status: "Enabled"}
			if id := b.Cnames[d]; id != "" {
				x := f.cas[casIDOfALB(id)]
				c.Certificate = &certXML{Type: "CAS", CertId: id, Status: "Enabled"}
				if x != nil {
					c.Certificate.Fingerprint = colonHex(strings.ToLower(x.Fingerprint))
					c.Certificate.ValidEndDate = x.NotAfter.UTC().Format("Jan 2 15:04:05 2006 GMT")
				}
			}
			res.Cname = append(res.Cname, c)
		}
		out = res
	}
	w.Header().Set("Content-Type", "application/xml")
	b, _ := xml.Marshal(out)
	w.Write(append([]byte(xml.Header), b...))
}

func (f *Fake) putCname(b *Bucket, body []byte) *apiError {
	var cfg struct {
		Cname struct {
			Domain                   string
			CertificateConfiguration *struct {
				CertId, PreviousCertId   string
				Force, DeleteCertificate bool
			}
		}
	}
	if err := xml.Unmarshal(body, &cfg); err != nil {
		return errorf(400, "MalformedXML", "The XML you provided was not well-formed.")
	}
	d := cfg.Cname.Domain
	cur, ok := b.Cnames[d]
	if !ok {
		return errorf(404, "NoSuchCname", "The specified CNAME %s is not bound to the bucket.", d)
	}
	cc := cfg.Cname.CertificateConfiguration
	if cc == nil {
		return nil
	}
	if cc.DeleteCertificate {
		b.Cnames[d] = ""
		return nil
	}
	if !cc.Force && cc.PreviousCertId != cur {
		return errorf(409, "CertificateIdNotMatch", "The PreviousCertId %q does not match the certificate bound now.", cc.PreviousCertId)
	}
	if f.cas[casIDOfALB(cc.CertId)] == nil {
		return errorf(400, "InvalidCertificate", "The certificate %s does not exist.", cc.CertId)
	}
	b.Cnames[d] = cc.CertId
	return nil
}

// verifyOSS checks an OSS4-HMAC-SHA256 Authorization header as OSS does and
// returns the AccessKeyId.
func (f *Fake) verifyOSS(r *http.Request, bucket string) (string, *apiError) {
	auth := strings.TrimPrefix(r.Header.Get("Authorization"), "OSS4-HMAC-SHA256 ")
	fields := map[string]string{}
	for _, p := range strings.Split(auth, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		fields[k] = v
	}
	scope := strings.SplitN(fields["Credential"], "/", 2)
	if len(scope) != 2 || fields["Signature"] == "" {
		return "", errorf(400, "InvalidArgument", "Authorization header is invalid.")
	}
	ak := scope[0]
	parts := strings.Split(scope[1], "/") // date/region/oss/aliyun_v4_request
	if len(parts) != 4 || parts[2] != "oss" || parts[3] != "aliyun_v4_request" {
		return "", errorf(400, "InvalidArgument", "The Credential scope is invalid.")
	}
	secret, aerr := f.secretFor(ak, r.Header.Get("x-oss-security-token"))
	if aerr != nil {
		if aerr.code == "InvalidAccessKeyId.NotFound" {
			aerr = errorf(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records.")
		}
		return "", aerr
	}
	date := r.Header.Get("x-oss-date")
	ts, err := time.Parse("20060102T150405Z", date)
	if err != nil || !strings.HasPrefix(date, parts[0]) {
		return "", errorf(403, "AccessDenied", "The x-oss-date header is missing or does not match the Credential date.")
	}
	f.mu.Lock()
	now := f.now()
	f.mu.Unlock()
	if d := now.Sub(ts); d > 15*time.Minute || d < -15*time.Minute {
		return "", errorf(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.")
	}
	uri := "/"
	if bucket != "" {
		uri += bucket + "/"
	}
	var additional []string
	if a := fields["AdditionalHeaders"]; a != "" {
		additional = strings.Split(a, ";")
	}
	var headers []string
	for k := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-oss-") || lk == "content-type" || lk == "content-md5" {
			headers = append(headers, lk)
		} else {
			for _, a := range additional {
				if a == lk {
					headers = append(headers, lk)
				}
			}
		}
	}
	sort.Strings(headers)
	var hb bytes.Buffer
	for _, k := range headers {
		vals := r.Header.Values(k)
		for i := range vals {
			vals[i] = strings.TrimSpace(vals[i])
		}
		fmt.Fprintf(&hb, "%s:%s\n", k, strings.Join(vals, ","))
	}
	var params []string
	values := map[string]string{}
	for _, kv := range strings.Split(strings.ReplaceAll(r.URL.RawQuery, "+", "%20"), "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		values[k] = v
		params = append(params, k)
	}
	sort.Strings(params)
	var qb strings.Builder
	for _, k := range params {
		if qb.Len() > 0 {
			qb.WriteByte('&')
		}
		qb.WriteString(k)
		if values[k] != "" {
			qb.WriteString("=" + values[k])
		}
	}
	payload := r.Header.Get("x-oss-content-sha256")
	if payload == "" {
		payload = "UNSIGNED-PAYLOAD"
	}
	canon := strings.Join([]string{r.Method, uri, qb.String(), hb.String(), strings.Join(additional, ";"), payload}, "\n")
	ch := sha256.Sum256([]byte(canon))
	toSign := "OSS4-HMAC-SHA256\n" + date + "\n" + scope[1] + "\n" + hex.EncodeToString(ch[:])
	key := []byte("aliyun_v4" + secret)
	for _, p := range parts {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(p))
		key = m.Sum(nil)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(toSign))
	if !hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), []byte(fields["Signature"])) {
		return "", errorf(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
	}
	return ak, nil
}

package aliyun

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/certfleet/certfleet/internal/deploy"
)

// UploadPrefix starts the name of every certificate certfleet uploads
// (to CAS and to SLB); Sweep deletes nothing else.
const UploadPrefix = "certfleet-"

// UploadName is the name certfleet gives its upload of a certificate whose
// leaf has SHA-256 sha2 (upper-case hex): "certfleet-" and its first 16
// digits, lower case. The same certificate always gets the same name.
func UploadName(sha2 string) string {
	s := strings.ToLower(sha2)
	if len(s) > 16 {
		s = s[:16]
	}
	return UploadPrefix + s
}

// LeafSHA256 returns the upper-case hex SHA-256 of the DER of the first
// certificate in pemText, "" when there is none.
func LeafSHA256(pemText string) string {
	b, _ := pem.Decode([]byte(pemText))
	if b == nil || b.Type != "CERTIFICATE" {
		return ""
	}
	sum := sha256.Sum256(b.Bytes)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// BundleSHA256 is b.Sha2, or computed from its leaf when the engine left it
// empty.
func BundleSHA256(b deploy.Bundle) string {
	if b.Sha2 != "" {
		return strings.ToUpper(b.Sha2)
	}
	return LeafSHA256(b.CertPEM)
}

// FullChain is the PEM products want: the leaf then the intermediates.
func FullChain(b deploy.Bundle) string {
	if b.FullChainPEM != "" {
		return b.FullChainPEM
	}
	return strings.TrimRight(b.CertPEM, "\n") + "\n" + b.ChainPEM
}

// CASCert is one certificate of the account's certificate service, as
// ListUserCertificateOrder (OrderType UPLOAD) lists it.
type CASCert struct {
	CertificateID int64 `json:"CertificateId"`
	Name          string
	Sha2          string
	CommonName    string
	Sans          string
	CertEndTime   int64
}

// CASCerts lists the account's uploaded certificates.
func (c *Client) CASCerts(ctx context.Context) ([]CASCert, error) {
	var all []CASCert
	for page := 1; ; page++ {
		var out struct {
			CertificateOrderList []CASCert
			TotalCount           int64
		}
		if err := c.Call(ctx, CAS, false, "ListUserCertificateOrder", map[string]string{
			"OrderType": "UPLOAD", "CurrentPage": strconv.Itoa(page), "ShowSize": "100"}, &out); err != nil {
			return nil, err
		}
		all = append(all, out.CertificateOrderList...)
		if len(out.CertificateOrderList) == 0 || int64(len(all)) >= out.TotalCount {
			return all, nil
		}
	}
}

// UploadCAS returns the CAS CertId of b in the account's certificate
// service, uploading it (UploadUserCertificate, named UploadName) only when
// no certificate with the same SHA-256 is there: once per fingerprint, even
// when many deployments ask at once.
func (c *Client) UploadCAS(ctx context.Context, b deploy.Bundle) (int64, error) {
	if b.CertPEM == "" || b.KeyPEM == "" {
		return 0, deploy.Permanentf("aliyun: certificate %d has no certificate or no private key to upload", b.CertID)
	}
	sha := BundleSHA256(b)
	if sha == "" {
		return 0, deploy.Permanentf("aliyun: certificate %d: its PEM holds no certificate", b.CertID)
	}
	v, err := c.Once(ctx, "CAS/"+sha, func() (string, error) {
		certs, err := c.CASCerts(ctx)
		if err != nil {
			return "", err
		}
		var id int64
		for _, x := range certs {
			if strings.EqualFold(x.Sha2, sha) && x.CertificateID > id {
				id = x.CertificateID
			}
		}
		if id == 0 {
			var out struct {
				CertID int64 `json:"CertId"`
			}
			if err := c.Call(ctx, CAS, false, "UploadUserCertificate", map[string]string{
				"Name": UploadName(sha), "Cert": FullChain(b), "Key": b.KeyPEM}, &out); err != nil {
				return "", fmt.Errorf("upload certificate %d to CAS: %w", b.CertID, err)
			}
			id = out.CertID
		}
		return strconv.FormatInt(id, 10), nil
	})
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// ForgetCAS drops the cached upload of sha (after the provider said the
// certificate is gone).
func (c *Client) ForgetCAS(sha string) {
	c.Forget("CAS/" + strings.ToUpper(sha))
}

// CASDetail returns what CAS says of certificate id (GetUserCertificateDetail,
// without the PEM): its SHA-256, common name and SANs.
func (c *Client) CASDetail(ctx context.Context, id int64) (CASCert, error) {
	var out struct {
		ID     int64 `json:"Id"`
		Name   string
		Sha2   string
		Common string
		Sans   string
	}
	if err := c.Call(ctx, CAS, false, "GetUserCertificateDetail", map[string]string{
		"CertId": strconv.FormatInt(id, 10), "CertFilter": "true"}, &out); err != nil {
		return CASCert{}, err
	}
	return CASCert{CertificateID: id, Name: out.Name, Sha2: strings.ToUpper(out.Sha2), CommonName: out.Common, Sans: out.Sans}, nil
}

// Names returns the host names a CAS certificate covers.
func (x CASCert) Names() []string {
	names := []string{}
	if x.CommonName != "" {
		names = append(names, strings.ToLower(x.CommonName))
	}
	for _, s := range strings.Split(x.Sans, ",") {
		if s = strings.ToLower(strings.TrimSpace(s)); s != "" {
			names = append(names, s)
		}
	}
	return names
}

// Covers reports whether a certificate name (possibly "*.example.com")
// matches host.
func Covers(name, host string) bool {
	name, host = strings.ToLower(name), strings.ToLower(host)
	if name == host {
		return true
	}
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		_, after, found := strings.Cut(host, ".")
		return found && after == rest
	}
	return false
}

// CASSha2 returns the SHA-256 of CAS certificate id (GetUserCertificateDetail).
func (c *Client) CASSha2(ctx context.Context, id int64) (string, error) {
	var out struct{ Sha2 string }
	if err := c.Call(ctx, CAS, false, "GetUserCertificateDetail", map[string]string{
		"CertId": strconv.FormatInt(id, 10), "CertFilter": "true"}, &out); err != nil {
		return "", err
	}
	return strings.ToUpper(out.Sha2), nil
}

// Uploaded is one certificate certfleet uploaded, for SweepUploads.
type Uploaded struct {
	ID   string
	Name string
	// Order sorts uploads oldest first (the provider's ids grow).
	Order int64
}

// SweepUploads deletes the uploads not in use, keeping the newest keep of
// them; only names starting with UploadPrefix are considered. del deletes
// one; an error deleting one (in use by a product certfleet did not ask,
// say) is remembered and the sweep goes on. It returns what it deleted.
func SweepUploads(ctx context.Context, ups []Uploaded, inUse map[string]bool, keep int, del func(context.Context, string) error) ([]string, error) {
	var idle []Uploaded
	for _, u := range ups {
		if strings.HasPrefix(u.Name, UploadPrefix) && !inUse[u.ID] {
			idle = append(idle, u)
		}
	}
	sort.Slice(idle, func(i, j int) bool { return idle[i].Order > idle[j].Order })
	if keep < 0 {
		keep = 0
	}
	if keep >= len(idle) {
		return nil, nil
	}
	var deleted []string
	var firstErr error
	for _, u := range idle[keep:] {
		if err := del(ctx, u.ID); err != nil {
			if ctx.Err() != nil {
				return deleted, err
			}
			if firstErr == nil {
				firstErr = fmt.Errorf("delete %s (%s): %w", u.ID, u.Name, err)
			}
			continue
		}
		deleted = append(deleted, u.ID)
	}
	return deleted, firstErr
}

// CASUser lists the CAS CertIds a product's bindings use in the client's
// region, for the CAS sweep.
type CASUser func(ctx context.Context, c *Client) ([]int64, error)

// RegisterCASUser adds a product whose bindings keep CAS certificates in
// use: every CAS sweep asks each registered product, so that CDN's sweep
// never deletes what an ALB listener serves.
func (h *Hub) RegisterCASUser(product string, f CASUser) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.casUsers == nil {
		h.casUsers = map[string]CASUser{}
	}
	h.casUsers[product] = f
}

// Previous reads into v the binding a Snapshot recorded and reports true.
// With nothing recorded it reports false: the rollback then binds bundle,
// the certificate the engine says the resource held, and is refused
// permanently when there is none.
func Previous(display string, previous []byte, bundle deploy.Bundle, v any) (recorded bool, err error) {
	if len(previous) > 0 {
		if err := json.Unmarshal(previous, v); err != nil {
			return false, deploy.Permanentf("%s: the recorded previous binding is unreadable: %v", display, err)
		}
		return true, nil
	}
	if bundle.CertID == 0 {
		return false, deploy.Permanentf("%s: nothing was recorded before the deployment, and no certificate to restore", display)
	}
	return false, nil
}

// KeepPrevious is a resource's KeepPrevious Config value (nil: unset):
// how many of certfleet's unused uploads a sweep keeps, 1 by default.
func KeepPrevious(v *int) int {
	if v == nil {
		return 1
	}
	return *v
}

// SweepCASFor is the Sweep of a product that binds CAS certificates: it
// opens the product's client for t and runs SweepCAS.
func (h *Hub) SweepCASFor(ctx context.Context, t deploy.Target, product, endpoint string, keepPrevious *int) error {
	c, err := h.Client(t, product, endpoint)
	if err != nil {
		return err
	}
	_, err = c.SweepCAS(ctx, KeepPrevious(keepPrevious))
	return err
}

// SweepCAS deletes CAS certificates certfleet uploaded that no binding of a
// registered product uses, keeping the newest keep of them.
func (c *Client) SweepCAS(ctx context.Context, keep int) ([]string, error) {
	h := c.hub
	h.mu.Lock()
	users := make([]CASUser, 0, len(h.casUsers))
	for _, f := range h.casUsers {
		users = append(users, f)
	}
	h.mu.Unlock()
	inUse := map[string]bool{}
	shared := *c
	shared.endpoint = "" // the resource's own Endpoint is for its own product only
	for _, f := range users {
		ids, err := f(ctx, &shared)
		if err != nil {
			return nil, fmt.Errorf("aliyun: CAS sweep: list bindings: %w", err)
		}
		for _, id := range ids {
			inUse[strconv.FormatInt(id, 10)] = true
		}
	}
	certs, err := c.CASCerts(ctx)
	if err != nil {
		return nil, fmt.Errorf("aliyun: CAS sweep: %w", err)
	}
	ups := make([]Uploaded, 0, len(certs))
	sha := map[string]string{}
	for _, x := range certs {
		id := strconv.FormatInt(x.CertificateID, 10)
		ups = append(ups, Uploaded{ID: id, Name: x.Name, Order: x.CertificateID})
		sha[id] = x.Sha2
	}
	deleted, err := SweepUploads(ctx, ups, inUse, keep, func(ctx context.Context, id string) error {
		return c.Call(ctx, CAS, false, "DeleteUserCertificate", map[string]string{"CertId": id}, nil)
	})
	for _, id := range deleted {
		c.ForgetCAS(sha[id])
	}
	if err != nil {
		return deleted, fmt.Errorf("aliyun: CAS sweep: %w", err)
	}
	return deleted, nil
}

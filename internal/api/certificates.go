package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/certs"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

// expiringWindow is how close to expiry a certificate counts as WILLEXPIRED.
const expiringWindow = 30 * 24 * time.Hour

func (a *API) uploadUserCertificate(ctx context.Context, c *call) (any, error) {
	name, err := c.params.required("Name")
	if err != nil {
		return nil, err
	}
	if name, err = c.params.text("Name", 128); err != nil {
		return nil, err
	}
	certPEM, err := c.params.required("Cert")
	if err != nil {
		return nil, err
	}
	keyPEM, err := c.params.required("Key")
	if err != nil {
		return nil, err
	}
	parsed, err := certs.Policy{AllowRSA1024: a.opts.AllowRSA1024}.Parse(certPEM, keyPEM)
	if err != nil {
		var ce *certs.Error
		if errors.As(err, &ce) {
			return nil, errInvalid(ce.Param, "%s", ce.Message)
		}
		return nil, err
	}
	info := parsed.Info
	rec := store.Certificate{
		AccountID: c.accountID, Name: name, CertPEM: parsed.CertPEM,
		KeyEnc:     a.box.Seal([]byte(parsed.KeyPEM), secret.PurposeCertKey),
		CommonName: info.CommonName, SANs: info.SANs, Issuer: info.Issuer, OrgName: info.OrgName,
		Country: info.Country, Province: info.Province, City: info.City, Fingerprint: info.Fingerprint,
		Sha2: info.Sha2, SerialNo: info.SerialNo, Algorithm: info.Algorithm, NotBefore: info.NotBefore, NotAfter: info.NotAfter,
	}
	if err := a.store.CertificateCreate(ctx, &rec); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, &Error{Code: "NameAlreadyExists", Status: http.StatusBadRequest,
				Message: "A certificate named " + name + " already exists in this account; choose another Name."}
		}
		return nil, err
	}
	// A renewal redeploys itself; a failure to create that job does not
	// undo the upload.
	if jobID, err := a.renew(ctx, c, rec); errors.Is(err, errRenewalRefused) {
		// logged and told by renew
	} else if err != nil {
		a.log.Warn("renewal job not created", "request_id", c.requestID, "cert_id", rec.ID, "error", err)
	} else if jobID != 0 {
		a.log.Info("renewal job created", "request_id", c.requestID, "cert_id", rec.ID, "job_id", jobID)
	}
	return struct{ CertId int64 }{rec.ID}, nil
}

// certOrder is one item of ListUserCertificateOrder.
type certOrder struct {
	Algorithm       string
	CertificateId   int64
	CertEndTime     int64
	CertStartTime   int64
	CertType        string
	City            string
	CommonName      string
	Country         string
	Domain          string
	DomainCount     int64
	DomainType      string
	EndDate         string
	Expired         bool
	Fingerprint     string
	InstanceId      string
	Issuer          string
	Name            string
	OrgName         string
	Province        string
	ResourceGroupId string
	Sans            string
	SerialNo        string
	Sha2            string
	SourceType      string
	StartDate       string
	Status          string
	TrusteeStatus   string
	Upload          bool
	WildDomainCount int64
	// OrderId and ProductCode: the order (CreateCertificateRequest…) that
	// issued the certificate, when certfleet obtained it (issue 20).
	OrderId     int64  `json:",omitempty"`
	ProductCode string `json:",omitempty"`
}

func certStatus(notAfter, now time.Time) string {
	switch {
	case !now.Before(notAfter):
		return "EXPIRED"
	case notAfter.Sub(now) <= expiringWindow:
		return "WILLEXPIRED"
	}
	return "ISSUED"
}

func instanceID(id int64) string { return "cas-upload-" + itoa(id) }

func (a *API) certOrderOf(c store.Certificate, now time.Time) certOrder {
	var wild int64
	for _, s := range c.SANs {
		if strings.HasPrefix(s, "*.") {
			wild++
		}
	}
	return certOrder{
		Algorithm: c.Algorithm, CertificateId: c.ID, CertEndTime: msInt(c.NotAfter), CertStartTime: msInt(c.NotBefore),
		CertType: "DV", City: c.City, CommonName: c.CommonName, Country: c.Country, Domain: c.CommonName,
		DomainCount: int64(len(c.SANs)), DomainType: certs.DomainType(c.SANs), EndDate: c.NotAfter.UTC().Format(time.DateOnly),
		Expired: !now.Before(c.NotAfter), Fingerprint: c.Fingerprint, InstanceId: instanceID(c.ID), Issuer: c.Issuer, Name: c.Name,
		OrgName: c.OrgName, Province: c.Province, Sans: strings.Join(c.SANs, ","), SerialNo: c.SerialNo, Sha2: c.Sha2,
		SourceType: "upload", StartDate: c.NotBefore.UTC().Format(time.DateOnly), Status: certStatus(c.NotAfter, now),
		TrusteeStatus: "unTrustee", Upload: true, WildDomainCount: wild,
	}
}

func (a *API) listUserCertificateOrder(ctx context.Context, c *call) (any, error) {
	page, size, err := c.params.page(50)
	if err != nil {
		return nil, err
	}
	keyword, err := c.params.text("Keyword", 256)
	if err != nil {
		return nil, err
	}
	now := a.opts.Clock()
	p := store.CertificateListParams{AccountID: c.accountID, Keyword: keyword, Offset: (page - 1) * size, Limit: size}
	switch st := strings.ToUpper(c.params.str("Status")); st {
	case "":
		p.NotAfterFrom = now
	case "ISSUED":
		p.NotAfterFrom = now.Add(expiringWindow)
	case "WILLEXPIRED":
		p.NotAfterFrom, p.NotAfterTo = now, now.Add(expiringWindow)
	case "EXPIRED":
		p.NotAfterTo = now
	case "PAYED", "CHECKING", "CHECKED_FAIL", "NOTACTIVATED", "REVOKED":
		return listCertResponse(page, size, 0, nil), nil // uploaded certificates never have these statuses
	default:
		return nil, errInvalid("Status", "%q is not one of ISSUED, WILLEXPIRED, EXPIRED", st)
	}
	switch ot := strings.ToUpper(c.params.str("OrderType")); ot {
	case "", "CERT", "UPLOAD":
	case "CPACK", "BUY":
		return listCertResponse(page, size, 0, nil), nil // this service sells nothing
	default:
		return nil, errInvalid("OrderType", "%q is not one of CERT, UPLOAD, CPACK, BUY", ot)
	}
	list, total, err := a.store.CertificateList(ctx, p)
	if err != nil {
		return nil, err
	}
	items := make([]certOrder, 0, len(list))
	ids := make([]int64, 0, len(list))
	for _, cert := range list {
		items = append(items, a.certOrderOf(cert, now))
		ids = append(ids, cert.ID)
	}
	orders, err := a.store.OrderByCerts(ctx, c.accountID, ids)
	if err != nil {
		return nil, err
	}
	for _, o := range orders {
		for i := range items {
			if items[i].CertificateId == o.CertID {
				items[i].OrderId, items[i].ProductCode = o.ID, o.ProductCode
			}
		}
	}
	return listCertResponse(page, size, total, items), nil
}

func listCertResponse(page, size int, total int64, items []certOrder) any {
	if items == nil {
		items = []certOrder{}
	}
	return struct {
		CertificateOrderList []certOrder
		CurrentPage          int64
		ShowSize             int64
		TotalCount           int64
	}{items, int64(page), int64(size), total}
}

func (a *API) getUserCertificateDetail(ctx context.Context, c *call) (any, error) {
	id, err := c.params.id("CertId")
	if err != nil {
		return nil, err
	}
	filter, err := c.params.bool("CertFilter")
	if err != nil {
		return nil, err
	}
	cert, err := a.store.CertificateGet(ctx, c.accountID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("Certificate", id)
	}
	if err != nil {
		return nil, err
	}
	now := a.opts.Clock()
	resp := struct {
		Algorithm      string
		BuyInAliyun    bool
		Cert           string `json:",omitempty"`
		CertIdentifier string
		City           string
		Common         string
		Country        string
		EndDate        string
		Expired        bool
		Fingerprint    string
		Id             int64
		InstanceId     string
		Issuer         string
		Key            string `json:",omitempty"`
		Name           string
		OrgName        string
		Province       string
		Sans           string
		SerialNo       string
		Sha2           string
		StartDate      string
	}{
		Algorithm: cert.Algorithm, CertIdentifier: itoa(cert.ID) + "-certfleet", City: cert.City, Common: cert.CommonName,
		Country: cert.Country, EndDate: cert.NotAfter.UTC().Format(time.DateOnly), Expired: !now.Before(cert.NotAfter),
		Fingerprint: cert.Fingerprint, Id: cert.ID, InstanceId: instanceID(cert.ID), Issuer: cert.Issuer, Name: cert.Name,
		OrgName: cert.OrgName, Province: cert.Province, Sans: strings.Join(cert.SANs, ","), SerialNo: cert.SerialNo,
		Sha2: cert.Sha2, StartDate: cert.NotBefore.UTC().Format(time.DateOnly),
	}
	if !filter {
		resp.Cert = cert.CertPEM
		// The key only for callers also allowed ActionReadPrivateKey; the
		// call is then audited (withAudit) whatever its verb.
		if c.allowed(ActionReadPrivateKey) {
			key, err := a.box.Open(cert.KeyEnc, secret.PurposeCertKey)
			if err != nil {
				return nil, err
			}
			resp.Key, c.keyRead = string(key), cert.ID
		}
	}
	return resp, nil
}

func (a *API) deleteUserCertificate(ctx context.Context, c *call) (any, error) {
	id, err := c.params.id("CertId")
	if err != nil {
		return nil, err
	}
	switch err := a.store.CertificateDelete(ctx, c.accountID, id); {
	case errors.Is(err, store.ErrNotFound):
		return nil, errNotFound("Certificate", id)
	case errors.Is(err, store.ErrInUse):
		return nil, errInUse("Certificate", id)
	case err != nil:
		return nil, err
	}
	return nil, nil
}

package api

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/issuance"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

// Issuance is the background side of certificate orders (the
// issuance.Driver): the API creates orders and wakes it.
type Issuance interface {
	// Wake makes the driver look at the orders now.
	Wake()
	// Automatic says whether an order of validateType for domains is
	// answered by certfleet (else the user publishes the answer).
	Automatic(ctx context.Context, accountID int64, validateType string, domains []string) (bool, error)
	// Cleanup removes what automatic mode published for an order.
	Cleanup(ctx context.Context, o store.Order)
	// Forget drops what the driver keeps of a deleted issuer.
	Forget(issuerID int64)
}

var productCodeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (a *API) createIssuer(ctx context.Context, c *call) (any, error) {
	code, err := c.params.required("ProductCode")
	if err != nil {
		return nil, err
	}
	if !productCodeRE.MatchString(code) {
		return nil, errInvalid("ProductCode", "%q must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", code)
	}
	dir, err := c.params.required("DirectoryUrl")
	if err != nil {
		return nil, err
	}
	if u, err := url.Parse(dir); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, errInvalid("DirectoryUrl", "%q is not an https:// URL (an ACME directory, such as https://acme-v02.api.letsencrypt.org/directory)", dir)
	}
	email, err := c.params.text("Email", 256)
	if err != nil {
		return nil, err
	}
	if email != "" && (!strings.Contains(email, "@") || strings.ContainsAny(email, " ,<>")) {
		return nil, errInvalid("Email", "%q is not an email address", email)
	}
	eabID, err := c.params.text("EabKeyId", 256)
	if err != nil {
		return nil, err
	}
	eabHmac := c.params.str("EabHmacKey")
	if (eabID == "") != (eabHmac == "") {
		return nil, errInvalid("EabKeyId", "EabKeyId and EabHmacKey go together (the CA's external account binding)")
	}
	if len(eabHmac) > 1024 {
		return nil, errInvalid("EabHmacKey", "longer than 1024 characters")
	}
	keyType := strings.ToUpper(c.params.str("KeyType"))
	if keyType == "" {
		keyType = "EC256"
	}
	if !slices.Contains(issuance.KeyTypes, keyType) {
		return nil, errInvalid("KeyType", "%q is not one of %s", keyType, strings.Join(issuance.KeyTypes, ", "))
	}
	chain, err := c.params.text("PreferredChain", 256)
	if err != nil {
		return nil, err
	}
	trusted := c.params.str("TrustedCA")
	if trusted != "" {
		if len(trusted) > 256<<10 {
			return nil, errInvalid("TrustedCA", "longer than 256 KiB")
		}
		if err := checkPEMCerts(trusted); err != "" {
			return nil, errInvalid("TrustedCA", "%s", err)
		}
	}
	rec := store.Issuer{AccountID: c.accountID, ProductCode: code, DirectoryURL: dir, Email: email, EabKeyID: eabID,
		KeyType: keyType, PreferredChain: chain, TrustedCA: trusted}
	if eabHmac != "" {
		rec.EabHmacEnc = a.box.Seal([]byte(eabHmac), issuance.PurposeEAB)
	}
	if err := a.store.IssuerCreate(ctx, &rec); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, &Error{Code: "NameAlreadyExists", Status: http.StatusBadRequest,
				Message: "An issuer with ProductCode " + code + " already exists in this account; delete it first or choose another ProductCode."}
		}
		return nil, err
	}
	return struct {
		IssuerId    int64
		ProductCode string
	}{rec.ID, rec.ProductCode}, nil
}

// checkPEMCerts is why s is not a PEM bundle of certificates, "" when it is.
func checkPEMCerts(s string) string {
	rest := []byte(s)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return "holds a " + b.Type + " block; only CERTIFICATE blocks belong in it"
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return "a certificate in it does not parse: " + err.Error()
		}
		n++
	}
	if n == 0 {
		return "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
	}
	return ""
}

func (a *API) listIssuers(ctx context.Context, c *call) (any, error) {
	list, err := a.store.IssuerList(ctx, c.accountID)
	if err != nil {
		return nil, err
	}
	type item struct {
		IssuerId       int64
		ProductCode    string
		DirectoryUrl   string
		Email          string
		EabKeyId       string
		KeyType        string
		PreferredChain string
		TrustedCA      string
		AccountUrl     string
		Default        bool
		CreateTime     int64
	}
	items := make([]item, 0, len(list))
	for _, i := range list {
		items = append(items, item{i.ID, i.ProductCode, i.DirectoryURL, i.Email, i.EabKeyID, i.KeyType, i.PreferredChain,
			i.TrustedCA, i.AccountURL, i.ProductCode == a.opts.DefaultProductCode, msInt(i.Created)})
	}
	return struct {
		Issuers    []item
		TotalCount int64
	}{items, int64(len(items))}, nil
}

func (a *API) deleteIssuer(ctx context.Context, c *call) (any, error) {
	code, err := c.params.required("ProductCode")
	if err != nil {
		return nil, err
	}
	iss, err := a.store.IssuerGet(ctx, c.accountID, code)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoIssuer(code)
	}
	if err != nil {
		return nil, err
	}
	switch err := a.store.IssuerDelete(ctx, c.accountID, code); {
	case errors.Is(err, store.ErrNotFound):
		return nil, errNoIssuer(code)
	case errors.Is(err, store.ErrInUse):
		return nil, &Error{Code: "InUse", Status: http.StatusBadRequest,
			Message: "Issuer " + code + " has orders in progress; cancel them (CancelOrderRequest) or let them finish first."}
	case err != nil:
		return nil, err
	}
	if a.opts.Issuance != nil {
		a.opts.Issuance.Forget(iss.ID)
	}
	return nil, nil
}

func errNoIssuer(code string) *Error {
	return &Error{Code: "NotFound", Status: http.StatusNotFound,
		Message: "No issuer has ProductCode " + code + " in this account; CreateIssuer names one (certfleet issuer add)."}
}

// issuer is the request's issuer: ProductCode, else --default-product-code.
func (a *API) issuer(ctx context.Context, c *call) (store.Issuer, error) {
	code := c.params.str("ProductCode")
	if code == "" {
		code = a.opts.DefaultProductCode
	}
	if code == "" {
		return store.Issuer{}, errInvalid("ProductCode", "is required: no --default-product-code is configured on this server")
	}
	iss, err := a.store.IssuerGet(ctx, c.accountID, code)
	if errors.Is(err, store.ErrNotFound) {
		return store.Issuer{}, errNoIssuer(code)
	}
	return iss, err
}

var domainRE = regexp.MustCompile(`^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// domains parses a comma-separated Domain parameter.
func domains(name, v string, many bool) ([]string, error) {
	var out []string
	for _, d := range strings.Split(v, ",") {
		d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
		if d == "" {
			continue
		}
		if len(d) > 253 || !domainRE.MatchString(d) {
			return nil, errInvalid(name, "%q is not a domain name", d)
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, errMissing(name)
	}
	if !many && len(out) > 1 {
		return nil, errInvalid(name, "names one domain here; CreateCertificateForPackageRequest takes several")
	}
	if len(out) > 100 {
		return nil, errInvalid(name, "names %d domains; at most 100", len(out))
	}
	return out, nil
}

func validateType(c *call, names []string) (string, error) {
	vt := strings.ToUpper(c.params.str("ValidateType"))
	switch vt {
	case "":
		return "", errMissing("ValidateType")
	case "DNS":
	case "FILE":
		for _, n := range names {
			if strings.HasPrefix(n, "*.") {
				return "", errInvalid("ValidateType", "FILE cannot validate the wildcard %s; use DNS", n)
			}
		}
	default:
		return "", errInvalid("ValidateType", "%q is not one of DNS, FILE", vt)
	}
	return vt, nil
}

func (a *API) createCertificateRequest(ctx context.Context, c *call) (any, error) {
	names, err := domains("Domain", c.params.str("Domain"), false)
	if err != nil {
		return nil, err
	}
	return a.newOrder(ctx, c, names, "", 0, nil)
}

func (a *API) createCertificateWithCsrRequest(ctx context.Context, c *call) (any, error) {
	csr, err := c.params.required("Csr")
	if err != nil {
		return nil, err
	}
	return a.newOrder(ctx, c, nil, csr, 0, nil)
}

func (a *API) createCertificateForPackageRequest(ctx context.Context, c *call) (any, error) {
	csr := c.params.str("Csr")
	var names []string
	if csr == "" || c.params.has("Domain") {
		n, err := domains("Domain", c.params.str("Domain"), true)
		if err != nil {
			return nil, err
		}
		names = n
	}
	return a.newOrder(ctx, c, names, csr, 0, nil)
}

// newOrder stores an order for names (or the CSR's names) and wakes the
// driver. Without a CSR a key of the issuer's KeyType is generated and
// sealed; with one, the key is known when the CSR is one of the account's
// (CreateCsr, UploadCsr with Key). A renewal (renewOf, of order prev)
// keeps prev's issuer and validation.
func (a *API) newOrder(ctx context.Context, c *call, names []string, csrPEM string, renewOf int64, prev *store.Order) (any, error) {
	if len(csrPEM) > 64<<10 {
		return nil, errInvalid("Csr", "longer than 64 KiB")
	}
	var iss store.Issuer
	var err error
	if prev != nil {
		iss, err = a.store.IssuerGet(ctx, c.accountID, prev.ProductCode)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNoIssuer(prev.ProductCode)
		}
	} else {
		iss, err = a.issuer(ctx, c)
	}
	if err != nil {
		return nil, err
	}
	var keyEnc []byte
	var csrID int64
	if csrPEM != "" {
		info, err := issuance.ParseCSR(csrPEM)
		if err != nil {
			return nil, errInvalid("Csr", "%v", err)
		}
		if names != nil && !sameNames(names, info.Names) {
			return nil, errInvalid("Domain", "names %s but the Csr names %s; give one or make them agree",
				strings.Join(names, ","), strings.Join(info.Names, ","))
		}
		names = info.Names
		if csr, ok, err := a.knownCsr(ctx, c.accountID, info.KeySha2); err != nil {
			return nil, err
		} else if ok {
			keyEnc, csrID = csr.KeyEnc, csr.ID
		}
	}
	vt := ""
	if prev != nil {
		vt = prev.ValidateType
	} else if vt, err = validateType(c, names); err != nil {
		return nil, err
	}
	if csrPEM == "" {
		key, err := issuance.GenerateKey(iss.KeyType)
		if err != nil {
			return nil, err
		}
		if csrPEM, err = issuance.CreateCSR(key, names, issuance.Subject{Org: c.params.str("CompanyName")}); err != nil {
			return nil, err
		}
		keyPEM, err := issuance.EncodeKey(key)
		if err != nil {
			return nil, err
		}
		keyEnc = a.box.Seal([]byte(keyPEM), secret.PurposeCertKey)
	}
	username, _ := c.params.text("Username", 128)
	phone, _ := c.params.text("Phone", 64)
	email, _ := c.params.text("Email", 256)
	automatic := false
	if a.opts.Issuance != nil {
		if automatic, err = a.opts.Issuance.Automatic(ctx, c.accountID, vt, names); err != nil {
			return nil, err
		}
	}
	o := store.Order{AccountID: c.accountID, IssuerID: iss.ID, ProductCode: iss.ProductCode, Domains: names, ValidateType: vt,
		Manual: !automatic, CsrPEM: csrPEM, KeyEnc: keyEnc, CsrID: csrID, Contact: issuance.ContactJSON(username, phone, email),
		Status: store.OrderPending, RenewOf: renewOf, NextRun: a.opts.Clock()}
	if err := a.store.OrderCreate(ctx, &o); err != nil {
		return nil, err
	}
	if a.opts.Issuance != nil {
		a.opts.Issuance.Wake()
	}
	return struct{ OrderId int64 }{o.ID}, nil
}

func sameNames(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// knownCsr finds the account's CSR with a key whose public key has keySha2.
func (a *API) knownCsr(ctx context.Context, accountID int64, keySha2 string) (store.Csr, bool, error) {
	for off := 0; off < 10000; off += 500 {
		list, _, err := a.store.CsrList(ctx, store.CsrListParams{AccountID: accountID, Offset: off, Limit: 500})
		if err != nil {
			return store.Csr{}, false, err
		}
		for _, c := range list {
			if c.KeySha2 == keySha2 && len(c.KeyEnc) > 0 {
				return c, true, nil
			}
		}
		if len(list) < 500 {
			break
		}
	}
	return store.Csr{}, false, nil
}

func (a *API) order(ctx context.Context, c *call) (store.Order, error) {
	id, err := c.params.id("OrderId")
	if err != nil {
		return store.Order{}, err
	}
	o, err := a.store.OrderGet(ctx, c.accountID, id)
	if errors.Is(err, store.ErrNotFound) {
		return o, errNotFound("Order", id)
	}
	return o, err
}

// orderType is DescribeCertificateState's Type of an order.
func orderType(o store.Order) string {
	switch o.Status {
	case store.OrderPending:
		if o.OrderURL == "" {
			return "payed"
		}
		return "domain_verify"
	case store.OrderVerify:
		return "domain_verify"
	case store.OrderProcess:
		return "process"
	case store.OrderFailed:
		return "verify_fail"
	case store.OrderIssued:
		return "certificate"
	case store.OrderCancelled:
		return "cancelled"
	}
	return string(o.Status)
}

func (a *API) describeCertificateState(ctx context.Context, c *call) (any, error) {
	o, err := a.order(ctx, c)
	if err != nil {
		return nil, err
	}
	type challenge struct {
		Domain       string
		Type         string
		RecordType   string `json:",omitempty"`
		RecordDomain string `json:",omitempty"`
		RecordValue  string `json:",omitempty"`
		Uri          string `json:",omitempty"`
		Content      string `json:",omitempty"`
		Valid        bool
	}
	resp := struct {
		Type         string
		Domain       string
		ValidateType string
		Manual       bool
		RecordType   string `json:",omitempty"`
		RecordDomain string `json:",omitempty"`
		RecordValue  string `json:",omitempty"`
		Uri          string `json:",omitempty"`
		Content      string `json:",omitempty"`
		Certificate  string `json:",omitempty"`
		PrivateKey   string `json:",omitempty"`
		Message      string `json:",omitempty"`
		CertId       int64  `json:",omitempty"`
		ACMERequests int
		Challenges   []challenge
	}{Type: orderType(o), Domain: strings.Join(o.Domains, ","), ValidateType: o.ValidateType, Manual: o.Manual,
		Message: o.Message, CertId: o.CertID, ACMERequests: o.ACMERequests, Challenges: []challenge{}}
	if o.Status != store.OrderFailed && o.Status != store.OrderCancelled && o.Status != store.OrderIssued {
		resp.Message = "" // a transient error being retried is not the order's outcome
	}
	if resp.Type == "domain_verify" {
		first := true
		for _, ch := range o.Challenges {
			x := challenge{Domain: ch.Domain, Type: ch.Type, Valid: ch.Valid}
			if ch.Type == "dns-01" {
				x.RecordType, x.RecordDomain, x.RecordValue = "TXT", ch.RecordName, ch.RecordValue
			} else if !ch.Valid {
				x.Uri, x.Content = "http://"+ch.Domain+"/.well-known/acme-challenge/"+ch.Token, ch.KeyAuth
			}
			resp.Challenges = append(resp.Challenges, x)
			if first && !ch.Valid {
				first = false
				resp.RecordType, resp.RecordDomain, resp.RecordValue, resp.Uri, resp.Content = x.RecordType, x.RecordDomain, x.RecordValue, x.Uri, x.Content
			}
		}
	}
	if o.Status == store.OrderIssued {
		resp.Certificate = o.CertPEM
		if len(o.KeyEnc) > 0 && c.allowed(ActionReadPrivateKey) {
			key, err := a.box.Open(o.KeyEnc, secret.PurposeCertKey)
			if err != nil {
				return nil, err
			}
			resp.PrivateKey, c.keyRead = string(key), o.CertID
		}
	}
	return resp, nil
}

// cancelOrder stops an order in progress (CancelOrderRequest,
// CancelCertificateForPackageRequest).
func (a *API) cancelOrder(ctx context.Context, c *call) (any, error) {
	for range 5 {
		o, err := a.order(ctx, c)
		if err != nil {
			return nil, err
		}
		switch o.Status {
		case store.OrderPending, store.OrderVerify, store.OrderProcess:
		default:
			return nil, errStatus("Order %d is %s; only an order being applied for (payed, domain_verify, process) can be cancelled.", o.ID, orderType(o))
		}
		o.Status, o.Message, o.NextRun = store.OrderCancelled, "cancelled by "+c.principal, time.Time{}
		if err := a.store.OrderUpdate(ctx, &o); errors.Is(err, store.ErrConflict) {
			continue // the driver moved it meanwhile: look again
		} else if err != nil {
			return nil, err
		}
		if a.opts.Issuance != nil {
			a.opts.Issuance.Cleanup(ctx, o)
		}
		return nil, nil
	}
	return nil, errStatus("The order keeps changing; try again.")
}

func (a *API) deleteCertificateRequest(ctx context.Context, c *call) (any, error) {
	o, err := a.order(ctx, c)
	if err != nil {
		return nil, err
	}
	switch o.Status {
	case store.OrderFailed, store.OrderCancelled:
	case store.OrderIssued:
		return nil, errStatus("Order %d issued certificate %d; delete the certificate (DeleteUserCertificate) instead.", o.ID, o.CertID)
	default:
		return nil, errStatus("Order %d is %s; cancel it first (CancelOrderRequest).", o.ID, orderType(o))
	}
	if err := a.store.OrderDelete(ctx, c.accountID, o.ID); errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("Order", o.ID)
	} else if err != nil {
		return nil, err
	}
	return nil, nil
}

// renewCertificateOrderForPackageRequest orders the renewal of an issued
// order's certificate now (with the Csr given, else a new key).
func (a *API) renewCertificateOrderForPackageRequest(ctx context.Context, c *call) (any, error) {
	o, err := a.order(ctx, c)
	if err != nil {
		return nil, err
	}
	if o.Status != store.OrderIssued {
		return nil, errStatus("Order %d is %s; only an issued order can be renewed.", o.ID, orderType(o))
	}
	if o.RenewalID != 0 {
		if r, err := a.store.OrderGet(ctx, c.accountID, o.RenewalID); err == nil && r.Status != store.OrderFailed && r.Status != store.OrderCancelled {
			return nil, errStatus("Order %d is already being renewed by order %d.", o.ID, r.ID)
		}
	}
	var names []string
	if c.params.str("Csr") == "" {
		names = o.Domains
	}
	out, err := a.newOrder(ctx, c, names, c.params.str("Csr"), o.CertID, &o)
	if err != nil {
		return nil, err
	}
	o.RenewalID = out.(struct{ OrderId int64 }).OrderId
	if err := a.store.OrderUpdate(ctx, &o); err != nil && !errors.Is(err, store.ErrConflict) {
		return nil, err
	}
	return out, nil
}

func (a *API) describePackageState(ctx context.Context, c *call) (any, error) {
	iss, err := a.issuer(ctx, c)
	if err != nil {
		return nil, err
	}
	total, issued, err := a.store.OrderCounts(ctx, c.accountID, iss.ProductCode)
	if err != nil {
		return nil, err
	}
	// An ACME issuer has no purchased quota: TotalCount is what was used.
	return struct {
		ProductCode string
		TotalCount  int64
		UsedCount   int64
		IssuedCount int64
	}{iss.ProductCode, total, total, issued}, nil
}

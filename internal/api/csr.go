package api

import (
	"context"
	"errors"
	"strings"

	"github.com/certfleet/certfleet/internal/issuance"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

func (a *API) createCsr(ctx context.Context, c *call) (any, error) {
	cn, err := c.params.required("CommonName")
	if err != nil {
		return nil, err
	}
	names, err := domains("CommonName", cn, false)
	if err != nil {
		return nil, err
	}
	if c.params.has("Sans") {
		sans, err := domains("Sans", c.params.str("Sans"), true)
		if err != nil {
			return nil, err
		}
		for _, s := range sans {
			if s != names[0] {
				names = append(names, s)
			}
		}
	}
	alg := strings.ToUpper(c.params.str("Algorithm"))
	size, hasSize, err := c.params.int64("KeySize")
	if err != nil {
		return nil, err
	}
	var keyType string
	switch alg {
	case "", "RSA":
		alg = "RSA"
		if !hasSize {
			size = 2048
		}
		switch size {
		case 2048, 3072, 4096:
			keyType = "RSA" + itoa(size)
		default:
			return nil, errInvalid("KeySize", "%d is not one of 2048, 3072, 4096 for RSA", size)
		}
	case "ECC":
		if !hasSize {
			size = 256
		}
		switch size {
		case 256, 384:
			keyType = "EC" + itoa(size)
		default:
			return nil, errInvalid("KeySize", "%d is not one of 256, 384 for ECC", size)
		}
	default:
		return nil, errInvalid("Algorithm", "%q is not one of RSA, ECC", alg)
	}
	subj := issuance.Subject{CommonName: names[0]}
	for _, f := range []struct {
		name string
		max  int
		dst  *string
	}{{"CorpName", 128, &subj.Org}, {"Department", 128, &subj.Unit}, {"CountryCode", 2, &subj.Country},
		{"Province", 128, &subj.Province}, {"Locality", 128, &subj.Locality}} {
		v, err := c.params.text(f.name, f.max)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	name, err := c.params.text("Name", 128)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = names[0]
	}
	key, err := issuance.GenerateKey(keyType)
	if err != nil {
		return nil, err
	}
	csrPEM, err := issuance.CreateCSR(key, names, subj)
	if err != nil {
		return nil, err
	}
	keyPEM, err := issuance.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	info, err := issuance.ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	rec := store.Csr{AccountID: c.accountID, Name: name, CsrPEM: csrPEM, KeyEnc: a.box.Seal([]byte(keyPEM), secret.PurposeCertKey),
		CommonName: names[0], SANs: names, Algorithm: alg, KeySize: int(size), KeySha2: info.KeySha2, CorpName: subj.Org,
		CountryCode: subj.Country, Department: subj.Unit, Locality: subj.Locality, Province: subj.Province}
	if err := a.store.CsrCreate(ctx, &rec); err != nil {
		return nil, err
	}
	return struct {
		CsrId int64
		Csr   string
	}{rec.ID, rec.CsrPEM}, nil
}

// csrKey checks an optional Key parameter against the CSR and seals it.
func (a *API) csrKey(c *call, info issuance.CSRInfo) ([]byte, error) {
	keyPEM := strings.TrimSpace(c.params.v.Get("Key"))
	if keyPEM == "" {
		return nil, nil
	}
	if len(keyPEM) > 64<<10 {
		return nil, errInvalid("Key", "longer than 64 KiB")
	}
	key, err := issuance.ParseKey(keyPEM)
	if err != nil {
		return nil, errInvalid("Key", "%v", err)
	}
	if !issuance.KeyMatches(key, info.CSR) {
		return nil, errInvalid("Key", "is not the private key of the Csr")
	}
	enc, err := issuance.EncodeKey(key)
	if err != nil {
		return nil, errInvalid("Key", "%v", err)
	}
	return a.box.Seal([]byte(enc), secret.PurposeCertKey), nil
}

func (a *API) uploadCsr(ctx context.Context, c *call) (any, error) {
	csrPEM, err := c.params.required("Csr")
	if err != nil {
		return nil, err
	}
	if len(csrPEM) > 64<<10 {
		return nil, errInvalid("Csr", "longer than 64 KiB")
	}
	info, err := issuance.ParseCSR(csrPEM)
	if err != nil {
		return nil, errInvalid("Csr", "%v", err)
	}
	keyEnc, err := a.csrKey(c, info)
	if err != nil {
		return nil, err
	}
	name, err := c.params.text("Name", 128)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = info.Names[0]
	}
	s := info.CSR.Subject
	first := func(v []string) string {
		if len(v) > 0 {
			return v[0]
		}
		return ""
	}
	rec := store.Csr{AccountID: c.accountID, Name: name, CsrPEM: strings.TrimSpace(csrPEM) + "\n", KeyEnc: keyEnc,
		CommonName: info.CommonName, SANs: info.Names, Algorithm: info.Algorithm, KeySize: info.KeySize, KeySha2: info.KeySha2,
		CorpName: first(s.Organization), CountryCode: first(s.Country), Department: first(s.OrganizationalUnit),
		Locality: first(s.Locality), Province: first(s.Province)}
	if err := a.store.CsrCreate(ctx, &rec); err != nil {
		return nil, err
	}
	return struct{ CsrId int64 }{rec.ID}, nil
}

type csrItem struct {
	Algorithm     string
	CommonName    string
	CorpName      string
	CountryCode   string
	CsrId         int64
	Department    string
	HasPrivateKey bool
	KeySha2       string
	KeySize       int32
	Locality      string
	Name          string
	Province      string
	Sans          string
}

func (a *API) listCsr(ctx context.Context, c *call) (any, error) {
	page, size, err := c.params.page(50)
	if err != nil {
		return nil, err
	}
	kw, err := c.params.text("KeyWord", 256)
	if err != nil {
		return nil, err
	}
	alg := strings.ToUpper(c.params.str("Algorithm"))
	if alg != "" && alg != "RSA" && alg != "ECC" {
		return nil, errInvalid("Algorithm", "%q is not one of RSA, ECC", alg)
	}
	list, total, err := a.store.CsrList(ctx, store.CsrListParams{AccountID: c.accountID, Keyword: kw, Algorithm: alg,
		Offset: (page - 1) * size, Limit: size})
	if err != nil {
		return nil, err
	}
	items := make([]csrItem, 0, len(list))
	for _, r := range list {
		items = append(items, csrItem{Algorithm: r.Algorithm, CommonName: r.CommonName, CorpName: r.CorpName, CountryCode: r.CountryCode,
			CsrId: r.ID, Department: r.Department, HasPrivateKey: len(r.KeyEnc) > 0, KeySha2: r.KeySha2, KeySize: int32(r.KeySize),
			Locality: r.Locality, Name: r.Name, Province: r.Province, Sans: strings.Join(r.SANs, ",")})
	}
	return struct {
		CsrList     []csrItem
		CurrentPage int64
		ShowSize    int64
		TotalCount  int64
	}{items, int64(page), int64(size), total}, nil
}

func (a *API) csr(ctx context.Context, c *call) (store.Csr, error) {
	id, err := c.params.id("CsrId")
	if err != nil {
		return store.Csr{}, err
	}
	r, err := a.store.CsrGet(ctx, c.accountID, id)
	if errors.Is(err, store.ErrNotFound) {
		return r, errNotFound("Csr", id)
	}
	return r, err
}

func (a *API) getCsrDetail(ctx context.Context, c *call) (any, error) {
	r, err := a.csr(ctx, c)
	if err != nil {
		return nil, err
	}
	resp := struct {
		Csr        string
		PrivateKey string `json:",omitempty"`
	}{Csr: r.CsrPEM}
	if len(r.KeyEnc) > 0 && c.allowed(ActionReadPrivateKey) {
		key, err := a.box.Open(r.KeyEnc, secret.PurposeCertKey)
		if err != nil {
			return nil, err
		}
		resp.PrivateKey = string(key)
		c.keyRead = r.ID // audited as a key read (CsrId)
	}
	return resp, nil
}

// updateCsr sets the private key of a CSR (UpdateCsr Key).
func (a *API) updateCsr(ctx context.Context, c *call) (any, error) {
	r, err := a.csr(ctx, c)
	if err != nil {
		return nil, err
	}
	if _, err := c.params.required("Key"); err != nil {
		return nil, err
	}
	info, err := issuance.ParseCSR(r.CsrPEM)
	if err != nil {
		return nil, err
	}
	keyEnc, err := a.csrKey(c, info)
	if err != nil {
		return nil, err
	}
	if err := a.store.CsrSetKey(ctx, c.accountID, r.ID, keyEnc); errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("Csr", r.ID)
	} else if err != nil {
		return nil, err
	}
	return nil, nil
}

func (a *API) deleteCsr(ctx context.Context, c *call) (any, error) {
	id, err := c.params.id("CsrId")
	if err != nil {
		return nil, err
	}
	return nil, deleteErr(a.store.CsrDelete(ctx, c.accountID, id), "Csr", id)
}

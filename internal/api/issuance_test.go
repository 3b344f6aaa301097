package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/issuance"
	"github.com/certfleet/certfleet/internal/store"
)

// TestIssuanceParams: bad input to the issuer, order and CSR operations is
// refused with a message naming the parameter, and nothing is stored.
func TestIssuanceParams(t *testing.T) {
	f := setup(t, Options{})
	c := f.generic(t, f.keyID, f.secret, false, nil)
	if _, err := callAPI(c, "CreateIssuer", map[string]string{"ProductCode": "le", "DirectoryUrl": "https://ca.test/dir"}, nil); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := issuance.CreateCSR(key, []string{"csr.test"}, issuance.Subject{})
	otherKey, _ := issuance.GenerateKey("EC256")
	otherPEM, _ := issuance.EncodeKey(otherKey)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	notCert := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	cases := []struct {
		desc   string
		action string
		params map[string]string
		code   string
		says   string
	}{
		{"issuer without a directory", "CreateIssuer", map[string]string{"ProductCode": "x"}, "MissingParameter", "DirectoryUrl"},
		{"plain http directory", "CreateIssuer", map[string]string{"ProductCode": "x", "DirectoryUrl": "http://ca.test/dir"}, "InvalidParameter", "https://"},
		{"bad product code", "CreateIssuer", map[string]string{"ProductCode": "a b", "DirectoryUrl": "https://ca.test/dir"}, "InvalidParameter", "ProductCode"},
		{"unknown key type", "CreateIssuer", map[string]string{"ProductCode": "x", "DirectoryUrl": "https://ca.test/dir", "KeyType": "RSA1024"}, "InvalidParameter", "EC256"},
		{"EAB half given", "CreateIssuer", map[string]string{"ProductCode": "x", "DirectoryUrl": "https://ca.test/dir", "EabKeyId": "k"}, "InvalidParameter", "EabHmacKey"},
		{"TrustedCA not a certificate", "CreateIssuer", map[string]string{"ProductCode": "x", "DirectoryUrl": "https://ca.test/dir", "TrustedCA": notCert}, "InvalidParameter", "PUBLIC KEY"},
		{"duplicate product code", "CreateIssuer", map[string]string{"ProductCode": "le", "DirectoryUrl": "https://ca.test/dir"}, "NameAlreadyExists", "le"},
		{"unknown issuer", "CreateCertificateRequest", map[string]string{"ProductCode": "nope", "Domain": "a.test", "ValidateType": "DNS"}, "NotFound", "nope"},
		{"no product code and no default", "CreateCertificateRequest", map[string]string{"Domain": "a.test", "ValidateType": "DNS"}, "InvalidParameter", "--default-product-code"},
		{"bad validate type", "CreateCertificateRequest", map[string]string{"ProductCode": "le", "Domain": "a.test", "ValidateType": "EMAIL"}, "InvalidParameter", "DNS, FILE"},
		{"wildcard over FILE", "CreateCertificateRequest", map[string]string{"ProductCode": "le", "Domain": "*.a.test", "ValidateType": "FILE"}, "InvalidParameter", "wildcard"},
		{"two domains in CreateCertificateRequest", "CreateCertificateRequest", map[string]string{"ProductCode": "le", "Domain": "a.test,b.test", "ValidateType": "DNS"}, "InvalidParameter", "ForPackage"},
		{"bad domain", "CreateCertificateRequest", map[string]string{"ProductCode": "le", "Domain": "a_b!.test", "ValidateType": "DNS"}, "InvalidParameter", "domain"},
		{"garbage CSR", "CreateCertificateWithCsrRequest", map[string]string{"ProductCode": "le", "Csr": "hello", "ValidateType": "DNS"}, "InvalidParameter", "Csr"},
		{"CSR and Domain disagree", "CreateCertificateForPackageRequest", map[string]string{"ProductCode": "le", "Csr": csr, "Domain": "other.test", "ValidateType": "DNS"}, "InvalidParameter", "csr.test"},
		{"unknown order", "DescribeCertificateState", map[string]string{"OrderId": "99"}, "NotFound", "99"},
		{"CSR with another key", "UploadCsr", map[string]string{"Csr": csr, "Key": otherPEM}, "InvalidParameter", "not the private key"},
		{"CreateCsr RSA 1024", "CreateCsr", map[string]string{"CommonName": "a.test", "KeySize": "1024"}, "InvalidParameter", "2048"},
		{"rfc2136 credential without a zone", "CreateCloudAccess", map[string]string{"CloudName": "rfc2136", "SecretId": "k", "SecretKey": "s", "Config": `{"Nameserver":"127.0.0.1:53"}`}, "InvalidParameter", "Zone"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := callAPI(c, tc.action, tc.params, nil)
			code, _ := sdkCode(t, err)
			if code != tc.code || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%s: %s %v; want %s saying %q", tc.action, code, err, tc.code, tc.says)
			}
		})
	}
	list, err := f.store.IssuerList(t.Context(), f.root)
	if err != nil || len(list) != 1 {
		t.Fatalf("issuers after the refusals: %d %v; want the one created", len(list), err)
	}
	if orders, _ := f.store.OrderDue(t.Context(), farFuture(), 10); len(orders) != 0 {
		t.Errorf("%d orders stored by refused requests", len(orders))
	}
}

// TestOrderLifecycle: an order is stored pending (Type payed), the CSR and
// key are generated and sealed, a cancel ends it, a delete removes it, and
// an EAB HMAC key never comes back.
func TestOrderLifecycle(t *testing.T) {
	f := setup(t, Options{DefaultProductCode: "le"})
	c := f.generic(t, f.keyID, f.secret, false, nil)
	if _, err := callAPI(c, "CreateIssuer", map[string]string{"ProductCode": "le", "DirectoryUrl": "https://ca.test/dir",
		"EabKeyId": "kid", "EabHmacKey": "c2VjcmV0LWhtYWM"}, nil); err != nil {
		t.Fatal(err)
	}
	body, err := callAPI(c, "ListIssuers", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	events, _, err := f.store.AuditList(t.Context(), store.AuditListParams{AccountID: f.root, Limit: 10})
	if err != nil || len(events) == 0 || events[len(events)-1].Action != "yundun-cert:CreateIssuer" {
		t.Fatalf("audit: %v %v", events, err)
	}
	if p := events[len(events)-1].Params; strings.Contains(p, "c2VjcmV0LWhtYWM") || !strings.Contains(p, "EabHmacKey") {
		t.Errorf("audit row params %s: the EAB HMAC key must be redacted", p)
	}
	if s := toJSON(body); strings.Contains(s, "c2VjcmV0LWhtYWM") || !strings.Contains(s, `"Default":true`) {
		t.Errorf("ListIssuers = %s: the HMAC key must not show, the default must", s)
	}
	body, err = callAPI(c, "CreateCertificateRequest", map[string]string{"Domain": "Www.Example.Test.", "ValidateType": "DNS"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := body["OrderId"]
	o, err := f.store.OrderGet(t.Context(), f.root, toInt(t, id))
	if err != nil {
		t.Fatal(err)
	}
	if o.Domains[0] != "www.example.test" || !o.Manual || len(o.KeyEnc) == 0 || o.Status != store.OrderPending {
		t.Errorf("stored order %+v", o)
	}
	if info, err := issuance.ParseCSR(o.CsrPEM); err != nil || info.Names[0] != "www.example.test" {
		t.Errorf("stored CSR: %v %v", info.Names, err)
	}
	st, err := callAPI(c, "DescribeCertificateState", map[string]string{"OrderId": toJSON(id)}, nil)
	if err != nil || st["Type"] != "payed" {
		t.Fatalf("DescribeCertificateState = %v %v; want Type payed", st, err)
	}
	_, err = callAPI(c, "DeleteCertificateRequest", map[string]string{"OrderId": toJSON(id)}, nil)
	if code, _ := sdkCode(t, err); code != "IncorrectStatus" {
		t.Errorf("delete of an order in progress: %s", code)
	}
	_, err = callAPI(c, "DeleteIssuer", map[string]string{"ProductCode": "le"}, nil)
	if code, _ := sdkCode(t, err); code != "InUse" {
		t.Errorf("delete of an issuer with an order in progress: %s", code)
	}
	if _, err := callAPI(c, "CancelOrderRequest", map[string]string{"OrderId": toJSON(id)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := callAPI(c, "DeleteCertificateRequest", map[string]string{"OrderId": toJSON(id)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := callAPI(c, "DeleteIssuer", map[string]string{"ProductCode": "le"}, nil); err != nil {
		t.Fatal(err)
	}
}

func farFuture() time.Time { return time.Now().Add(100 * 365 * 24 * time.Hour) }

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

func toInt(t *testing.T, v any) int64 {
	t.Helper()
	n, err := strconv.ParseInt(toJSON(v), 10, 64)
	if err != nil {
		t.Fatalf("%v is not an ID", v)
	}
	return n
}

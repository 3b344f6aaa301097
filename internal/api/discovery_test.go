package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
)

// discoverable is the fake product with a listing the test controls.
type discoverable struct {
	*deploytest.Fake
	mu    sync.Mutex
	found []deploy.Discovered
	err   error
	seen  []deploy.Target
}

func (d *discoverable) Discover(_ context.Context, t deploy.Target) ([]deploy.Discovered, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen = append(d.seen, t)
	return d.found, d.err
}

func (d *discoverable) set(found []deploy.Discovered, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.found, d.err = found, err
}

// TestSyncCloudResources: a sync creates resources for what the product
// lists, a second sync changes nothing, a vanished one turns gone, and
// ListCloudResources shows them through the official SDK with the fields
// the real service fills.
func TestSyncCloudResources(t *testing.T) {
	t.Parallel()
	prod := &discoverable{Fake: deploytest.NewFake()}
	f := setupCatalog(t, Options{}, deploy.NewList(prod))
	c := f.generic(t, f.keyID, f.secret, false, nil)
	sdk := f.sdk(t, f.keyID, f.secret, false, nil)

	body, err := callAPI(c, "CreateCloudAccess", map[string]string{"CloudName": "fake", "SecretId": "AK-FOUND", "SecretKey": "s3cret"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	access := fmt.Sprint(body["AccessId"])
	chain := certstest.New(t, certstest.Options{DNSNames: []string{"shop.example.com"}})
	up, err := sdk.UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String("shop"), Cert: tea.String(chain.CertPEM),
		Key: tea.String(chain.KeyPEM)})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(chain.Leaf.Raw)
	cert := struct {
		id   int64
		sha2 string
	}{tea.Int64Value(up.Body.CertId), strings.ToLower(hex.EncodeToString(sum[:]))} // any case: a sync stores it upper case
	notAfter := time.UnixMilli(1_900_000_000_000)
	listing := []deploy.Discovered{
		{Key: "lb-1/443", CloudProduct: "FAKE", Domain: "shop.example.com", RegionID: "cn-shanghai", InstanceID: "lb-1", ListenerPort: "443",
			ListenerID: "lsn-1@443", Config: json.RawMessage(`{"Label":"default"}`), DefaultResource: true, EnableHTTPS: true, CertSha2: cert.sha2},
		{Key: "lb-1/443/api.example.com", CloudProduct: "FAKE", Domain: "api.example.com", InstanceID: "lb-1", ListenerPort: "443",
			EnableHTTPS: true, CertSha2: "00FF", CertEndTime: notAfter},
	}
	prod.set(listing, nil)

	sync := func(want string) map[string]any {
		t.Helper()
		body, err := callAPI(c, "SyncCloudResources", map[string]string{"AccessId": access}, nil)
		if err != nil {
			t.Fatalf("SyncCloudResources: %v", err)
		}
		got := fmt.Sprintf("found=%v created=%v updated=%v gone=%v", body["Found"], body["Created"], body["Updated"], body["Gone"])
		if got != want {
			t.Errorf("SyncCloudResources = %s, want %s", got, want)
		}
		return body
	}
	sync("found=2 created=2 updated=0 gone=0")
	if len(prod.seen) != 1 || prod.seen[0].Access == nil || prod.seen[0].Access.SecretKey != "s3cret" || prod.seen[0].Access.SecretID != "AK-FOUND" {
		t.Fatalf("Discover saw %+v, want the opened credential", prod.seen)
	}
	sync("found=2 created=0 updated=0 gone=0")

	list := func(secretID string) []*cas.ListCloudResourcesResponseBodyData {
		t.Helper()
		resp, err := sdk.ListCloudResources(&cas.ListCloudResourcesRequest{CloudName: tea.String("fake"), SecretId: tea.String(secretID)})
		if err != nil {
			t.Fatalf("ListCloudResources: %v", err)
		}
		return resp.Body.Data
	}
	byDomain := map[string]*cas.ListCloudResourcesResponseBodyData{}
	for _, r := range list("AK-FOUND") {
		byDomain[tea.StringValue(r.Domain)] = r
	}
	shop, api := byDomain["shop.example.com"], byDomain["api.example.com"]
	if shop == nil || api == nil {
		t.Fatalf("ListCloudResources by SecretId = %v, want both found resources", byDomain)
	}
	if got := fmt.Sprint(tea.StringValue(shop.ListenerId), tea.Int32Value(shop.DefaultResource), tea.Int32Value(shop.EnableHttps),
		tea.StringValue(shop.Status), tea.Int64Value(shop.CertId), tea.StringValue(shop.RegionId), tea.StringValue(shop.CloudAccessId)); got !=
		fmt.Sprint("lsn-1@443", 1, 1, "online", cert.id, "cn-shanghai", access) {
		t.Errorf("the default listener's row = %s", got)
	}
	if tea.Int64Value(api.CertId) != 0 || tea.StringValue(api.CertEndTime) != fmt.Sprint(notAfter.UnixMilli()) || tea.Int32Value(api.DefaultResource) != 0 {
		t.Errorf("the SNI row shows CertId %d CertEndTime %s DefaultResource %d, want 0, the provider's expiry, 0",
			tea.Int64Value(api.CertId), tea.StringValue(api.CertEndTime), tea.Int32Value(api.DefaultResource))
	}
	if n := len(list(access)); n != 2 {
		t.Errorf("ListCloudResources by AccessId: %d rows, want 2", n)
	}
	if n := len(list("AK-NOBODY")); n != 0 {
		t.Errorf("ListCloudResources by an unknown SecretId: %d rows, want 0", n)
	}

	// One listing failing leaves the resources as they were.
	prod.set(nil, deploy.Permanent(errors.New("InvalidAccessKeyId.NotFound: Specified access key is not found. RequestId: 1-2-3")))
	_, err = callAPI(c, "SyncCloudResources", map[string]string{"AccessId": access}, nil)
	if code, status := sdkCode(t, err); code != "SyncFailed" || status != 502 || !strings.Contains(err.Error(), "InvalidAccessKeyId.NotFound") {
		t.Errorf("a failed listing: %s %d (%v), want SyncFailed 502 with the provider's answer", code, status, err)
	}
	if n := len(list(access)); n != 2 {
		t.Errorf("after a failed listing: %d rows, want 2", n)
	}

	prod.set(listing[:1], nil)
	sync("found=1 created=0 updated=0 gone=1")
	if st := byStatus(list(access)); st != "api.example.com=gone shop.example.com=online" {
		t.Errorf("after one vanished: %s", st)
	}

	for _, tc := range []struct{ id, code string }{{"999", "NotFound"}, {"x", "InvalidParameter"}} {
		_, err := callAPI(c, "SyncCloudResources", map[string]string{"AccessId": tc.id}, nil)
		if code, _ := sdkCode(t, err); code != tc.code {
			t.Errorf("SyncCloudResources(AccessId=%s) = %s, want %s", tc.id, code, tc.code)
		}
	}
}

func byStatus(rows []*cas.ListCloudResourcesResponseBodyData) string {
	var out []string
	for _, r := range rows {
		out = append(out, tea.StringValue(r.Domain)+"="+tea.StringValue(r.Status))
	}
	if len(out) == 2 && out[0] > out[1] {
		out[0], out[1] = out[1], out[0]
	}
	return strings.Join(out, " ")
}

package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/alibabacloud-go/tea/tea"
)

// TestListCloudProducts: the descriptions reach any client as JSON, through
// the official SDK's generic call, with the generic keys beside them.
func TestListCloudProducts(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	c := f.generic(t, f.keyID, f.secret, false, nil)
	body, err := callAPI(c, "ListCloudProducts", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(body)
	var got struct {
		Products []struct {
			CloudName, CloudProduct, Summary string
			Config                           []struct {
				Name, Type, Help, Default string
				Required, Secret          bool
				Min, Max                  int64
			}
			Access struct {
				Need                string
				SecretId, SecretKey string
				Config              []struct {
					Name   string
					Secret bool
				}
			}
		}
		CommonConfig []struct{ Name, Type string }
		TotalCount   int
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	names := []string{}
	for _, p := range got.Products {
		names = append(names, p.CloudName+"/"+p.CloudProduct)
	}
	// Sorted by CloudName then CloudProduct; the cloud products sit among them.
	const want = "Tencent/CLB Tencent/TEO Tencent/TencentCDN aliyun/ALB aliyun/CDN aliyun/DCDN aliyun/NLB aliyun/OSS aliyun/SLB aliyun/WAF aws/ACM aws/CLOUDFRONT aws/ELB kubernetes/INGRESS kubernetes/SECRET local/FILE ssh/FILE ssh/HAPROXY ssh/NGINX webhook/WEBHOOK"
	if strings.Join(names, " ") != want || got.TotalCount != len(names) {
		t.Fatalf("products %v (TotalCount %d), want %s", names, got.TotalCount, want)
	}
	nginx := got.Products[slices.Index(names, "ssh/NGINX")]
	port := nginx.Config[1]
	if port.Name != "Port" || port.Type != "integer" || port.Min != 1 || port.Max != 65535 || port.Default != "22" || port.Help == "" {
		t.Errorf("ssh/NGINX Port = %+v", port)
	}
	if nginx.Access.Need != "required" || len(nginx.Access.Config) != 1 || !nginx.Access.Config[0].Secret {
		t.Errorf("ssh/NGINX Access = %+v, want required with a secret Passphrase", nginx.Access)
	}
	if len(got.CommonConfig) != 4 || got.CommonConfig[0].Name != "VerifyAddress" {
		t.Errorf("CommonConfig = %+v", got.CommonConfig)
	}

	body, err = callAPI(c, "ListCloudProducts", map[string]string{"CloudName": "ssh"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := body["TotalCount"].(json.Number); n.String() != "3" {
		if f, ok := body["TotalCount"].(float64); !ok || f != 3 {
			t.Errorf("CloudName=ssh: TotalCount %v, want 3", body["TotalCount"])
		}
	}
}

// TestResourceConfigErrors: a resource's Config is refused in words a user
// understands, through the official SDK's generic call, and numbers given as strings pass.
func TestResourceConfigErrors(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	c := f.generic(t, f.keyID, f.secret, false, nil)
	access, err := callAPI(c, "CreateCloudAccess", map[string]string{"CloudName": "ssh", "SecretId": "deploy", "SecretKey": "a password"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const hostKey = `"HostKey":"SHA256:ZCFYHwsQn2jcUap9zU4DpUV5kZ1F7+VURBrtQoxxNVI"`
	for _, tc := range []struct {
		desc, config, wantErr string
		noAccess              bool
	}{
		{desc: "port as a string", config: `{"Host":"web1","Port":"2222",` + hostKey + `,"CertPath":"/a.pem","KeyPath":"/a.key"}`},
		{desc: "misspelt key", config: `{"Host":"web1",` + hostKey + `,"CertPth":"/a.pem","KeyPath":"/a.key"}`,
			wantErr: `Config key "CertPth" is unknown for ssh/NGINX (did you mean "CertPath"?); known keys: Host, Port, HostKey,`},
		{desc: "port not a number", config: `{"Host":"web1","Port":"abc",` + hostKey + `,"CertPath":"/a.pem","KeyPath":"/a.key"}`,
			wantErr: `Config key "Port" must be a number from 1 to 65535 (got "abc")`},
		{desc: "no credential", noAccess: true, config: `{"Host":"web1",` + hostKey + `,"CertPath":"/a.pem","KeyPath":"/a.key"}`,
			wantErr: `ssh/NGINX needs a credential`},
		{desc: "a generic key as a string", config: `{"Host":"web1",` + hostKey + `,"CertPath":"/a.pem","KeyPath":"/a.key","VerifyGraceSeconds":"20"}`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			q := map[string]string{"CloudName": "ssh", "CloudProduct": "NGINX", "Domain": "www.example.com", "Config": tc.config}
			if !tc.noAccess {
				q["CloudAccessId"] = fmt.Sprint(access["AccessId"])
			}
			_, err := callAPI(c, "CreateCloudResource", q, nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *tea.SDKError
			if !errors.As(err, &se) || tea.StringValue(se.Code) != "InvalidParameter" || !strings.Contains(tea.StringValue(se.Message), tc.wantErr) {
				t.Fatalf("err = %v, want InvalidParameter containing %q", err, tc.wantErr)
			}
			for _, goSpeak := range []string{"json:", "Go struct", "unmarshal"} {
				if strings.Contains(tea.StringValue(se.Message), goSpeak) {
					t.Errorf("message %q speaks Go (%s)", tea.StringValue(se.Message), goSpeak)
				}
			}
		})
	}
}

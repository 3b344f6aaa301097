package sshnginx

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/sshx"
)

const hostKey = "SHA256:ZCFYHwsQn2jcUap9zU4DpUV5kZ1F7+VURBrtQoxxNVI"

func TestValidateConfig(t *testing.T) {
	t.Parallel()
	d := New(sshx.Options{})
	for _, tc := range []struct {
		desc, config, wantErr string
		noAccess              bool
	}{
		{desc: "minimal", config: `{"Host":"web1","HostKey":"` + hostKey + `","CertPath":"/etc/nginx/tls/a.pem","KeyPath":"/etc/nginx/tls/a.key"}`},
		{desc: "all keys", config: `{"Host":"10.0.0.5","Port":2222,"HostKey":"` + hostKey + `","Sudo":true,"CommandTimeoutSeconds":30,
			"CertPath":"/a.pem","KeyPath":"/a.key","TestCommand":"nginx -t","ReloadCommand":"systemctl reload nginx"}`},
		{desc: "no access", noAccess: true, config: `{}`, wantErr: "ssh/NGINX needs a credential: set CloudAccessId"},
		{desc: "no host", config: `{"HostKey":"` + hostKey + `","CertPath":"/a.pem","KeyPath":"/a.key"}`, wantErr: `Config key "Host" is required for ssh/NGINX`},
		{desc: "no host key", config: `{"Host":"web1","CertPath":"/a.pem","KeyPath":"/a.key"}`, wantErr: `Config key "HostKey" is required for ssh/NGINX`},
		{desc: "bad port", config: `{"Host":"web1","Port":70000,"HostKey":"` + hostKey + `","CertPath":"/a.pem","KeyPath":"/a.key"}`, wantErr: `Config key "Port" must be a number from 1 to 65535 (got "70000")`},
		{desc: "port as a string", config: `{"Host":"web1","Port":"2222","HostKey":"` + hostKey + `","CertPath":"/a.pem","KeyPath":"/a.key"}`},
		{desc: "port not a number", config: `{"Host":"web1","Port":"abc","HostKey":"` + hostKey + `","CertPath":"/a.pem","KeyPath":"/a.key"}`, wantErr: `Config key "Port" must be a number from 1 to 65535 (got "abc")`},
		{desc: "relative path", config: `{"Host":"web1","HostKey":"` + hostKey + `","CertPath":"a.pem","KeyPath":"/a.key"}`, wantErr: "CertPath"},
		{desc: "same file", config: `{"Host":"web1","HostKey":"` + hostKey + `","CertPath":"/a.pem","KeyPath":"/x/../a.pem"}`, wantErr: "same file"},
		{desc: "no key path", config: `{"Host":"web1","HostKey":"` + hostKey + `","CertPath":"/a.pem"}`, wantErr: `Config key "KeyPath" is required for ssh/NGINX`},
		{desc: "unknown key", config: `{"Host":"web1","HostKey":"` + hostKey + `","CertPath":"/a.pem","KeyPath":"/a.key","PemPath":"/x"}`, wantErr: `Config key "PemPath" is unknown for ssh/NGINX (did you mean "KeyPath"?); known keys: Host, Port, HostKey, Sudo, CommandTimeoutSeconds, CertPath, KeyPath, TestCommand, ReloadCommand`},
		{desc: "misspelt key", config: `{"Host":"web1","HostKey":"` + hostKey + `","CertPth":"/a.pem","KeyPath":"/a.key"}`, wantErr: `Config key "CertPth" is unknown for ssh/NGINX (did you mean "CertPath"?)`},
		{desc: "host with spaces", config: `{"Host":"web 1","HostKey":"` + hostKey + `","CertPath":"/a.pem","KeyPath":"/a.key"}`, wantErr: "Host"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := deploy.Validate(d, json.RawMessage(tc.config), !tc.noAccess)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !deploy.IsPermanent(err) {
				t.Fatalf("err = %v, want a permanent error with %q", err, tc.wantErr)
			}
		})
	}
}

func TestHost(t *testing.T) {
	t.Parallel()
	d := New(sshx.Options{})
	got := d.Host(deploy.Target{Config: json.RawMessage(`{"Host":"web1","HostKey":"` + hostKey + `","CertPath":"/a.pem","KeyPath":"/a.key"}`)})
	if got != "ssh:web1:22" {
		t.Fatalf("Host = %q", got)
	}
}

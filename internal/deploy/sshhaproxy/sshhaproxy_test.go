package sshhaproxy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/sshx"
)

func TestValidateConfig(t *testing.T) {
	t.Parallel()
	const base = `"Host":"lb1","HostKey":"SHA256:ZCFYHwsQn2jcUap9zU4DpUV5kZ1F7+VURBrtQoxxNVI"`
	d := New(sshx.Options{})
	for _, tc := range []struct{ desc, config, wantErr string }{
		{desc: "minimal", config: `{` + base + `,"PemPath":"/etc/haproxy/certs/a.pem"}`},
		{desc: "no pem", config: `{` + base + `}`, wantErr: `Config key "PemPath" is required for ssh/HAPROXY`},
		{desc: "cert path", config: `{` + base + `,"PemPath":"/a.pem","CertPath":"/b.pem"}`, wantErr: "CertPath"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := deploy.Validate(d, json.RawMessage(tc.config), true)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestPEM(t *testing.T) {
	t.Parallel()
	got := pem(deploy.Bundle{FullChainPEM: "CHAIN", KeyPEM: "KEY\n"})
	if got != "CHAIN\nKEY\n" {
		t.Fatalf("pem = %q", got)
	}
}

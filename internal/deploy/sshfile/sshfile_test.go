package sshfile

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/sshx"
)

func TestValidateConfig(t *testing.T) {
	t.Parallel()
	const base = `"Host":"web1","HostKey":"SHA256:ZCFYHwsQn2jcUap9zU4DpUV5kZ1F7+VURBrtQoxxNVI","CertPath":"/tls/a.pem","KeyPath":"/tls/a.key"`
	d := New(sshx.Options{})
	for _, tc := range []struct{ desc, config, wantErr string }{
		{desc: "minimal", config: `{` + base + `}`},
		{desc: "all keys", config: `{` + base + `,"ChainPath":"/tls/chain.pem","KeyMode":"0640","Owner":"www-data:ssl-cert","TestCommand":"true","ReloadCommand":"true"}`},
		{desc: "bad mode", config: `{` + base + `,"KeyMode":"rw"}`, wantErr: "KeyMode"},
		{desc: "a key readable by others", config: `{` + base + `,"KeyMode":"0644"}`, wantErr: `Config key "KeyMode" is 0644: a private key file may not be writable by its group nor accessible to others`},
		{desc: "bad owner", config: `{` + base + `,"Owner":"a b"}`, wantErr: "Owner"},
		{desc: "chain is cert", config: `{` + base + `,"ChainPath":"/tls/a.pem"}`, wantErr: "same file"},
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

package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var testDesc = Description{
	CloudName: "ssh", CloudProduct: "NGINX", Summary: "test",
	Config: []Field{
		{Name: "Host", Type: TypeString, Required: true, Help: "the host"},
		{Name: "Port", Type: TypeInteger, Min: 1, Max: 65535, Help: "the port"},
		{Name: "Retries", Type: TypeInteger, Help: "any number"},
		{Name: "Sudo", Type: TypeBoolean, Help: "sudo"},
		{Name: "Mode", Type: TypeString, Allowed: []string{"a", "b"}, Help: "a mode"},
		{Name: "Names", Type: TypeStringList, Help: "names"},
		{Name: "Endpoints", Type: TypeObject, Help: "endpoints"},
		{Name: "CertPath", Type: TypeString, Help: "path"},
	},
	Access: AccessSpec{Need: AccessRequired, SecretId: "the user", SecretKey: "the key"},
}

func TestNormalizeConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, in, want, wantErr string
	}{
		{desc: "minimal", in: `{"Host":"h"}`, want: `{"Host":"h"}`},
		{desc: "port as a number", in: `{"Host":"h","Port":2222}`, want: `{"Host":"h","Port":2222}`},
		{desc: "port as a string", in: `{"Host":"h","Port":"2222"}`, want: `{"Host":"h","Port":2222}`},
		{desc: "port as a float", in: `{"Host":"h","Port":22.0}`, want: `{"Host":"h","Port":22}`},
		{desc: "port not a number", in: `{"Host":"h","Port":"abc"}`, wantErr: `Config key "Port" must be a number from 1 to 65535 (got "abc")`},
		{desc: "port out of range", in: `{"Host":"h","Port":0}`, wantErr: `Config key "Port" must be a number from 1 to 65535 (got "0")`},
		{desc: "port a fraction", in: `{"Host":"h","Port":1.5}`, wantErr: `Config key "Port" must be a number from 1 to 65535 (got "1.5")`},
		{desc: "unbounded integer", in: `{"Host":"h","Retries":"x"}`, wantErr: `Config key "Retries" must be a whole number (got "x")`},
		{desc: "boolean as a string", in: `{"Host":"h","Sudo":"true"}`, want: `{"Host":"h","Sudo":true}`},
		{desc: "boolean wrong", in: `{"Host":"h","Sudo":"yes"}`, wantErr: `Config key "Sudo" must be true or false (got "yes")`},
		{desc: "allowed value", in: `{"Host":"h","Mode":"b"}`, want: `{"Host":"h","Mode":"b"}`},
		{desc: "value not allowed", in: `{"Host":"h","Mode":"c"}`, wantErr: `Config key "Mode" must be one of a, b (got "c")`},
		{desc: "list from one string", in: `{"Host":"h","Names":"x"}`, want: `{"Host":"h","Names":["x"]}`},
		{desc: "list wrong", in: `{"Host":"h","Names":[1]}`, wantErr: `Config key "Names" must be a list of strings`},
		{desc: "object", in: `{"Host":"h","Endpoints":{"*":"http://127.0.0.1:1"}}`, want: `{"Endpoints":{"*":"http://127.0.0.1:1"},"Host":"h"}`},
		{desc: "object wrong", in: `{"Host":"h","Endpoints":"x"}`, wantErr: `Config key "Endpoints" must be a JSON object`},
		{desc: "string from a number", in: `{"Host":7}`, want: `{"Host":"7"}`},
		{desc: "string wrong", in: `{"Host":true}`, wantErr: `Config key "Host" must be a string (got "true")`},
		{desc: "null is absent", in: `{"Host":"h","Port":null}`, want: `{"Host":"h"}`},
		{desc: "empty optional string dropped", in: `{"Host":"h","CertPath":""}`, want: `{"Host":"h"}`},
		{desc: "required missing", in: `{}`, wantErr: `Config key "Host" is required for ssh/NGINX: the host`},
		{desc: "required empty", in: `{"Host":""}`, wantErr: `Config key "Host" must not be empty`},
		{desc: "empty config", in: ``, wantErr: `Config key "Host" is required`},
		{desc: "unknown with a hint", in: `{"Host":"h","CertPth":"/a"}`,
			wantErr: `Config key "CertPth" is unknown for ssh/NGINX (did you mean "CertPath"?); known keys: Host, Port, Retries, Sudo, Mode, Names, Endpoints, CertPath`},
		{desc: "unknown without a hint", in: `{"Host":"h","Zzzzzz":1}`, wantErr: `Config key "Zzzzzz" is unknown for ssh/NGINX; known keys: Host,`},
		{desc: "not an object", in: `[1]`, wantErr: `Config of ssh/NGINX must be a JSON object`},
		{desc: "not JSON", in: `{"Host":`, wantErr: `Config of ssh/NGINX is not valid JSON`},
		{desc: "trailing data", in: `{"Host":"h"} {}`, wantErr: `Config of ssh/NGINX has data after the JSON object`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := testDesc.NormalizeConfig(json.RawMessage(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !IsPermanent(err) {
					t.Fatalf("err = %v, want a permanent error containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "json:") || strings.Contains(err.Error(), "Go struct") {
					t.Errorf("err = %v: speaks Go, not to a user", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestDecodeConfig(t *testing.T) {
	t.Parallel()
	var c struct {
		Host, Mode, CertPath string
		Port, Retries        int
		Sudo                 bool
		Names                []string
		Endpoints            map[string]string
	}
	if err := testDesc.DecodeConfig(json.RawMessage(`{"Host":"h","Port":"2222","Sudo":"true","Names":"n"}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.Host != "h" || c.Port != 2222 || !c.Sudo || len(c.Names) != 1 {
		t.Errorf("decoded %+v", c)
	}
}

func TestCheckAccess(t *testing.T) {
	t.Parallel()
	none := Description{CloudName: "local", CloudProduct: "FILE", Access: AccessSpec{Need: AccessNone}}
	opt := Description{CloudName: "webhook", CloudProduct: "WEBHOOK", Access: AccessSpec{Need: AccessOptional}}
	for _, tc := range []struct {
		desc    string
		d       Description
		has     bool
		wantErr string
	}{
		{desc: "required and given", d: testDesc, has: true},
		{desc: "required and missing", d: testDesc, wantErr: "ssh/NGINX needs a credential: set CloudAccessId to a ssh CloudAccess (SecretId: the user; SecretKey: the key)"},
		{desc: "none and given", d: none, has: true, wantErr: "local/FILE uses no credential; remove CloudAccessId"},
		{desc: "none and missing", d: none},
		{desc: "optional either way", d: opt, has: true},
		{desc: "optional missing", d: opt},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := tc.d.CheckAccess(tc.has)
			if (err == nil) != (tc.wantErr == "") || err != nil && (err.Error() != tc.wantErr || !IsPermanent(err)) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

type testProduct struct {
	Description
	validate func(json.RawMessage) error
}

func (p testProduct) Describe() Description                                   { return p.Description }
func (p testProduct) Deploy(ctx context.Context, req Request) ([]byte, error) { return nil, nil }
func (p testProduct) ValidateConfig(c json.RawMessage) error                  { return p.validate(c) }

func TestListAndValidate(t *testing.T) {
	t.Parallel()
	var seen json.RawMessage
	p := testProduct{testDesc, func(c json.RawMessage) error { seen = c; return nil }}
	q := testProduct{Description{CloudName: "local", CloudProduct: "FILE", Summary: "s", Access: AccessSpec{Need: AccessNone}},
		func(json.RawMessage) error { return errors.New("Config key \"X\" is wrong") }}
	l := NewList(p, q)
	if got := l.Products(); len(got) != 2 || got[0].Name() != "local/FILE" || got[1].Name() != "ssh/NGINX" {
		t.Fatalf("Products() = %v, want local/FILE then ssh/NGINX", got)
	}
	if _, ok := l.Lookup("ssh", "NGINX"); !ok {
		t.Fatal("Lookup(ssh, NGINX) found nothing")
	}
	if _, ok := l.Lookup("ssh", "nginx"); ok {
		t.Fatal("Lookup is case-insensitive; CloudProduct values are exact")
	}
	if err := Validate(p, json.RawMessage(`{"Host":"h","Port":"22"}`), true); err != nil {
		t.Fatal(err)
	}
	if string(seen) != `{"Host":"h","Port":22}` {
		t.Errorf("the product's validator saw %s, want the normalized Config", seen)
	}
	if err := Validate(q, nil, false); err == nil || !IsPermanent(err) {
		t.Errorf("Validate = %v, want the product's own refusal, permanent", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("NewList accepted two products with one name")
		}
	}()
	NewList(p, p)
}

package verify

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/egress"
)

func sha(c certstest.Chain) string {
	sum := sha256.Sum256(c.Leaf.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func tlsCert(t *testing.T, c certstest.Chain) tls.Certificate {
	t.Helper()
	cert, err := tls.X509KeyPair([]byte(c.CertPEM), []byte(c.KeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// switchable is a TLS listener on loopback whose certificate can change, and
// which records the SNI it was asked for.
type switchable struct {
	addr    string
	current atomic.Pointer[tls.Certificate]
	sni     atomic.Value
}

func listen(t *testing.T, c certstest.Chain) *switchable {
	t.Helper()
	s := &switchable{}
	cert := tlsCert(t, c)
	s.current.Store(&cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		s.sni.Store(h.ServerName)
		return s.current.Load(), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				conn.(*tls.Conn).Handshake()
				conn.Close()
			}()
		}
	}()
	s.addr = ln.Addr().String()
	return s
}

func (s *switchable) serve(t *testing.T, c certstest.Chain) {
	cert := tlsCert(t, c)
	s.current.Store(&cert)
}

func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestProbe(t *testing.T) {
	t.Parallel()
	ch := certstest.New(t, certstest.Options{DNSNames: []string{"www.example.test"}})
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{tlsCert(t, ch)}}
	srv.StartTLS()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")

	o := Probe(context.Background(), nil, addr, "www.example.test")
	if o.Err != nil {
		t.Fatal(o.Err)
	}
	if o.Sha2 != sha(ch) || !strings.Contains(o.Subject, "www.example.test") || !o.NotAfter.Equal(ch.Leaf.NotAfter) || o.At.IsZero() {
		t.Fatalf("observation %+v; want SHA-256 %s, subject with www.example.test, NotAfter %v", o, sha(ch), ch.Leaf.NotAfter)
	}

	refused := Probe(context.Background(), nil, closedAddr(t), "www.example.test")
	if refused.Err == nil || refused.Sha2 != "" {
		t.Fatalf("probe of a closed port: %+v, want an error", refused)
	}
}

func TestProbeSendsSNI(t *testing.T) {
	t.Parallel()
	s := listen(t, certstest.New(t, certstest.Options{}))
	if o := Probe(context.Background(), nil, s.addr, "api.example.test"); o.Err != nil {
		t.Fatal(o.Err)
	}
	if got, _ := s.sni.Load().(string); got != "api.example.test" {
		t.Fatalf("SNI = %q, want api.example.test", got)
	}
}

func TestWait(t *testing.T) {
	t.Parallel()
	oldCh := certstest.New(t, certstest.Options{DNSNames: []string{"www.example.test"}})
	newCh := certstest.New(t, certstest.Options{DNSNames: []string{"www.example.test"}})
	for _, tc := range []struct {
		desc string
		// switchAfter: when the server starts serving newCh (negative: never).
		switchAfter time.Duration
		grace       time.Duration
		wantErr     bool
	}{
		{desc: "already served", switchAfter: 0, grace: time.Second},
		{desc: "served after a late reload", switchAfter: 700 * time.Millisecond, grace: 3 * time.Second},
		{desc: "never served", switchAfter: -1, grace: 1200 * time.Millisecond, wantErr: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			a, b := listen(t, oldCh), listen(t, oldCh)
			if tc.switchAfter == 0 {
				a.serve(t, newCh)
				b.serve(t, newCh)
			} else if tc.switchAfter > 0 {
				time.AfterFunc(tc.switchAfter, func() { a.serve(t, newCh); b.serve(t, newCh) })
			}
			start := time.Now()
			obs, err := Wait(context.Background(), nil, []string{a.addr, b.addr}, "www.example.test", sha(newCh), tc.grace, 100*time.Millisecond)
			if len(obs) != 2 {
				t.Fatalf("%d observations, want 2", len(obs))
			}
			if !tc.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range obs {
					if o.Sha2 != sha(newCh) {
						t.Fatalf("observation %+v, want %s", o, sha(newCh))
					}
				}
				return
			}
			var me *MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("error %v, want a MismatchError", err)
			}
			if len(me.Served) != 2 || me.Served[0].Sha2 != sha(oldCh) {
				t.Fatalf("served %+v, want the old certificate twice", me.Served)
			}
			if !strings.Contains(err.Error(), sha(oldCh)) || !strings.Contains(err.Error(), "expires") {
				t.Fatalf("error %q does not name the served fingerprint and expiry", err)
			}
			if el := time.Since(start); el > tc.grace+2*time.Second {
				t.Fatalf("Wait took %v with a grace of %v", el, tc.grace)
			}
		})
	}
}

func TestWaitUnreachable(t *testing.T) {
	t.Parallel()
	_, err := Wait(context.Background(), nil, []string{closedAddr(t)}, "x.example.test", "AB", 600*time.Millisecond, 100*time.Millisecond)
	var me *MismatchError
	if !errors.As(err, &me) || me.Served[0].Err == nil {
		t.Fatalf("error %v, want a MismatchError carrying the connection error", err)
	}
}

func TestSplitConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc      string
		config    string
		want      Settings
		wantRest  string
		wantError string
	}{
		{desc: "no generic keys", config: `{"CertPath": "/a"}`, want: Settings{Grace: DefaultGrace, AutoRollback: true}, wantRest: `{"CertPath": "/a"}`},
		{desc: "empty", config: ``, want: Settings{Grace: DefaultGrace, AutoRollback: true}, wantRest: ``},
		{desc: "one address", config: `{"CertPath":"/a","VerifyAddress":"127.0.0.1:443"}`,
			want: Settings{Addresses: []string{"127.0.0.1:443"}, Grace: DefaultGrace, AutoRollback: true}, wantRest: `{"CertPath":"/a"}`},
		{desc: "all keys", config: `{"VerifyAddress":["a.example:443","[::1]:8443"],"VerifyGraceSeconds":2,"AutoRollback":false}`,
			want: Settings{Addresses: []string{"a.example:443", "[::1]:8443"}, Grace: 2 * time.Second}, wantRest: `{}`},
		{desc: "no port", config: `{"VerifyAddress":"a.example"}`, wantError: "VerifyAddress"},
		{desc: "bad port", config: `{"VerifyAddress":"a.example:99999"}`, wantError: "VerifyAddress"},
		{desc: "empty array", config: `{"VerifyAddress":[]}`, wantError: "VerifyAddress"},
		{desc: "number", config: `{"VerifyAddress":443}`, wantError: "VerifyAddress"},
		{desc: "grace zero", config: `{"VerifyGraceSeconds":0}`, wantError: "VerifyGraceSeconds"},
		{desc: "grace fraction", config: `{"VerifyGraceSeconds":1.5}`, wantError: "VerifyGraceSeconds"},
		{desc: "grace string", config: `{"VerifyGraceSeconds":"abc"}`, wantError: `Config key "VerifyGraceSeconds" must be a number from 1 to 600 (got "abc")`},
		{desc: "rollback string", config: `{"AutoRollback":"no"}`, wantError: "AutoRollback"},
		{desc: "a key spelt with an escape", config: `{"\u0056erifyAddress":"a.example"}`, wantError: "VerifyAddress"},
		{desc: "a key's name as a value", config: `{"CertPath":"AutoRollback"}`, want: Settings{Grace: DefaultGrace, AutoRollback: true}, wantRest: `{"CertPath":"AutoRollback"}`},
		{desc: "spaces around a key", config: `{ "AutoRollback" : false }`, want: Settings{Grace: DefaultGrace}, wantRest: `{}`},
		{desc: "not an object", config: `[1]`, want: Settings{Grace: DefaultGrace, AutoRollback: true}, wantRest: `[1]`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, rest, err := SplitConfig(json.RawMessage(tc.config))
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(rest) != tc.wantRest {
				t.Fatalf("rest = %s, want %s", rest, tc.wantRest)
			}
			if strings.Join(got.Addresses, ",") != strings.Join(tc.want.Addresses, ",") || got.Grace != tc.want.Grace || got.AutoRollback != tc.want.AutoRollback {
				t.Fatalf("settings %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	ok := Observation{Address: "a", Sha2: "AA"}
	other := Observation{Address: "b", Sha2: "BB"}
	failed := Observation{Address: "c", Err: errors.New("refused")}
	for _, tc := range []struct {
		desc string
		obs  []Observation
		want string
	}{
		{"all good", []Observation{ok, ok}, "a"},
		{"one differs", []Observation{ok, other}, "b"},
		{"one failed", []Observation{ok, other, failed}, "c"},
		{"none", nil, ""},
	} {
		if got := Summarize(tc.obs, "AA"); got.Address != tc.want {
			t.Errorf("%s: summary %+v, want address %q", tc.desc, got, tc.want)
		}
	}
}

// TestProbeRefusedHidesPorts: an address the egress policy refuses is never
// connected to, so an open and a closed port give the same answer.
func TestProbeRefusedHidesPorts(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	tenant := egress.New(egress.Policy{}, func(context.Context, int64) (egress.Scope, error) { return egress.Scope{}, nil }, nil).For(7)
	open := Probe(t.Context(), tenant, ln.Addr().String(), "example.com")
	shut := Probe(t.Context(), tenant, closedAddr, "example.com")
	strip := func(o Observation) string {
		return strings.ReplaceAll(o.Err.Error(), o.Address, "ADDR")
	}
	if open.Err == nil || shut.Err == nil || strip(open) != strip(shut) || !strings.Contains(strip(open), "refused by the egress policy") {
		t.Fatalf("open port: %v\nclosed port: %v\nwant the same refusal", open.Err, shut.Err)
	}
}

package egress_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/egress"
)

func rules(t *testing.T, ss ...string) []egress.Rule {
	t.Helper()
	r, err := egress.ParseRules(ss)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	tenant := egress.Scope{AccountID: 7}
	root := egress.Scope{AccountID: 1, Root: true}
	tests := []struct {
		desc   string
		policy egress.Policy
		scope  egress.Scope
		host   string
		ip     string
		ok     bool
		reason string // part of the refusal
	}{
		{desc: "public address, tenant", scope: tenant, ip: "93.184.216.34", ok: true},
		{desc: "public IPv6, tenant", scope: tenant, ip: "2606:2800:220:1::1", ok: true},
		{desc: "loopback, root", scope: root, ip: "127.0.0.1", ok: true},
		{desc: "loopback, tenant", scope: tenant, ip: "127.0.0.1", reason: "root account only"},
		{desc: "IPv6 loopback, tenant", scope: tenant, ip: "::1", reason: "root account only"},
		{desc: "unspecified reaches loopback, tenant", scope: tenant, ip: "0.0.0.0", reason: "root account only"},
		{desc: "private 10/8, tenant", scope: tenant, ip: "10.1.2.3", reason: "root account only"},
		{desc: "private 172.16/12, tenant", scope: tenant, ip: "172.31.0.1", reason: "root account only"},
		{desc: "private 192.168/16, tenant", scope: tenant, ip: "192.168.1.1", reason: "root account only"},
		{desc: "CGNAT, tenant", scope: tenant, ip: "100.64.0.1", reason: "root account only"},
		{desc: "ULA, tenant", scope: tenant, ip: "fd12:3456::1", reason: "root account only"},
		{desc: "private, root", scope: root, ip: "10.1.2.3", ok: true},
		{desc: "v4-mapped loopback, tenant", scope: tenant, ip: "::ffff:127.0.0.1", reason: "root account only"},
		{desc: "NAT64 metadata, root", scope: root, ip: "64:ff9b::a9fe:a9fe", reason: "metadata"},
		{desc: "metadata, root", scope: root, ip: "169.254.169.254", reason: "metadata"},
		{desc: "v4-mapped metadata, root", scope: root, ip: "::ffff:169.254.169.254", reason: "metadata"},
		{desc: "AWS IPv6 metadata, root", scope: root, ip: "fd00:ec2::254", reason: "metadata"},
		{desc: "Alibaba metadata, root", scope: root, ip: "100.100.100.200", reason: "metadata"},
		{desc: "IPv6 link-local, root", scope: root, ip: "fe80::1", reason: "metadata"},
		{desc: "metadata name, root", scope: root, host: "metadata.google.internal", ip: "203.0.113.9", reason: "metadata"},
		{desc: "account allow opens loopback", scope: egress.Scope{AccountID: 7, Allow: rules(t, "127.0.0.1/32")}, ip: "127.0.0.1", ok: true},
		{desc: "account allow is exact", scope: egress.Scope{AccountID: 7, Allow: rules(t, "127.0.0.1/32")}, ip: "127.0.0.2", reason: "root account only"},
		{desc: "account allow by host name", scope: egress.Scope{AccountID: 7, Allow: rules(t, "*.corp.example")}, host: "vault.corp.example", ip: "10.0.0.5", ok: true},
		{desc: "account allow never opens metadata", scope: egress.Scope{AccountID: 7, Allow: rules(t, "169.254.0.0/16")}, ip: "169.254.169.254", reason: "metadata"},
		{desc: "server allow opens metadata", policy: egress.Policy{Allow: rules(t, "169.254.169.254")}, scope: tenant, ip: "169.254.169.254", ok: true},
		{desc: "server allow opens private to tenants", policy: egress.Policy{Allow: rules(t, "10.0.0.0/8")}, scope: tenant, ip: "10.9.9.9", ok: true},
		{desc: "deny wins over root", policy: egress.Policy{Deny: rules(t, "10.0.0.0/8")}, scope: root, ip: "10.1.1.1", reason: "--egress-deny lists 10.0.0.0/8"},
		{desc: "deny wins over server allow", policy: egress.Policy{Allow: rules(t, "10.0.0.0/8"), Deny: rules(t, "10.0.0.1")}, scope: root, ip: "10.0.0.1", reason: "--egress-deny"},
		{desc: "deny wins over account allow", policy: egress.Policy{Deny: rules(t, "127.0.0.1")}, scope: egress.Scope{AccountID: 7, Allow: rules(t, "127.0.0.0/8")}, ip: "127.0.0.1", reason: "--egress-deny"},
		{desc: "deny by host name", policy: egress.Policy{Deny: rules(t, "vault.internal")}, scope: root, host: "Vault.Internal.", ip: "93.184.216.34", reason: "--egress-deny lists vault.internal"},
		{desc: "deny of IPv6 /64", policy: egress.Policy{Deny: rules(t, "2001:db8:1::/64")}, scope: root, ip: "2001:db8:1::42", reason: "--egress-deny"},
		{desc: "deny written v4-mapped", policy: egress.Policy{Deny: rules(t, "::ffff:93.184.216.0/120")}, scope: root, ip: "93.184.216.34", reason: "--egress-deny"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			host := tc.host
			if host == "" {
				host = tc.ip
			}
			err := tc.policy.Check(tc.scope, host, netip.MustParseAddr(tc.ip))
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !egress.IsRefused(err) || !strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), "refused by the egress policy") {
				t.Fatalf("got %v, want a refusal naming %q", err, tc.reason)
			}
		})
	}
}

func TestParseRule(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "10.0.0.0/33", "http://x", "a b", "*"} {
		if _, err := egress.ParseRule(bad); err == nil {
			t.Errorf("ParseRule(%q) accepted", bad)
		}
	}
	for in, want := range map[string]string{"10.1.2.3/8": "10.0.0.0/8", "::1": "::1/128", "*.Corp.Example": "*.corp.example", "[fe80::1]": "fe80::1/128"} {
		r, err := egress.ParseRule(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseRule(%q) = %v, %v; want %s", in, r, err, want)
		}
	}
}

// fixedResolver answers every name from a table, like a DNS server the
// attacker controls.
type fixedResolver map[string][]netip.Addr

func (f fixedResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("no such host %s", host)
}

func tenantAccounts(allow ...string) egress.Accounts {
	return func(_ context.Context, id int64) (egress.Scope, error) {
		if id == 1 {
			return egress.Scope{Root: true}, nil
		}
		r, err := egress.ParseRules(allow)
		return egress.Scope{Allow: r}, err
	}
}

func listen(t *testing.T) (port string, accepted chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, accepted
}

// TestDialerRebinding: a public-looking name that resolves to loopback is
// refused to a tenant after resolution, and nothing is connected to; a name
// answering one public and one internal address is refused too.
func TestDialerRebinding(t *testing.T) {
	t.Parallel()
	port, accepted := listen(t)
	res := fixedResolver{
		"rebind.example.com": {netip.MustParseAddr("127.0.0.1")},
		"mixed.example.com":  {netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("127.0.0.1")},
		"meta.example.com":   {netip.MustParseAddr("::ffff:169.254.169.254")},
	}
	d := egress.New(egress.Policy{}, tenantAccounts(), res)
	for _, name := range []string{"rebind.example.com", "mixed.example.com", "meta.example.com"} {
		_, err := d.For(7).DialContext(t.Context(), "tcp", net.JoinHostPort(name, port))
		if !egress.IsRefused(err) {
			t.Errorf("%s: dial = %v, want refused", name, err)
		}
	}
	// The root account reaches the same name, connecting to the checked address.
	c, err := d.For(1).DialContext(t.Context(), "tcp", net.JoinHostPort("rebind.example.com", port))
	if err != nil {
		t.Fatalf("root: %v", err)
	}
	c.Close()
	<-accepted
	select {
	case <-accepted:
		t.Fatal("a refused dial reached the listener")
	default:
	}
	// A tenant allowed 127.0.0.1/32 reaches it too.
	c, err = egress.New(egress.Policy{}, tenantAccounts("127.0.0.1/32"), res).For(7).DialContext(t.Context(), "tcp", net.JoinHostPort("rebind.example.com", port))
	if err != nil {
		t.Fatalf("allowed tenant: %v", err)
	}
	c.Close()
}

// TestRedirectToInternalRefused: a redirect to a denied name is refused on
// the hop when redirects are followed, and not followed at all otherwise.
func TestRedirectToInternalRefused(t *testing.T) {
	t.Parallel()
	var hits = make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- r.Host + r.URL.Path
		if r.URL.Path == "/start" {
			_, port, _ := net.SplitHostPort(r.Host)
			http.Redirect(w, r, "http://secret.internal:"+port+"/secret", http.StatusFound)
			return
		}
		io.WriteString(w, "internal data")
	}))
	t.Cleanup(srv.Close)
	res := fixedResolver{"secret.internal": {netip.MustParseAddr("127.0.0.1")}}
	d := egress.New(egress.Policy{Deny: rules(t, "secret.internal")}, tenantAccounts(), res)

	follow := egress.NewClients(d, nil, 0, egress.FollowRedirects).Get(1)
	_, err := follow.Get(srv.URL + "/start")
	if !egress.IsRefused(err) {
		t.Fatalf("followed redirect to a denied name: %v, want refused", err)
	}

	refuse := egress.NewClients(d, nil, 0, egress.RefuseRedirects).Get(1)
	resp, err := refuse.Get(srv.URL + "/start")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want the 302 handed back", resp.StatusCode)
	}
	close(hits)
	for h := range hits {
		if strings.HasSuffix(h, "/secret") {
			t.Fatal("the internal address was reached")
		}
	}

	// A tenant may not even reach the first hop on loopback.
	_, err = egress.NewClients(d, nil, 0, egress.FollowRedirects).Get(7).Get(srv.URL + "/start")
	var re *egress.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("tenant to loopback: %v, want refused", err)
	}
}

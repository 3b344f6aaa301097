package pebble

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// RFC2136 is a primary that accepts TSIG-signed dynamic updates (RFC 2136)
// of TXT records in one zone and applies them to challtestsrv, where pebble
// and certfleet's resolvers see them. Unsigned or badly signed updates are
// refused (NOTAUTH), as BIND does.
type RFC2136 struct {
	Addr    string // host:port (TCP)
	KeyName string
	Secret  string // base64
	Zone    string
	Updates atomic.Int64 // applied updates
	Refused atomic.Int64
}

// StartRFC2136 serves updates of zone for the test, signed with keyName/secret.
func (s *Server) StartRFC2136(t testing.TB, zone, keyName, secret string) *RFC2136 {
	t.Helper()
	r := &RFC2136{KeyName: dns.Fqdn(keyName), Secret: secret, Zone: dns.Fqdn(zone)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.Addr = l.Addr().String()
	srv := &dns.Server{Listener: l, Net: "tcp", TsigSecret: map[string]string{r.KeyName: secret}}
	srv.MsgAcceptFunc = func(dns.Header) dns.MsgAcceptAction { return dns.MsgAccept } // UPDATE too
	srv.Handler = dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
		reply := new(dns.Msg)
		reply.SetReply(m)
		if m.Opcode != dns.OpcodeUpdate || m.IsTsig() == nil || w.TsigStatus() != nil {
			r.Refused.Add(1)
			reply.Rcode = dns.RcodeNotAuth
			w.WriteMsg(reply)
			return
		}
		if len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, r.Zone) {
			reply.Rcode = dns.RcodeNotZone
			w.WriteMsg(reply)
			return
		}
		for _, rr := range m.Ns {
			txt, ok := rr.(*dns.TXT)
			if !ok || !dns.IsSubDomain(r.Zone, txt.Hdr.Name) {
				reply.Rcode = dns.RcodeNotZone
				w.WriteMsg(reply)
				return
			}
			var err error
			switch txt.Hdr.Class {
			case dns.ClassINET:
				err = postJSON(s.mgmt+"/set-txt", map[string]string{"host": txt.Hdr.Name, "value": strings.Join(txt.Txt, "")})
			case dns.ClassNONE, dns.ClassANY:
				err = postJSON(s.mgmt+"/clear-txt", map[string]string{"host": txt.Hdr.Name})
			}
			if err != nil {
				reply.Rcode = dns.RcodeServerFailure
				w.WriteMsg(reply)
				return
			}
		}
		r.Updates.Add(1)
		reply.SetTsig(r.KeyName, m.IsTsig().Algorithm, 300, int64(m.IsTsig().TimeSigned))
		w.WriteMsg(reply)
	})
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return r
}

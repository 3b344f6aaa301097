package issuance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

// answer puts a challenge's answer in place (automatic) or looks for it
// (manual). ready: the CA may be asked to validate now.
func (d *Driver) answer(ctx context.Context, o *store.Order, ch *store.Challenge) (bool, error) {
	now := d.opts.Clock()
	switch {
	case ch.Type == "http-01" && !o.Manual:
		if err := d.st.ChallengeTokenPut(ctx, o.ID, ch.Token, ch.KeyAuth); err != nil {
			return false, err
		}
		return true, nil
	case ch.Type == "http-01":
		return d.fileServed(ctx, o.AccountID, ch.Domain, ch.Token, ch.KeyAuth), nil
	case !o.Manual:
		if !ch.Published {
			p, err := d.dnsProvider(ctx, o.AccountID, ch.Domain)
			if err != nil {
				return false, err
			}
			if p == nil {
				return false, permanent(fmt.Errorf("%s: no DNS credential covers its zone any more", ch.Domain))
			}
			if err := p.present(ctx, ch.RecordName, ch.RecordValue); err != nil {
				return false, fmt.Errorf("%s: publish %s TXT: %w", ch.Domain, ch.RecordName, err)
			}
			ch.Published, ch.Since = true, now
			if err := d.save(ctx, o); err != nil {
				return false, err
			}
		}
		if d.txtVisible(ctx, ch.RecordName, ch.RecordValue) {
			return true, nil
		}
		if now.Sub(ch.Since) > d.opts.PropagationTimeout {
			d.log.Warn("acme: TXT record not visible yet; asking the CA anyway", "order_id", o.ID, "record", ch.RecordName)
			return true, nil
		}
		return false, nil
	default:
		return d.txtVisible(ctx, ch.RecordName, ch.RecordValue), nil
	}
}

// cleanup removes what automatic mode published for an order.
func (d *Driver) cleanup(ctx context.Context, o *store.Order) {
	ctx = context.WithoutCancel(ctx)
	if err := d.st.ChallengeTokenDelete(ctx, o.ID); err != nil {
		d.log.Warn("acme: remove http-01 answers", "order_id", o.ID, "error", err)
	}
	for i := range o.Challenges {
		ch := &o.Challenges[i]
		if !ch.Published || o.Manual || ch.Type != "dns-01" {
			continue
		}
		p, err := d.dnsProvider(ctx, o.AccountID, ch.Domain)
		if err == nil && p != nil {
			err = p.cleanUp(ctx, ch.RecordName, ch.RecordValue)
		}
		if err != nil {
			d.log.Warn("acme: remove TXT record", "order_id", o.ID, "record", ch.RecordName, "error", err)
			continue
		}
		ch.Published = false
	}
}

// Cleanup removes what automatic mode published for a cancelled order.
func (d *Driver) Cleanup(ctx context.Context, o store.Order) { d.cleanup(ctx, &o) }

// HTTPHandler answers http-01 challenges of every order in progress, from
// the database (so any node answers), on /.well-known/acme-challenge/.
func (d *Driver) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/acme-challenge/{token}", func(w http.ResponseWriter, r *http.Request) {
		ka, err := d.st.ChallengeTokenGet(r.Context(), r.PathValue("token"))
		if errors.Is(err, store.ErrNotFound) {
			http.NotFound(w, r)
			return
		}
		if err != nil {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, ka)
	})
	return mux
}

// fileServed says whether http://domain/.well-known/acme-challenge/token
// (on ChallengePort) serves keyAuth. The connection is the account's, under
// its egress policy.
func (d *Driver) fileServed(ctx context.Context, accountID int64, domain, token, keyAuth string) bool {
	tr := &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: 10 * time.Second}
	if d.opts.Egress != nil {
		tr.DialContext = d.opts.Egress.For(accountID).DialContext
	}
	addrs := d.lookupA(ctx, domain)
	for _, ip := range addrs {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		u := "http://" + net.JoinHostPort(ip, strconv.Itoa(d.opts.ChallengePort)) + "/.well-known/acme-challenge/" + token
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Host = domain
		resp, err := tr.RoundTrip(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			cancel()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == keyAuth {
				return true
			}
			continue
		}
		cancel()
	}
	return false
}

// lookupA resolves a name's IPv4 and IPv6 addresses with the resolvers.
func (d *Driver) lookupA(ctx context.Context, name string) []string {
	if len(d.opts.Resolvers) == 0 {
		ips, _ := net.DefaultResolver.LookupHost(ctx, name)
		return ips
	}
	var out []string
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		for _, rr := range d.query(ctx, name, t) {
			switch v := rr.(type) {
			case *dns.A:
				out = append(out, v.A.String())
			case *dns.AAAA:
				out = append(out, v.AAAA.String())
			}
		}
	}
	return out
}

// txtVisible says whether name has a TXT record value.
func (d *Driver) txtVisible(ctx context.Context, name, value string) bool {
	if len(d.opts.Resolvers) == 0 {
		vals, _ := net.DefaultResolver.LookupTXT(ctx, name)
		for _, v := range vals {
			if v == value {
				return true
			}
		}
		return false
	}
	for _, rr := range d.query(ctx, name, dns.TypeTXT) {
		if t, ok := rr.(*dns.TXT); ok && strings.Join(t.Txt, "") == value {
			return true
		}
	}
	return false
}

// query asks the resolvers in turn, the first answer wins.
func (d *Driver) query(ctx context.Context, name string, qtype uint16) []dns.RR {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	c := &dns.Client{Timeout: 5 * time.Second}
	for _, server := range d.opts.Resolvers {
		r, _, err := c.ExchangeContext(ctx, m, server)
		if err != nil || r == nil {
			continue
		}
		if r.Truncated {
			tcp := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
			if r2, _, err := tcp.ExchangeContext(ctx, m, server); err == nil {
				r = r2
			}
		}
		return r.Answer
	}
	return nil
}

// dnsProvider publishes TXT records in one zone.
type dnsProvider interface {
	present(ctx context.Context, fqdn, value string) error
	cleanUp(ctx context.Context, fqdn, value string) error
}

// DNSClouds are the CloudNames of CloudAccess credentials that publish
// dns-01 records.
var DNSClouds = []string{"rfc2136"}

// rfc2136Config is the Config of an rfc2136 CloudAccess: SecretId is the
// TSIG key name, SecretKey its base64 secret.
type rfc2136Config struct {
	Nameserver    string // host:port of the primary accepting UPDATEs
	Zone          string // the zone the credential covers
	TSIGAlgorithm string // default hmac-sha256.
	TTL           int    // default 60
}

// ParseRFC2136Config checks an rfc2136 CloudAccess Config.
func ParseRFC2136Config(config string) (string, error) {
	var c rfc2136Config
	dec := json.NewDecoder(strings.NewReader(config))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return "", fmt.Errorf("an rfc2136 Config is {\"Nameserver\":\"host:port\",\"Zone\":\"example.com\",\"TSIGAlgorithm\":\"hmac-sha256.\",\"TTL\":60}: %v", err)
	}
	if _, _, err := net.SplitHostPort(c.Nameserver); err != nil {
		return "", fmt.Errorf("Nameserver %q is not host:port", c.Nameserver)
	}
	if strings.Trim(c.Zone, ".") == "" {
		return "", errors.New("Zone is required (the zone the credential may update)")
	}
	switch dns.Fqdn(strings.ToLower(c.TSIGAlgorithm)) {
	case ".", dns.HmacSHA256, dns.HmacSHA512, dns.HmacSHA1, dns.HmacSHA224, dns.HmacSHA384:
	default:
		return "", fmt.Errorf("TSIGAlgorithm %q is not one of hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512", c.TSIGAlgorithm)
	}
	return config, nil
}

type rfc2136 struct {
	d         *Driver
	accountID int64
	cfg       rfc2136Config
	keyName   string
	secret    string
}

// dnsProvider finds the account's DNS credential whose zone is the longest
// suffix of name; nil when none covers it.
func (d *Driver) dnsProvider(ctx context.Context, accountID int64, name string) (dnsProvider, error) {
	name = strings.ToLower(strings.TrimPrefix(strings.TrimSuffix(name, "."), "*."))
	var best *rfc2136
	for off := 0; ; off += 100 {
		list, _, err := d.st.AccessList(ctx, store.AccessListParams{AccountID: accountID, CloudName: "rfc2136", Offset: off, Limit: 100})
		if err != nil {
			return nil, err
		}
		for _, a := range list {
			config, err := d.box.OpenConfig(a.Config)
			if err != nil {
				continue
			}
			var c rfc2136Config
			if json.Unmarshal([]byte(config), &c) != nil {
				continue
			}
			zone := strings.ToLower(strings.Trim(c.Zone, "."))
			if zone == "" || (name != zone && !strings.HasSuffix(name, "."+zone)) {
				continue
			}
			if best != nil && len(zone) <= len(strings.Trim(best.cfg.Zone, ".")) {
				continue
			}
			sec, err := d.box.Open(a.SecretKeyEnc, secret.PurposeAccessSecret)
			if err != nil {
				continue
			}
			best = &rfc2136{d: d, accountID: accountID, cfg: c, keyName: dns.Fqdn(a.SecretID), secret: string(sec)}
		}
		if len(list) < 100 {
			break
		}
	}
	if best == nil {
		return nil, nil
	}
	return best, nil
}

func (r *rfc2136) present(ctx context.Context, fqdn, value string) error {
	return r.update(ctx, fqdn, value, true)
}

func (r *rfc2136) cleanUp(ctx context.Context, fqdn, value string) error {
	return r.update(ctx, fqdn, value, false)
}

func (r *rfc2136) update(ctx context.Context, fqdn, value string, add bool) error {
	ttl := uint32(r.cfg.TTL)
	if ttl == 0 {
		ttl = 60
	}
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(fqdn), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: []string{value}}
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(r.cfg.Zone))
	if add {
		m.Insert([]dns.RR{rr})
	} else {
		m.Remove([]dns.RR{rr})
	}
	alg := dns.Fqdn(strings.ToLower(r.cfg.TSIGAlgorithm))
	if alg == "." {
		alg = dns.HmacSHA256
	}
	m.SetTsig(r.keyName, alg, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", Timeout: 10 * time.Second, TsigSecret: map[string]string{r.keyName: r.secret}}
	if r.d.opts.Egress != nil {
		conn, err := r.d.opts.Egress.For(r.accountID).DialContext(ctx, "tcp", r.cfg.Nameserver)
		if err != nil {
			return err
		}
		defer conn.Close()
		dc := &dns.Conn{Conn: conn, TsigSecret: c.TsigSecret}
		dc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := dc.WriteMsg(m); err != nil {
			return err
		}
		reply, err := dc.ReadMsg()
		if err != nil {
			return err
		}
		return rcode(reply)
	}
	reply, _, err := c.ExchangeContext(ctx, m, r.cfg.Nameserver)
	if err != nil {
		return err
	}
	return rcode(reply)
}

func rcode(m *dns.Msg) error {
	switch m.Rcode {
	case dns.RcodeSuccess:
		return nil
	case dns.RcodeNotAuth, dns.RcodeRefused, dns.RcodeNotImplemented, dns.RcodeNotZone, dns.RcodeBadSig, dns.RcodeBadKey:
		// The credential or the zone is wrong: retrying will not help.
		return permanent(fmt.Errorf("the DNS server answered %s (check the rfc2136 credential's key, algorithm and Zone)",
			dns.RcodeToString[m.Rcode]))
	}
	if m.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("the DNS server answered %s", dns.RcodeToString[m.Rcode])
	}
	return nil
}

// Package egress decides where certfleet may connect on a user's behalf and
// makes those connections: webhook targets, contact webhooks, VerifyAddress
// probes, SSH targets and the SMTP server all dial through one Dialer, which
// resolves names itself, checks every resolved address against the Policy,
// and connects only to an address it checked (no DNS-rebinding bypass).
//
// Defaults: link-local and cloud metadata addresses are refused to everyone
// unless the server-wide allow list names them; loopback and private ranges
// are open to the root account only, unless the server-wide or the
// account's own allow list names them; public addresses are open. The
// server-wide deny list applies to every account and wins over every allow.
//
// It is not a firewall: it governs the connections certfleet makes through
// it, nothing else on the host. It is not an authorization layer either:
// who may create a resource is decided by the API.
package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Rule is one entry of an allow or deny list: a CIDR ("10.0.0.0/8"), a
// single address ("127.0.0.1"), a host name ("vault.internal"), or every name
// under a domain ("*.corp.example" or ".corp.example").
type Rule struct {
	prefix netip.Prefix // valid for address rules
	host   string       // lower-case exact name, or ".suffix"
}

// String is the rule as written.
func (r Rule) String() string {
	if r.prefix.IsValid() {
		return r.prefix.String()
	}
	if strings.HasPrefix(r.host, ".") {
		return "*" + r.host
	}
	return r.host
}

// ParseRule parses one allow or deny entry.
func ParseRule(s string) (Rule, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Rule{}, errors.New("egress: empty rule")
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return Rule{prefix: unmapPrefix(p).Masked()}, nil
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		a = unmap(a)
		return Rule{prefix: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	h := strings.ToLower(strings.TrimSuffix(s, "."))
	if strings.HasPrefix(h, "*.") {
		h = h[1:]
	}
	name := strings.TrimPrefix(h, ".")
	if name == "" || strings.ContainsAny(name, "/ :*[]@") {
		return Rule{}, fmt.Errorf("egress: %q is neither a CIDR, an IP address nor a host name", s)
	}
	return Rule{host: h}, nil
}

// ParseRules parses every entry; the error names the first bad one.
func ParseRules(ss []string) ([]Rule, error) {
	out := make([]Rule, 0, len(ss))
	for _, s := range ss {
		r, err := ParseRule(s)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (r Rule) matches(host string, ip netip.Addr) bool {
	if r.prefix.IsValid() {
		return ip.IsValid() && r.prefix.Contains(ip)
	}
	if host == "" {
		return false
	}
	if strings.HasPrefix(r.host, ".") {
		return strings.HasSuffix(host, r.host)
	}
	return host == r.host
}

func anyMatch(rules []Rule, host string, ip netip.Addr) (Rule, bool) {
	for _, r := range rules {
		if r.matches(host, ip) {
			return r, true
		}
	}
	return Rule{}, false
}

// Policy is the server-wide part of the egress policy. The zero Policy is
// the default described in the package comment.
type Policy struct {
	// Allow (--egress-allow) opens addresses and names to every account,
	// metadata and link-local addresses included.
	Allow []Rule
	// Deny (--egress-deny) closes addresses and names to every account, the
	// root account included; it wins over every allow list.
	Deny []Rule
}

// Scope is who a connection is made for.
type Scope struct {
	AccountID int64
	// Root is true for the root account, the operator's own: it may reach
	// loopback and private addresses by default.
	Root bool
	// Allow is the account's own allow list (store.AccountSettings.EgressAllow):
	// it opens loopback and private addresses, never metadata.
	Allow []Rule
}

// Class is what kind of address an IP is, for the default policy.
type Class int

const (
	// Public addresses are open to every account.
	Public Class = iota
	// Internal addresses (loopback, private, CGNAT, unspecified) are open to
	// the root account and to accounts whose allow list names them.
	Internal
	// Metadata addresses (link-local, cloud instance metadata) are refused
	// unless the server-wide allow list names them.
	Metadata
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

var (
	metadataPrefixes = mustPrefixes(
		"169.254.0.0/16",     // link-local: AWS, GCP, Azure, OpenStack, DigitalOcean metadata 169.254.169.254, ECS 169.254.170.2
		"fe80::/10",          // IPv6 link-local
		"fd00:ec2::254/128",  // AWS metadata over IPv6
		"100.100.100.200/32", // Alibaba Cloud metadata
		"192.0.0.192/32",     // Oracle Cloud metadata
		"168.63.129.16/32",   // Azure wire server
		"fd20:ce::254/128",   // GCP metadata over IPv6
	)
	internalPrefixes = mustPrefixes(
		"0.0.0.0/8", "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
		"198.18.0.0/15", // benchmarking, used inside data centres
		"::/128", "::1/128", "fc00::/7", "fec0::/10",
		"224.0.0.0/4", "ff00::/8", "255.255.255.255/32", // multicast and broadcast
	)
	// metadataNames are refused like metadata addresses, whatever they resolve to.
	metadataNames = []string{"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
	nat64         = netip.MustParsePrefix("64:ff9b::/96")
)

// Classify tells which default rule applies to ip.
func Classify(ip netip.Addr) Class {
	ip = unmap(ip)
	for _, p := range metadataPrefixes {
		if p.Contains(ip) {
			return Metadata
		}
	}
	for _, p := range internalPrefixes {
		if p.Contains(ip) {
			return Internal
		}
	}
	return Public
}

// unmap turns ::ffff:a.b.c.d and 64:ff9b::a.b.c.d into a.b.c.d, so an IPv4
// address written as IPv6 is judged as what it reaches.
func unmap(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() && nat64.Contains(a) {
		b := a.As16()
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return a.WithZone("")
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// RefusedError is a connection the policy refused. Its message names the
// policy and how to allow the connection.
type RefusedError struct {
	Host   string // the name asked for; may be an address
	IP     netip.Addr
	Reason string
}

func (e *RefusedError) Error() string {
	where := e.Host
	if e.IP.IsValid() && e.IP.String() != e.Host {
		where += " (" + e.IP.String() + ")"
	}
	return "egress: connection to " + where + " refused by the egress policy: " + e.Reason
}

// IsRefused reports whether err is, or wraps, a *RefusedError.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

// Check decides whether s may connect to ip, reached by the name host (host
// may be empty or the address itself). It returns nil or a *RefusedError.
func (p Policy) Check(s Scope, host string, ip netip.Addr) error {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	ip = unmap(ip)
	if _, err := netip.ParseAddr(host); err == nil {
		host = "" // an address literal is judged by its address only
	}
	refuse := func(reason string) error { return &RefusedError{Host: orAddr(host, ip), IP: ip, Reason: reason} }
	if r, ok := anyMatch(p.Deny, host, ip); ok {
		return refuse(fmt.Sprintf("the server's --egress-deny lists %s", r))
	}
	if _, ok := anyMatch(p.Allow, host, ip); ok {
		return nil
	}
	class := Classify(ip)
	for _, n := range metadataNames {
		if host == n {
			class = Metadata
		}
	}
	switch class {
	case Metadata:
		return refuse("link-local and cloud metadata addresses are refused to every account; the operator may allow one with the server flag --egress-allow")
	case Internal:
		if s.Root {
			return nil
		}
		if _, ok := anyMatch(s.Allow, host, ip); ok {
			return nil
		}
		return refuse(fmt.Sprintf("loopback and private addresses are open to the root account only; the operator may allow this one for account %d with `certfleet account update NAME --egress-allow CIDR` or for everyone with the server flag --egress-allow", s.AccountID))
	}
	return nil
}

func orAddr(host string, ip netip.Addr) string {
	if host != "" {
		return host
	}
	return ip.String()
}

package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Resolver looks names up; *net.Resolver satisfies it. Tests inject one
// that answers what they need (a name resolving to loopback).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Accounts tells the Scope of an account: whether it is the root account
// and its own allow list. It is called on every dial, so changes apply to
// the next connection.
type Accounts func(ctx context.Context, accountID int64) (Scope, error)

// Dialer makes every outbound connection made on a user's behalf. It is
// safe for concurrent use. A nil *Dialer applies the default Policy and
// treats every account as the root account (for tests that build a
// component alone); internal/server always builds a real one.
type Dialer struct {
	policy   Policy
	accounts Accounts
	resolver Resolver
	// Timeout bounds one TCP connect (each address tried). Defaults to 15s.
	timeout time.Duration
}

// New returns a Dialer applying p, looking accounts up with accounts (nil:
// every account is the root account) and names with r (nil:
// net.DefaultResolver).
func New(p Policy, accounts Accounts, r Resolver) *Dialer {
	if r == nil {
		r = net.DefaultResolver
	}
	return &Dialer{policy: p, accounts: accounts, resolver: r, timeout: 15 * time.Second}
}

var defaultDialer = New(Policy{}, nil, nil)

func (d *Dialer) orDefault() *Dialer {
	if d == nil {
		return defaultDialer
	}
	return d
}

// Policy returns the server-wide policy.
func (d *Dialer) Policy() Policy { return d.orDefault().policy }

// For returns the dialer of accountID's connections.
func (d *Dialer) For(accountID int64) *AccountDialer {
	return &AccountDialer{d: d.orDefault(), account: accountID}
}

// Operator returns the dialer of connections to places the operator
// configured (the SMTP server): the root account's scope, so the
// server-wide deny list and the metadata default still apply.
func (d *Dialer) Operator() *AccountDialer {
	return &AccountDialer{d: d.orDefault(), operator: true}
}

// AccountDialer dials for one account. Its DialContext fits
// http.Transport.DialContext.
type AccountDialer struct {
	d        *Dialer
	account  int64
	operator bool
}

// Account is the account the connections are made for.
func (a *AccountDialer) Account() int64 {
	if a == nil {
		return 0
	}
	return a.account
}

// A nil *AccountDialer is the default policy as the root account.
func (a *AccountDialer) orDefault() *AccountDialer {
	if a == nil {
		return defaultDialer.Operator()
	}
	return a
}

func (a *AccountDialer) scope(ctx context.Context) (Scope, error) {
	if a.d.accounts == nil || a.operator {
		return Scope{AccountID: a.account, Root: true}, nil
	}
	s, err := a.d.accounts(ctx, a.account)
	if err != nil {
		return Scope{}, fmt.Errorf("egress: account %d: %w", a.account, err)
	}
	s.AccountID = a.account
	return s, nil
}

// Check resolves host and checks every address it resolves to, returning
// them in resolver order, or a *RefusedError if any is refused.
func (a *AccountDialer) Check(ctx context.Context, network, host string) ([]netip.Addr, error) {
	a = a.orDefault()
	s, err := a.scope(ctx)
	if err != nil {
		return nil, err
	}
	p := a.d.policy
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.WithZone("")}, p.Check(s, host, ip)
	}
	// A denied or metadata name is refused before it is even looked up.
	if err := p.Check(s, host, netip.Addr{}); err != nil {
		return nil, err
	}
	ipNet := "ip"
	switch network {
	case "tcp4", "udp4":
		ipNet = "ip4"
	case "tcp6", "udp6":
		ipNet = "ip6"
	}
	ips, err := a.d.resolver.LookupNetIP(ctx, ipNet, host)
	if err != nil {
		return nil, fmt.Errorf("egress: look up %s: %w", host, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("egress: look up %s: no address", host)
	}
	// Every address must pass: otherwise a name answering one public and
	// one internal address could reach the internal one.
	for _, ip := range ips {
		if err := p.Check(s, host, ip); err != nil {
			return nil, err
		}
	}
	return ips, nil
}

// DialContext resolves addr's host itself, checks every address against
// the policy, then connects to a checked address (the first that answers).
// A refused connection is a *RefusedError.
func (a *AccountDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("egress: %w", err)
	}
	a = a.orDefault()
	ips, err := a.Check(ctx, network, host)
	if err != nil {
		return nil, err
	}
	nd := net.Dialer{Timeout: a.d.timeout}
	var first error
	for _, ip := range ips {
		c, err := nd.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// Redirects says what an HTTP client does with a 3xx answer.
type Redirects int

const (
	// RefuseRedirects hands the 3xx back to the caller (deliveries carrying
	// a key or a message go only where configured).
	RefuseRedirects Redirects = iota
	// FollowRedirects follows up to 5 hops; each new connection is checked
	// by the policy like the first.
	FollowRedirects
)

// Clients builds and keeps one http.Client per account: connections kept
// alive for one account are never reused for another, whose policy may
// differ. It is safe for concurrent use.
type Clients struct {
	d         *Dialer
	base      *http.Transport
	timeout   time.Duration
	redirects Redirects
	mu        sync.Mutex
	m         map[int64]*http.Client
}

// NewClients returns the per-account clients of d. base is cloned for each
// account (nil: http.DefaultTransport's settings); its proxy and dial
// functions are replaced, so every connection goes through the policy.
// timeout is the clients' Timeout (0: none, deadlines come from contexts).
func NewClients(d *Dialer, base *http.Transport, timeout time.Duration, r Redirects) *Clients {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	return &Clients{d: d, base: base, timeout: timeout, redirects: r, m: map[int64]*http.Client{}}
}

// Get returns accountID's client.
func (c *Clients) Get(accountID int64) *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hc, ok := c.m[accountID]; ok {
		return hc
	}
	t := c.base.Clone()
	t.Proxy = nil // a proxy would connect where the policy never looked
	t.DialContext = c.d.For(accountID).DialContext
	t.DialTLSContext = nil
	hc := &http.Client{Transport: t, Timeout: c.timeout}
	if c.redirects == RefuseRedirects {
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	} else {
		hc.CheckRedirect = func(_ *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("egress: stopped after 5 redirects")
			}
			return nil
		}
	}
	c.m[accountID] = hc
	return hc
}

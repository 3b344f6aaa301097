package api

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certfleet/certfleet/internal/api/ramapi"
	"github.com/certfleet/certfleet/internal/policy"
	"github.com/certfleet/certfleet/internal/store"
)

// RAMVersion is the API version of the RAM operations (users, keys, groups,
// policies) served on the same endpoint.
const RAMVersion = ramapi.Version

// table returns the route table of an API version.
func (a *API) table(version string) map[string]handler {
	if version == RAMVersion {
		return a.ramActions
	}
	return a.actions
}

// ramAction is the RAM action name of a call (docs/ram-and-audit.md, "Authorization").
func ramAction(version, action string) string {
	if version == RAMVersion {
		return "ram:" + action
	}
	if action == "DescribeDeploymentJob" {
		return "yundun-cert:DescribeDeployment"
	}
	return "yundun-cert:" + action
}

// withAuthorize lets the account's root do everything and a RAM user what
// its policies (and its groups') allow; anything else is Forbidden.RAM with
// AccessDeniedDetail.
func (a *API) withAuthorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := callFrom(r.Context())
		if c.userID == 0 {
			next.ServeHTTP(w, r)
			return
		}
		ent, err := a.authz.entry(r.Context(), c.accountID, c.userID)
		if err != nil {
			a.writeError(w, c, err)
			return
		}
		c.principal = ent.name
		action := ramAction(c.version, c.action)
		req := policy.Request{Action: action, Resource: "acs:" + service(action) + ":*:" + itoa(c.accountID) + ":*",
			SourceIP: sourceIP(r), SecureTransport: r.TLS != nil, Now: a.opts.Clock()}
		c.docs, c.authReq = ent.docs, req
		if d := policy.Evaluate(ent.docs, req); d != policy.Allow {
			a.writeError(w, c, errForbidden(action, ent.name, d))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ActionReadPrivateKey is certfleet's own action a caller needs, besides
// GetUserCertificateDetail, to be answered a certificate's private key
// (docs/ram-and-audit.md, "Private keys").
const ActionReadPrivateKey = "yundun-cert:GetUserCertificatePrivateKey"

// allowed reports whether the caller may also perform action (a RAM action
// name), by the same policies and request facts withAuthorize used: the
// account's root may do everything.
func (c *call) allowed(action string) bool {
	if c.userID == 0 {
		return true
	}
	req := c.authReq
	req.Action, req.Resource = action, "acs:"+service(action)+":*:"+itoa(c.accountID)+":*"
	return policy.Evaluate(c.docs, req) == policy.Allow
}

func service(action string) string {
	for i := 0; i < len(action); i++ {
		if action[i] == ':' {
			return action[:i]
		}
	}
	return action
}

func sourceIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, _ := netip.ParseAddr(host)
	return ip.Unmap()
}

func errForbidden(action, user string, d policy.Decision) *Error {
	return &Error{Code: "Forbidden.RAM", Status: http.StatusForbidden,
		Message: "User " + user + " is not authorized to perform " + action + " (" + d.String() + "); ask the account's root to attach a policy that allows it.",
		AccessDeniedDetail: map[string]string{"AuthAction": action, "AuthPrincipalType": "SubUser", "AuthPrincipalDisplayName": user,
			"NoPermissionType": d.String(), "PolicyType": "AccountLevelIdentityBasedPolicy"}}
}

var systemDocs = func() map[string]*policy.Document {
	m := map[string]*policy.Document{}
	for name, p := range ramapi.SystemPolicies() {
		m[name] = policy.MustParse(p.Document)
	}
	return m
}()

// authorizer caches each RAM user's compiled policies.
//
// Staleness: a change made through this node clears the cache at once
// (invalidate). Changes made through another node bump the RAM generation in
// the database; each node reads it at most every genPoll, so another node
// acts on a RAM change within genPoll (2 s). Access keys themselves are
// cached separately for keyCacheTTL (10 s) on other nodes.
type authorizer struct {
	st    store.Store
	clock func() time.Time

	mu      sync.Mutex
	users   map[int64]*authEntry // userID → entry
	gen     int64
	genRead time.Time
	local   atomic.Int64 // bumped by invalidate
}

type authEntry struct {
	name  string
	docs  []*policy.Document
	local int64 // local generation it was built at
}

const genPoll = 2 * time.Second

func newAuthorizer(st store.Store, clock func() time.Time) *authorizer {
	return &authorizer{st: st, clock: clock, users: map[int64]*authEntry{}}
}

// invalidate drops every cached entry (a RAM change through this node).
func (z *authorizer) invalidate() {
	z.local.Add(1)
	z.mu.Lock()
	clear(z.users)
	z.mu.Unlock()
}

func (z *authorizer) entry(ctx context.Context, accountID, userID int64) (*authEntry, error) {
	now := time.Now()
	z.mu.Lock()
	if now.Sub(z.genRead) >= genPoll {
		z.mu.Unlock()
		g, err := z.st.RAMGeneration(ctx)
		if err != nil {
			return nil, err
		}
		z.mu.Lock()
		if g != z.gen {
			clear(z.users)
			z.gen = g
		}
		z.genRead = now
	}
	e := z.users[userID]
	z.mu.Unlock()
	if e != nil {
		return e, nil
	}
	local := z.local.Load()
	u, err := z.st.RAMUserGetByID(ctx, accountID, userID)
	if err != nil {
		return nil, err
	}
	grants, err := z.st.RAMGrants(ctx, accountID, userID)
	if err != nil {
		return nil, err
	}
	e = &authEntry{name: u.Name, local: local}
	for _, g := range grants {
		if g.PolicyType == store.PolicySystem {
			if d := systemDocs[g.PolicyName]; d != nil {
				e.docs = append(e.docs, d)
			}
			continue
		}
		d, err := policy.Parse(g.Document)
		if err != nil { // stored documents were validated; skip rather than fail every call
			continue
		}
		e.docs = append(e.docs, d)
	}
	z.mu.Lock()
	if z.local.Load() == local { // not invalidated while loading
		z.users[userID] = e
	}
	z.mu.Unlock()
	return e, nil
}

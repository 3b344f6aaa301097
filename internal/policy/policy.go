// Package policy parses and evaluates RAM policy documents (Version "1":
// Statement with Effect, Action, Resource, Condition), as Alibaba Cloud RAM
// writes them.
//
// It is not where policies are stored or attached (internal/store) nor where
// a request's action is named (internal/api): it decides, for one request and
// a set of compiled documents, Allow, ImplicitDeny or ExplicitDeny. A compiled
// Document is immutable and safe for concurrent use.
package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Decision is the outcome of an evaluation.
type Decision int

// Decisions. The zero value is ImplicitDeny: nothing allows.
const (
	ImplicitDeny Decision = iota
	Allow
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "ImplicitDeny"
}

// Request is what a policy is asked about.
type Request struct {
	Action   string // "yundun-cert:UploadUserCertificate"
	Resource string // "acs:yundun-cert:*:1:*"
	// SourceIP is the caller's address (acs:SourceIp).
	SourceIP netip.Addr
	// SecureTransport is true over HTTPS (acs:SecureTransport).
	SecureTransport bool
	// Now is the request time (acs:CurrentTime).
	Now time.Time
}

// Document is a compiled policy document.
type Document struct {
	statements []statement
}

type statement struct {
	deny       bool
	actions    []string // lower case patterns
	notActions []string
	resources  []string
	conditions []condition
}

type condition struct {
	op     string // lower-cased operator
	key    string // lower-cased condition key
	values []string
	cidrs  []netip.Prefix
	times  []time.Time
}

// strList accepts a JSON string or array of strings (also numbers and booleans, as text).
type strList []string

func (l *strList) UnmarshalJSON(b []byte) error {
	var one any
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	switch v := one.(type) {
	case []any:
		for _, x := range v {
			s, err := scalar(x)
			if err != nil {
				return err
			}
			*l = append(*l, s)
		}
		return nil
	default:
		s, err := scalar(v)
		if err != nil {
			return err
		}
		*l = strList{s}
		return nil
	}
}

func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("expected a string or a list of strings, got %v", v)
}

type rawDoc struct {
	Version   string
	Statement []rawStatement
}

type rawStatement struct {
	Effect    string
	Action    strList
	NotAction strList
	Resource  strList
	Condition map[string]map[string]strList
}

// Operators this package understands (case-insensitive, as RAM).
var operators = map[string]bool{
	"ipaddress": true, "notipaddress": true, "bool": true,
	"dategreaterthan": true, "dategreaterthanequals": true, "datelessthan": true, "datelessthanequals": true, "dateequals": true, "datenotequals": true,
	"stringequals": true, "stringnotequals": true, "stringequalsignorecase": true, "stringnotequalsignorecase": true, "stringlike": true, "stringnotlike": true,
}

// Parse compiles a policy document. The error says what is wrong and where.
func Parse(text string) (*Document, error) {
	var raw rawDoc
	dec := json.NewDecoder(strings.NewReader(text))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("policy: not a JSON policy document: %w", err)
	}
	if raw.Version != "1" {
		return nil, errors.New(`policy: Version must be "1"`)
	}
	if len(raw.Statement) == 0 {
		return nil, errors.New("policy: Statement is empty")
	}
	d := &Document{}
	for i, rs := range raw.Statement {
		var st statement
		switch strings.ToLower(rs.Effect) {
		case "allow":
		case "deny":
			st.deny = true
		default:
			return nil, fmt.Errorf("policy: Statement %d: Effect must be Allow or Deny", i+1)
		}
		if len(rs.Action) == 0 && len(rs.NotAction) == 0 {
			return nil, fmt.Errorf("policy: Statement %d: Action is missing", i+1)
		}
		for _, a := range rs.Action {
			st.actions = append(st.actions, strings.ToLower(a))
		}
		for _, a := range rs.NotAction {
			st.notActions = append(st.notActions, strings.ToLower(a))
		}
		if len(rs.Resource) == 0 {
			return nil, fmt.Errorf("policy: Statement %d: Resource is missing", i+1)
		}
		st.resources = rs.Resource
		for op, kv := range rs.Condition {
			lop := strings.ToLower(op)
			if !operators[lop] {
				return nil, fmt.Errorf("policy: Statement %d: condition operator %s is not supported", i+1, op)
			}
			for k, vals := range kv {
				c := condition{op: lop, key: strings.ToLower(k), values: vals}
				switch {
				case strings.Contains(lop, "ipaddress"):
					for _, v := range vals {
						p, err := parseCIDR(v)
						if err != nil {
							return nil, fmt.Errorf("policy: Statement %d: %s %s: %w", i+1, op, k, err)
						}
						c.cidrs = append(c.cidrs, p)
					}
				case strings.HasPrefix(lop, "date"):
					for _, v := range vals {
						t, err := time.Parse(time.RFC3339, v)
						if err != nil {
							return nil, fmt.Errorf("policy: Statement %d: %s %s: %q is not an ISO 8601 time like 2026-01-01T00:00:00Z", i+1, op, k, v)
						}
						c.times = append(c.times, t)
					}
				}
				st.conditions = append(st.conditions, c)
			}
		}
		d.statements = append(d.statements, st)
	}
	return d, nil
}

func parseCIDR(v string) (netip.Prefix, error) {
	if strings.Contains(v, "/") {
		return netip.ParsePrefix(v)
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// MustParse is Parse for documents known to be valid (built-in policies).
func MustParse(text string) *Document {
	d, err := Parse(text)
	if err != nil {
		panic(err)
	}
	return d
}

// Evaluate decides req against docs: an explicit Deny in any matching
// statement wins, else an Allow in any, else ImplicitDeny.
func Evaluate(docs []*Document, req Request) Decision {
	action := strings.ToLower(req.Action)
	out := ImplicitDeny
	for _, d := range docs {
		for i := range d.statements {
			st := &d.statements[i]
			if !st.matches(action, req) {
				continue
			}
			if st.deny {
				return ExplicitDeny
			}
			out = Allow
		}
	}
	return out
}

func (st *statement) matches(action string, req Request) bool {
	if len(st.actions) > 0 && !anyMatch(st.actions, action) {
		return false
	}
	if len(st.notActions) > 0 && anyMatch(st.notActions, action) {
		return false
	}
	if !anyMatch(st.resources, req.Resource) {
		return false
	}
	for i := range st.conditions {
		if !st.conditions[i].holds(req) {
			return false
		}
	}
	return true
}

func anyMatch(patterns []string, s string) bool {
	for _, p := range patterns {
		if wildcard(p, s) {
			return true
		}
	}
	return false
}

// wildcard matches s against p, where * is any run and ? one character.
func wildcard(p, s string) bool {
	if p == "*" {
		return true
	}
	px, sx := 0, 0
	star, mark := -1, 0
	for sx < len(s) {
		switch {
		case px < len(p) && (p[px] == '?' || p[px] == s[sx]):
			px++
			sx++
		case px < len(p) && p[px] == '*':
			star, mark = px, sx
			px++
		case star >= 0:
			px = star + 1
			mark++
			sx = mark
		default:
			return false
		}
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}

// holds reports whether the condition is met; an unknown key does not hold
// for positive operators (and holds for negated ones), as in RAM.
func (c *condition) holds(req Request) bool {
	switch c.key {
	case "acs:sourceip":
		if !req.SourceIP.IsValid() {
			return c.op == "notipaddress"
		}
		ip := req.SourceIP.Unmap()
		in := false
		for _, p := range c.cidrs {
			if p.Contains(ip) {
				in = true
				break
			}
		}
		switch c.op {
		case "ipaddress":
			return in
		case "notipaddress":
			return !in
		}
		return false
	case "acs:securetransport":
		if c.op != "bool" {
			return false
		}
		for _, v := range c.values {
			if strings.EqualFold(v, strconv.FormatBool(req.SecureTransport)) {
				return true
			}
		}
		return false
	case "acs:currenttime":
		now := req.Now
		for _, t := range c.times {
			var ok bool
			switch c.op {
			case "dategreaterthan":
				ok = now.After(t)
			case "dategreaterthanequals":
				ok = !now.Before(t)
			case "datelessthan":
				ok = now.Before(t)
			case "datelessthanequals":
				ok = !now.After(t)
			case "dateequals":
				ok = now.Equal(t)
			case "datenotequals":
				ok = !now.Equal(t)
			}
			if ok {
				return true
			}
		}
		return false
	}
	return strings.Contains(c.op, "not")
}

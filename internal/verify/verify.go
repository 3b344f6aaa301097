// Package verify checks what a TLS endpoint really serves: it performs a
// handshake with the resource's domain as SNI and reports the leaf
// certificate's SHA-256 fingerprint, subject and expiry, and it waits, within
// a grace period, for endpoints to serve an expected certificate. It also
// reads the generic verification keys of a resource's Config.
//
// It is not a trust check: certificates are not validated against roots
// (InsecureSkipVerify); fingerprints are compared with the certificate
// certfleet deployed. It is not the engine either: it never changes a target.
package verify

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/egress"
)

// Dialer connects to an address to probe; *egress.AccountDialer satisfies
// it, and probes made for an account must go through that account's.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Observation is what one address served at one moment.
type Observation struct {
	Address string
	// Sha2 is the SHA-256 of the served leaf's DER, upper-case hex; empty when Err is set.
	Sha2     string
	Subject  string
	NotAfter time.Time
	At       time.Time
	// Err is why no certificate was seen (refused, timeout, handshake failure).
	Err error
}

// String describes the observation for an error message.
func (o Observation) String() string {
	if o.Err != nil {
		return fmt.Sprintf("%s: %v", o.Address, o.Err)
	}
	return fmt.Sprintf("%s serves SHA-256 %s (subject %q, expires %s)", o.Address, o.Sha2, o.Subject, o.NotAfter.UTC().Format(time.RFC3339))
}

// DialTimeout bounds one probe (TCP connect and handshake) unless ctx is shorter.
const DialTimeout = 5 * time.Second

// Probe connects to addr through dial (nil: the default egress policy as
// the root account), performs a TLS handshake with serverName as SNI, and
// reports the leaf it was shown. It never returns an error: failures are in
// Observation.Err. An address the egress policy refuses is never connected
// to, so its error says only "refused by the egress policy", the same
// whether anything listens there or not. Safe for concurrent use.
func Probe(ctx context.Context, dial Dialer, addr, serverName string) Observation {
	o := Observation{Address: addr}
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	if dial == nil {
		dial = (*egress.Dialer)(nil).For(0)
	}
	raw, err := dial.DialContext(ctx, "tcp", addr)
	o.At = time.Now()
	if egress.IsRefused(err) {
		o.Err = err
		return o
	}
	if err != nil {
		o.Err = fmt.Errorf("TLS handshake (SNI %s): %w", serverName, err)
		return o
	}
	conn := tls.Client(raw, &tls.Config{ServerName: serverName, InsecureSkipVerify: true}) // fingerprints are compared instead
	defer conn.Close()
	if err := conn.HandshakeContext(ctx); err != nil {
		o.At = time.Now()
		o.Err = fmt.Errorf("TLS handshake (SNI %s): %w", serverName, err)
		return o
	}
	o.At = time.Now()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		o.Err = errors.New("the server presented no certificate")
		return o
	}
	sum := sha256.Sum256(certs[0].Raw)
	o.Sha2 = strings.ToUpper(hex.EncodeToString(sum[:]))
	o.Subject = certs[0].Subject.String()
	o.NotAfter = certs[0].NotAfter
	return o
}

// ProbeAll probes every address at once through dial and returns the observations in
// the order of addrs.
func ProbeAll(ctx context.Context, dial Dialer, addrs []string, serverName string) []Observation {
	out := make([]Observation, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = Probe(ctx, dial, addr, serverName)
		}()
	}
	wg.Wait()
	return out
}

// Summarize picks the observation that best describes a resource: the first
// that failed, else the first that differs from want, else the first. want
// may be empty (nothing expected). It returns a zero Observation for none.
func Summarize(obs []Observation, want string) Observation {
	for _, o := range obs {
		if o.Err != nil {
			return o
		}
	}
	for _, o := range obs {
		if want != "" && !strings.EqualFold(o.Sha2, want) {
			return o
		}
	}
	if len(obs) == 0 {
		return Observation{}
	}
	return obs[0]
}

// Interval is how often Wait probes again.
const Interval = 500 * time.Millisecond

// MismatchError is returned by Wait when the grace period ends before every
// address serves the expected certificate. Served holds, per address that
// did not, its last observation.
type MismatchError struct {
	Want   string
	Served []Observation
}

func (e *MismatchError) Error() string {
	parts := make([]string, len(e.Served))
	for i, o := range e.Served {
		parts[i] = o.String()
	}
	return fmt.Sprintf("expected SHA-256 %s, but %s", e.Want, strings.Join(parts, "; "))
}

// confirmations is how many consecutive probes must see the expected
// certificate; confirmDelay spaces the confirming probe.
const (
	confirmations = 2
	confirmDelay  = 250 * time.Millisecond
)

// nextWait is the pause before the next round: short when every pending
// address has matched once and only needs confirming.
func nextWait(streak []int, done []bool, interval time.Duration) time.Duration {
	for i := range streak {
		if !done[i] && streak[i] == 0 {
			return interval
		}
	}
	return min(interval, confirmDelay)
}

// Wait probes addrs through dial with serverName as SNI, every interval (Interval when
// zero), until each serves the leaf whose SHA-256 is want or grace has
// passed. It returns the last observation of every address, and a
// *MismatchError naming what the others served when the grace period ran
// out. ctx cancels it early with ctx.Err(). Each address must match on two
// consecutive probes, so a server still handing connections to old
// processes after a reload is not declared done too early.
func Wait(ctx context.Context, dial Dialer, addrs []string, serverName, want string, grace, interval time.Duration) ([]Observation, error) {
	if interval <= 0 {
		interval = Interval
	}
	deadline := time.Now().Add(grace)
	last := make([]Observation, len(addrs))
	done := make([]bool, len(addrs))
	streak := make([]int, len(addrs))
	for {
		var pending []int
		for i := range addrs {
			if !done[i] {
				pending = append(pending, i)
			}
		}
		pctx, cancel := context.WithDeadline(ctx, later(deadline, time.Now().Add(time.Second)))
		var wg sync.WaitGroup
		for _, i := range pending {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := Probe(pctx, dial, addrs[i], serverName)
				last[i] = o
				if o.Err == nil && strings.EqualFold(o.Sha2, want) {
					streak[i]++
				} else {
					streak[i] = 0
				}
				// A reloading server may still hand some connections to
				// old processes: one match is confirmed by a second.
				done[i] = streak[i] >= confirmations
			}()
		}
		wg.Wait()
		cancel()
		var bad []Observation
		for i := range addrs {
			if !done[i] {
				bad = append(bad, last[i])
			}
		}
		if len(bad) == 0 {
			return last, nil
		}
		if err := ctx.Err(); err != nil {
			return last, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return last, &MismatchError{Want: want, Served: bad}
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(min(nextWait(streak, done, interval), left)): // the last probe is at the deadline
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

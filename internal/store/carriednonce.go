package store

import (
	"context"
	"sync"
)

// NonceCarrier is a store that can record a signed read's nonce in the
// read's own first statement (PostgreSQL: a data-modifying WITH ahead of
// the SELECT), so that the read costs no round trip of its own for it.
// CarryNonce returns a context for the read's store calls and the
// CarriedNonce telling what became of n; a nonce the store did not carry
// (no statement it could ride on, or a statement that failed for another
// reason) must still be recorded through NonceUseMany.
type NonceCarrier interface {
	CarryNonce(ctx context.Context, n NonceParams) (context.Context, *CarriedNonce)
}

// CarriedNonce is one nonce waiting to ride on the first read made with its
// context. It passes through these states, in this order only:
//
//	waiting → riding (a statement carries it) → settled (its verdict, or
//	          unknown when the statement failed otherwise)
//	waiting → closed (Outcome found it never carried: no later statement will)
//
// so a nonce is carried by at most one statement, and never after the
// caller decided to record it another way.
type CarriedNonce struct {
	Params  NonceParams
	mu      sync.Mutex
	state   carriedState
	verdict NonceVerdict
	known   bool // settled with a verdict (not an unrelated failure)
}

type carriedState uint8

const (
	carryWaiting carriedState = iota
	carryRiding
	carrySettled
	carryClosed
)

// NewCarriedNonce is n, waiting for a statement.
func NewCarriedNonce(n NonceParams) *CarriedNonce { return &CarriedNonce{Params: n} }

// Board reports whether a statement may carry the nonce, and if so makes it
// the only one that does.
func (c *CarriedNonce) Board() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != carryWaiting {
		return false
	}
	c.state = carryRiding
	return true
}

// Settle records what the carrying statement found: v when known is true;
// otherwise the statement failed for a reason of its own, it wrote nothing,
// and the nonce is still to be recorded.
func (c *CarriedNonce) Settle(v NonceVerdict, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == carryRiding {
		c.state, c.verdict, c.known = carrySettled, v, known
	}
}

// Outcome is the carried nonce's verdict, with carried false when no
// statement settled it (none carried it, its statement failed otherwise,
// or it has not finished): the caller records it another way, and from now
// on no statement carries it.
func (c *CarriedNonce) Outcome() (v NonceVerdict, carried bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case carryWaiting, carryRiding:
		c.state = carryClosed
		return 0, false
	case carrySettled:
		return c.verdict, c.known
	}
	return 0, false
}

type carriedKey struct{}
type ridingKey struct{}

// WithCarriedNonce is ctx whose first read may carry c.
func WithCarriedNonce(ctx context.Context, c *CarriedNonce) context.Context {
	return context.WithValue(ctx, carriedKey{}, c)
}

// CarriedNonceFrom is the nonce waiting in ctx, if any.
func CarriedNonceFrom(ctx context.Context) *CarriedNonce {
	c, _ := ctx.Value(carriedKey{}).(*CarriedNonce)
	return c
}

// WithRidingNonce marks ctx as the context of the one statement carrying c,
// so that the driver's hook that sees the statement end can settle it.
func WithRidingNonce(ctx context.Context, c *CarriedNonce) context.Context {
	return context.WithValue(ctx, ridingKey{}, c)
}

// RidingNonceFrom is the nonce the statement run with ctx carries, if any.
func RidingNonceFrom(ctx context.Context) *CarriedNonce {
	c, _ := ctx.Value(ridingKey{}).(*CarriedNonce)
	return c
}

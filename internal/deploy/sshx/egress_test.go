package sshx

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/egress"
)

// TestEgressRefusedIsPermanent: an account the egress policy keeps off
// loopback never connects to an ssh host there, and the error is permanent
// and says how to allow it.
func TestEgressRefusedIsPermanent(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	cred, err := ParseCredential(&deploy.Access{ID: 1, SecretID: "deploy", SecretKey: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	pin, err := ParseHostKey("SHA256:" + strings.Repeat("A", 43))
	if err != nil {
		t.Fatal(err)
	}
	tenant := egress.New(egress.Policy{}, func(context.Context, int64) (egress.Scope, error) { return egress.Scope{}, nil }, nil)
	_, err = NewPool(IdleClose).Get(t.Context(), Endpoint{Addr: ln.Addr().String(), Pin: pin, Cred: cred, Dialer: tenant.For(7)})
	if !deploy.IsPermanent(err) || !egress.IsRefused(err) || !strings.Contains(err.Error(), "--egress-allow") {
		t.Fatalf("Get = %v, want a permanent egress refusal naming --egress-allow", err)
	}
	select {
	case <-accepted:
		t.Fatal("the refused host was connected to")
	default:
	}
}

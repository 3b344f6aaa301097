package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
)

// Harness is what a product's test hands Run: the deployer and a real target
// it can create resources on and read back.
type Harness struct {
	// Deployer is the deployer under test. Its optional abilities
	// (deploy.Checker, deploy.Snapshotter, deploy.Rollbacker, and
	// deploy.Product, whose Config the engine checks with deploy.Validate)
	// are found by type assertion; a check needing one the deployer lacks is
	// skipped. Required.
	Deployer deploy.Deployer
	// Target returns a valid Target for a new resource, different at each
	// call, on which nothing has been deployed yet. Required.
	Target func(t *testing.T) deploy.Target
	// Served returns what tgt's target holds now: its bytes, or a
	// fingerprint of them; nil when it holds nothing. Required.
	Served func(t *testing.T, tgt deploy.Target) []byte
	// Effects, when set, counts the writes and reloads tgt's target has seen
	// so far (files replaced, reload commands run, deliveries received).
	Effects func(t *testing.T, tgt deploy.Target) int
	// DeployChecksFirst says Deploy itself skips a target that already holds
	// the bundle; a second identical Deploy must then cause no Effects.
	DeployChecksFirst bool
	// BadConfigs are Configs that deploy.Validate and Deploy must both
	// refuse with the same permanent error.
	BadConfigs []BadConfig
	// Stall, when set, returns a Target whose deployment blocks once it has
	// reached the target (a reload command that sleeps, a receiver that does
	// not answer) and a channel closed when it has: Run cancels a Deploy
	// there.
	Stall func(t *testing.T) (tgt deploy.Target, reached <-chan struct{})
	// Failing are targets that refuse deployments (a test command that
	// fails, a receiver that answers 500 quoting the request…). Deploy must
	// fail on each, and no error may carry a secret.
	Failing []Failing
}

// BadConfig is a resource Config the deployer must refuse.
type BadConfig struct {
	Desc   string
	Config json.RawMessage
}

// Failing is a target on which Deploy fails.
type Failing struct {
	Desc   string
	Target func(t *testing.T) deploy.Target
}

// cancelBound is how long a call may take to return once its context is
// cancelled: a liveness bound for "promptly", not a timing assertion.
const cancelBound = 10 * time.Second

// Run checks that h.Deployer keeps the deploy.Deployer contract against h's
// target. Its subtests run one after the other.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Deployer == nil || h.Target == nil || h.Served == nil {
		t.Fatal("deploytest.Run: Harness needs Deployer, Target and Served")
	}
	s := &suite{h: h}
	s.checker, _ = h.Deployer.(deploy.Checker)
	s.snapshotter, _ = h.Deployer.(deploy.Snapshotter)
	s.rollbacker, _ = h.Deployer.(deploy.Rollbacker)
	s.product, _ = h.Deployer.(deploy.Product)

	t.Run("AlreadyDeployed is true after a deployment and false for another bundle", s.alreadyDeployed)
	t.Run("deploying the same bundle twice changes nothing the second time", s.twice)
	t.Run("rollback restores the previous certificate", s.rollbackPrevious)
	t.Run("rollback to nothing before leaves the target as it was", s.rollbackNothing)
	t.Run("a cancelled context returns promptly with context.Canceled", s.cancelled)
	t.Run("bad Configs are refused permanently by Validate and Deploy alike", s.badConfigs)
	t.Run("a bundle without its private key is refused permanently", s.noKey)
	t.Run("targets that refuse make Deploy fail", s.failing)
	t.Run("secrets never appear in errors", s.secrets)
}

type suite struct {
	h           Harness
	checker     deploy.Checker
	snapshotter deploy.Snapshotter
	rollbacker  deploy.Rollbacker
	product     deploy.Product

	mu   sync.Mutex
	seen []seenError // every error any call returned, for the secrets check
}

type seenError struct {
	call    string
	err     error
	secrets []string
	// public is the bundle's certificates, base64 lines joined: an ECDSA
	// private key embeds its public key, so pieces of it found there are
	// not a leak.
	public string
}

var bg = context.Background()

func (s *suite) request(t *testing.T, tgt deploy.Target, b deploy.Bundle) deploy.Request {
	return deploy.Request{JobID: 7, WorkerID: tgt.ResourceID, Target: tgt, Bundle: b}
}

// saw records err (if any) with the secrets req carries.
func (s *suite) saw(call string, req deploy.Request, err error) {
	if err == nil {
		return
	}
	secrets := []string{req.Bundle.KeyPEM}
	if a := req.Target.Access; a != nil {
		secrets = append(secrets, a.SecretKey)
	}
	public := strings.Join(strings.Fields(req.Bundle.CertPEM+req.Bundle.ChainPEM+req.Bundle.FullChainPEM), "")
	s.mu.Lock()
	s.seen = append(s.seen, seenError{call: call, err: err, secrets: secrets, public: public})
	s.mu.Unlock()
}

func (s *suite) deploy(ctx context.Context, req deploy.Request) ([]byte, error) {
	prev, err := s.h.Deployer.Deploy(ctx, req)
	s.saw("Deploy", req, err)
	return prev, err
}

func (s *suite) check(ctx context.Context, req deploy.Request) (bool, error) {
	same, err := s.checker.AlreadyDeployed(ctx, req)
	s.saw("AlreadyDeployed", req, err)
	return same, err
}

func (s *suite) snapshot(ctx context.Context, req deploy.Request) ([]byte, error) {
	prev, err := s.snapshotter.Snapshot(ctx, req)
	s.saw("Snapshot", req, err)
	return prev, err
}

func (s *suite) rollback(ctx context.Context, req deploy.Request, previous []byte, away ...deploy.Bundle) error {
	err := s.rollbacker.Rollback(ctx, req, previous)
	// The bundle being rolled away from is in the target too: its key must
	// not leak either.
	s.saw("Rollback", req, err)
	for _, b := range away {
		s.saw("Rollback", deploy.Request{Bundle: b}, err)
	}
	return err
}

func (s *suite) mustDeploy(t *testing.T, req deploy.Request) []byte {
	t.Helper()
	prev, err := s.deploy(bg, req)
	if err != nil {
		t.Fatalf("Deploy certificate %d to resource %d: %v", req.Bundle.CertID, req.Target.ResourceID, err)
	}
	return prev
}

func (s *suite) mustCheck(t *testing.T, req deploy.Request, want bool, when string) {
	t.Helper()
	got, err := s.check(bg, req)
	if err != nil || got != want {
		t.Errorf("%s: AlreadyDeployed(certificate %d) = %v, %v; want %v, nil", when, req.Bundle.CertID, got, err, want)
	}
}

// deployRecording deploys req and returns what the engine would record as
// its previous state: Snapshot's result, taken first, when the deployer has
// one, else Deploy's own.
func (s *suite) deployRecording(t *testing.T, req deploy.Request) []byte {
	t.Helper()
	if s.snapshotter != nil {
		snap, err := s.snapshot(bg, req)
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		s.mustDeploy(t, req)
		return snap
	}
	return s.mustDeploy(t, req)
}

func (s *suite) served(t *testing.T, tgt deploy.Target) []byte {
	t.Helper()
	return s.h.Served(t, tgt)
}

func (s *suite) wantServed(t *testing.T, tgt deploy.Target, want []byte, what string) {
	t.Helper()
	if got := s.served(t, tgt); !bytes.Equal(got, want) {
		t.Errorf("%s: the target serves %s, want %s", what, short(got), short(want))
	}
}

// short abbreviates what a target serves for a failure message.
func short(b []byte) string {
	switch {
	case b == nil:
		return "nothing"
	case len(b) > 48:
		return fmt.Sprintf("%q… (%d bytes)", b[:48], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func (s *suite) alreadyDeployed(t *testing.T) {
	if s.checker == nil {
		t.Skipf("%T does not implement deploy.Checker", s.h.Deployer)
	}
	tgt := s.h.Target(t)
	a, b := freshBundle(t, tgt.Domain), freshBundle(t, tgt.Domain)
	s.mustCheck(t, s.request(t, tgt, a), false, "on a fresh target")
	s.mustDeploy(t, s.request(t, tgt, a))
	s.mustCheck(t, s.request(t, tgt, a), true, "after deploying it")
	s.mustCheck(t, s.request(t, tgt, b), false, "for another bundle")
}

func (s *suite) twice(t *testing.T) {
	tgt := s.h.Target(t)
	before := s.served(t, tgt)
	req := s.request(t, tgt, freshBundle(t, tgt.Domain))
	previous := s.deployRecording(t, req)
	once := s.served(t, tgt)
	if bytes.Equal(once, before) {
		t.Fatalf("after Deploy the target still serves %s", short(once))
	}
	var effects int
	if s.h.Effects != nil {
		effects = s.h.Effects(t, tgt)
	}

	// At least once: the same request delivered again (a retry after a
	// crash, a lost answer) succeeds and leaves the target as it was.
	if _, err := s.deploy(bg, req); err != nil {
		t.Fatalf("the second Deploy of the same bundle: %v", err)
	}
	s.wantServed(t, tgt, once, "after the second Deploy")
	if s.h.Effects != nil {
		again := s.h.Effects(t, tgt) - effects
		switch {
		case s.h.DeployChecksFirst && again != 0:
			t.Errorf("the second Deploy caused %d writes or reloads; this deployer checks first, want none", again)
		case again != 0:
			t.Logf("the second Deploy caused %d writes or reloads (the engine asks AlreadyDeployed first, when it can)", again)
		}
	}
	if s.checker != nil {
		s.mustCheck(t, req, true, "after the second Deploy")
	}

	// What was recorded before the first delivery still undoes both.
	if s.rollbacker == nil {
		return
	}
	if err := s.rollback(bg, s.request(t, tgt, deploy.Bundle{}), previous, req.Bundle); err != nil {
		t.Fatalf("Rollback after two deliveries: %v", err)
	}
	s.wantServed(t, tgt, before, "after rolling back two deliveries")
}

func (s *suite) rollbackPrevious(t *testing.T) {
	if s.rollbacker == nil {
		t.Skipf("%T does not implement deploy.Rollbacker", s.h.Deployer)
	}
	tgt := s.h.Target(t)
	a, b := freshBundle(t, tgt.Domain), freshBundle(t, tgt.Domain)
	s.mustDeploy(t, s.request(t, tgt, a))
	servedA := s.served(t, tgt)
	previous := s.deployRecording(t, s.request(t, tgt, b))
	if got := s.served(t, tgt); bytes.Equal(got, servedA) {
		t.Fatalf("after deploying another bundle the target still serves %s", short(got))
	}
	// The engine hands Rollback the certificate the resource held before.
	if err := s.rollback(bg, s.request(t, tgt, a), previous, b); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	s.wantServed(t, tgt, servedA, "after the rollback")
	if s.checker != nil {
		s.mustCheck(t, s.request(t, tgt, a), true, "after the rollback, for the restored bundle")
		s.mustCheck(t, s.request(t, tgt, b), false, "after the rollback, for the bundle rolled back")
	}
}

func (s *suite) rollbackNothing(t *testing.T) {
	if s.rollbacker == nil {
		t.Skipf("%T does not implement deploy.Rollbacker", s.h.Deployer)
	}
	tgt := s.h.Target(t)
	before := s.served(t, tgt)
	a := freshBundle(t, tgt.Domain)
	previous := s.deployRecording(t, s.request(t, tgt, a))
	// The resource held no certificate: the engine passes an empty Bundle.
	if err := s.rollback(bg, s.request(t, tgt, deploy.Bundle{}), previous, a); err != nil {
		t.Fatalf("Rollback to nothing: %v", err)
	}
	s.wantServed(t, tgt, before, "after rolling back the first deployment")
	if s.checker != nil {
		s.mustCheck(t, s.request(t, tgt, a), false, "after rolling back the first deployment")
	}
}

// bounded runs call and fails t unless it returns within cancelBound.
func bounded(t *testing.T, what string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(cancelBound):
		t.Fatalf("%s did not return within %s of its context's cancellation", what, cancelBound)
		return nil
	}
}

func wantCanceled(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%s with a cancelled context: got %v, want an error wrapping context.Canceled", what, err)
	}
}

func (s *suite) cancelled(t *testing.T) {
	t.Run("before the call", func(t *testing.T) {
		tgt := s.h.Target(t)
		before := s.served(t, tgt)
		req := s.request(t, tgt, freshBundle(t, tgt.Domain))
		ctx, cancel := context.WithCancel(bg)
		cancel()
		wantCanceled(t, "Deploy", bounded(t, "Deploy", func() error { _, err := s.deploy(ctx, req); return err }))
		if s.checker != nil {
			wantCanceled(t, "AlreadyDeployed", bounded(t, "AlreadyDeployed", func() error { _, err := s.check(ctx, req); return err }))
		}
		if s.snapshotter != nil {
			wantCanceled(t, "Snapshot", bounded(t, "Snapshot", func() error { _, err := s.snapshot(ctx, req); return err }))
		}
		if s.rollbacker != nil {
			wantCanceled(t, "Rollback", bounded(t, "Rollback", func() error { return s.rollback(ctx, req, nil) }))
		}
		s.wantServed(t, tgt, before, "after calls with a cancelled context")
	})
	t.Run("during Deploy", func(t *testing.T) {
		if s.h.Stall == nil {
			t.Skip("the harness has no Stall target to cancel a deployment on")
		}
		tgt, reached := s.h.Stall(t)
		req := s.request(t, tgt, freshBundle(t, tgt.Domain))
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		done := make(chan error, 1)
		go func() { _, err := s.deploy(ctx, req); done <- err }()
		select {
		case <-reached:
		case err := <-done:
			t.Fatalf("Deploy to the stalling target returned before reaching it: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("Deploy did not reach the stalling target within 30s")
		}
		cancel()
		wantCanceled(t, "Deploy", bounded(t, "Deploy", func() error { return <-done }))
	})
}

func (s *suite) badConfigs(t *testing.T) {
	if len(s.h.BadConfigs) == 0 {
		t.Skip("the harness lists no bad Config")
	}
	for _, bc := range s.h.BadConfigs {
		t.Run(bc.Desc, func(t *testing.T) {
			good := s.h.Target(t)
			before := s.served(t, good)
			tgt := good
			tgt.Config = bc.Config
			req := s.request(t, tgt, freshBundle(t, tgt.Domain))

			var verr error
			if s.product != nil {
				verr = deploy.Validate(s.product, bc.Config, tgt.Access != nil)
				s.saw("Validate", req, verr)
				if verr == nil || !deploy.IsPermanent(verr) {
					t.Errorf("Validate(%s): got %v, want a permanent error", bc.Config, verr)
				}
			}
			_, derr := s.deploy(bg, req)
			if derr == nil || !deploy.IsPermanent(derr) {
				t.Errorf("Deploy with Config %s: got %v, want a permanent error", bc.Config, derr)
			}
			if verr != nil && derr != nil && !strings.Contains(derr.Error(), verr.Error()) {
				t.Errorf("Validate and Deploy disagree on Config %s:\nValidate: %v\nDeploy: %v", bc.Config, verr, derr)
			}
			// The engine asks these before Deploy: a transient error there
			// would retry a Config that can never work.
			if s.checker != nil {
				if _, err := s.check(bg, req); err == nil || !deploy.IsPermanent(err) {
					t.Errorf("AlreadyDeployed with Config %s: got %v, want a permanent error", bc.Config, err)
				}
			}
			if s.snapshotter != nil {
				if _, err := s.snapshot(bg, req); err == nil || !deploy.IsPermanent(err) {
					t.Errorf("Snapshot with Config %s: got %v, want a permanent error", bc.Config, err)
				}
			}
			s.wantServed(t, good, before, "after the refused Config")
		})
	}
}

func (s *suite) noKey(t *testing.T) {
	tgt := s.h.Target(t)
	before := s.served(t, tgt)
	b := freshBundle(t, tgt.Domain)
	b.KeyPEM = ""
	if _, err := s.deploy(bg, s.request(t, tgt, b)); err == nil || !deploy.IsPermanent(err) {
		t.Errorf("Deploy of certificate %d without its key: got %v, want a permanent error", b.CertID, err)
	}
	s.wantServed(t, tgt, before, "after the refused bundle")
}

func (s *suite) failing(t *testing.T) {
	if len(s.h.Failing) == 0 {
		t.Skip("the harness lists no failing target")
	}
	for _, f := range s.h.Failing {
		t.Run(f.Desc, func(t *testing.T) {
			tgt := f.Target(t)
			req := s.request(t, tgt, freshBundle(t, tgt.Domain))
			if _, err := s.deploy(bg, req); err == nil {
				t.Errorf("Deploy to a target that refuses succeeded")
			}
			// The other calls may succeed or fail; their errors are checked
			// for secrets.
			if s.checker != nil {
				s.check(bg, req)
			}
			if s.snapshotter != nil {
				s.snapshot(bg, req)
			}
			if s.rollbacker != nil {
				s.rollback(bg, req, nil)
			}
		})
	}
}

// secrets checks every error the other subtests saw: none may quote a
// private key or a credential's secret, in whole or in part.
func (s *suite) secrets(t *testing.T) {
	s.mu.Lock()
	seen := s.seen
	s.mu.Unlock()
	if len(seen) == 0 {
		t.Skip("no call failed, so no error could leak a secret")
	}
	for _, e := range seen {
		msg := e.err.Error()
		for _, secret := range e.secrets {
			if piece, ok := leaks(msg, secret, e.public); ok {
				if len(piece) > 16 {
					piece = piece[:16] + "…"
				}
				if len(msg) > 300 {
					msg = msg[:300] + "…"
				}
				t.Errorf("%s returned an error quoting a secret (%q): %s", e.call, piece, msg)
			}
		}
	}
	t.Logf("checked %d errors", len(seen))
}

// leaks reports whether msg contains secret, or, for a PEM secret, a PEM
// private key label or any 16-character piece of its base64 lines that is
// not also in public.
func leaks(msg, secret, public string) (string, bool) {
	secret = strings.TrimSpace(secret)
	if len(secret) < 8 {
		return "", false // too short to tell from chance
	}
	if strings.Contains(msg, secret) {
		return secret, true
	}
	if !strings.Contains(secret, "-----BEGIN") {
		return "", false
	}
	if strings.Contains(msg, "PRIVATE KEY-----") {
		return "PRIVATE KEY-----", true
	}
	for line := range strings.Lines(secret) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "-----") {
			continue
		}
		for i := 0; i+16 <= len(line); i += 16 {
			if piece := line[i : i+16]; strings.Contains(msg, piece) && !strings.Contains(public, piece) {
				return piece, true
			}
		}
	}
	return "", false
}

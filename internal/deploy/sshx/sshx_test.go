package sshx

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/testutil"
)

func newPub(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseHostKey(t *testing.T) {
	t.Parallel()
	k := newPub(t)
	fp := ssh.FingerprintSHA256(k)
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	for _, tc := range []struct {
		desc, in, wantFP, wantErr string
		wantKey                   bool
	}{
		{desc: "authorized key", in: authorized, wantFP: fp, wantKey: true},
		{desc: "authorized key with comment", in: authorized + " root@web1\n", wantFP: fp, wantKey: true},
		{desc: "fingerprint", in: fp, wantFP: fp},
		{desc: "padded fingerprint", in: fp + "=", wantFP: fp},
		{desc: "empty", in: "", wantErr: `Config key "HostKey" is required`},
		{desc: "short fingerprint", in: "SHA256:abc", wantErr: "not a SHA256 fingerprint"},
		{desc: "garbage", in: "hello", wantErr: "neither a public key"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			pin, err := ParseHostKey(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || pin.Fingerprint != tc.wantFP || (pin.Key != nil) != tc.wantKey {
				t.Fatalf("pin = %+v, %v", pin, err)
			}
		})
	}
}

func TestParseCredential(t *testing.T) {
	t.Parallel()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	enc, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	plainPEM, encPEM := string(pem.EncodeToMemory(plain)), string(pem.EncodeToMemory(enc))
	for _, tc := range []struct {
		desc       string
		access     *deploy.Access
		wantSigner bool
		wantErr    string
	}{
		{desc: "private key", access: &deploy.Access{SecretID: "deploy", SecretKey: plainPEM}, wantSigner: true},
		{desc: "encrypted key with passphrase", access: &deploy.Access{SecretID: "deploy", SecretKey: encPEM,
			Config: json.RawMessage(`{"Passphrase":"s3cret"}`)}, wantSigner: true},
		{desc: "encrypted key without passphrase", access: &deploy.Access{SecretID: "deploy", SecretKey: encPEM}, wantErr: "set Passphrase"},
		{desc: "wrong passphrase", access: &deploy.Access{SecretID: "deploy", SecretKey: encPEM,
			Config: json.RawMessage(`{"Passphrase":"nope"}`)}, wantErr: "private key"},
		{desc: "password", access: &deploy.Access{SecretID: "deploy", SecretKey: "hunter2"}},
		{desc: "password with passphrase", access: &deploy.Access{SecretID: "deploy", SecretKey: "hunter2",
			Config: json.RawMessage(`{"Passphrase":"x"}`)}, wantErr: "not a PEM private key"},
		{desc: "unknown config key", access: &deploy.Access{SecretID: "deploy", SecretKey: "hunter2",
			Config: json.RawMessage(`{"Port":22}`)}, wantErr: "Port"},
		{desc: "no user", access: &deploy.Access{SecretKey: "hunter2"}, wantErr: "SecretId"},
		{desc: "no access", wantErr: "no CloudAccessId"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := ParseCredential(tc.access)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !deploy.IsPermanent(err) {
					t.Fatalf("err = %v, want a permanent error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || (c.signer != nil) != tc.wantSigner || c.User != "deploy" {
				t.Fatalf("credential = %+v, %v", c, err)
			}
		})
	}
}

// TestRoundsRunOnce: writers joining the same key at about the same time
// share one run, and each gets its result; a later writer starts a new round.
func TestRoundsRunOnce(t *testing.T) {
	quiet, maxWait := roundQuiet, roundMaxWait
	roundQuiet, roundMaxWait = 100*time.Millisecond, 2*time.Second
	t.Cleanup(func() { roundQuiet, roundMaxWait = quiet, maxWait })

	rs := newRounds()
	var runs, members atomic.Int32
	run := func(_ context.Context, ms []member) error {
		runs.Add(1)
		members.Add(int32(len(ms)))
		return deploy.Permanentf("test failed")
	}
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 2 * time.Millisecond)
			_, errs[i] = rs.join(context.Background(), "host", member{}, run)
		}()
	}
	wg.Wait()
	if runs.Load() != 1 || members.Load() != 20 {
		t.Fatalf("%d runs with %d members, want 1 with 20", runs.Load(), members.Load())
	}
	for i, err := range errs {
		if !deploy.IsPermanent(err) {
			t.Fatalf("writer %d got %v, want the shared permanent error", i, err)
		}
	}
	if _, err := rs.join(context.Background(), "host", member{}, run); err == nil || runs.Load() != 2 {
		t.Fatalf("a later writer: %v, %d runs", err, runs.Load())
	}
	if _, err := rs.join(context.Background(), "other", member{}, func(context.Context, []member) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "''", "a b": "'a b'", "it's": `'it'\''s'`} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestRoundsLeaderCancelled: the member leading a round stops waiting when
// its context ends, while the round still runs to its end.
func TestRoundsLeaderCancelled(t *testing.T) {
	t.Parallel()
	rs := newRounds()
	ctx, cancel := context.WithCancel(context.Background())
	running, release := make(chan struct{}), make(chan struct{})
	type result struct {
		done <-chan struct{}
		err  error
	}
	res := make(chan result, 1)
	go func() {
		done, err := rs.join(ctx, "host", member{}, func(ctx context.Context, _ []member) error {
			close(running)
			<-release
			return ctx.Err() // the round's context is not the leader's
		})
		res <- result{done, err}
	}()
	<-running
	cancel()
	r := <-res
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("the leader got %v, want context.Canceled", r.err)
	}
	select {
	case <-r.done:
		t.Fatal("the round ended before its run did")
	default:
	}
	close(release)
	<-r.done
}

// gate is a deploy.HostGate whose Others the test sets; it signals once the
// round's leader has asked it several times.
type gate struct {
	others atomic.Int32
	asked  atomic.Int32
	polled chan struct{}
	once   sync.Once
}

func (g *gate) Others() int {
	if g.asked.Add(1) == 5 {
		g.once.Do(func() { close(g.polled) })
	}
	return int(g.others.Load())
}

func (g *gate) Yield() {}

// TestRoundsWaitForHost: while the engine reports other deployments on
// their way to the host, a round does not close on settle (it used to: with
// --per-host 16, fifty vhosts took four rounds); the late member shares it.
func TestRoundsWaitForHost(t *testing.T) {
	quiet, maxWait := roundQuiet, roundMaxWait
	roundQuiet, roundMaxWait = time.Minute, time.Minute // only settle (or the gate) can close the round
	t.Cleanup(func() { roundQuiet, roundMaxWait = quiet, maxWait })

	rs := newRounds()
	g := &gate{polled: make(chan struct{})}
	g.others.Store(1)
	var runs, members atomic.Int32
	run := func(_ context.Context, ms []member) error {
		runs.Add(1)
		members.Add(int32(len(ms)))
		return nil
	}
	first := make(chan error, 1)
	go func() {
		_, err := rs.join(context.Background(), "host", member{gate: g}, run)
		first <- err
	}()
	select {
	case <-g.polled:
	case <-time.After(10 * time.Second):
		t.Fatal("the round's leader never asked the host gate")
	}
	second := make(chan error, 1)
	go func() { // the last deployment to the host joins
		_, err := rs.join(context.Background(), "host", member{gate: g}, run)
		second <- err
	}()
	testutil.WaitFor(t, 10*time.Second, "the second member in the open round", func() (bool, error) {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		r := rs.open["host"]
		return r != nil && len(r.members) == 2, nil
	})
	g.others.Store(0) // nobody else is on the way: the round closes
	for _, c := range []chan error{first, second} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	if runs.Load() != 1 || members.Load() != 2 {
		t.Fatalf("%d runs with %d members, want 1 with 2", runs.Load(), members.Load())
	}
}

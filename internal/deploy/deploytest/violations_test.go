package deploytest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
)

// broken is a Fake that breaks one rule of the contract.
type broken struct {
	*deploytest.Fake
	rule string
}

func (b broken) Deploy(ctx context.Context, req deploy.Request) ([]byte, error) {
	prev, err := b.Fake.Deploy(ctx, req)
	switch {
	case err != nil && b.rule == "leaks the key":
		return nil, fmt.Errorf("%w; request was %+v", err, req.Bundle)
	case err != nil && b.rule == "loses permanence":
		return nil, errors.New(err.Error())
	case err != nil && b.rule == "loses the context":
		return nil, fmt.Errorf("deploy failed: %v", err)
	}
	return prev, err
}

func (b broken) Rollback(ctx context.Context, req deploy.Request, previous []byte) error {
	if b.rule == "forgets to roll back" {
		return nil
	}
	return b.Fake.Rollback(ctx, req, previous)
}

// TestBrokenDeployer runs the suite on a broken Fake; it only runs as the
// child process of TestRunCatchesViolations, which expects it to fail.
func TestBrokenDeployer(t *testing.T) {
	rule := os.Getenv("DEPLOYTEST_BROKEN")
	if rule == "" {
		t.Skip("run by TestRunCatchesViolations")
	}
	f := deploytest.NewFake()
	deploytest.Run(t, deploytest.Harness{
		Deployer: broken{f, rule},
		Target:   func(*testing.T) deploy.Target { return fakeTarget() },
		Served: func(_ *testing.T, tgt deploy.Target) []byte {
			if b, ok := f.Serving(tgt.ResourceID); ok {
				return []byte(b.Sha2)
			}
			return nil
		},
		BadConfigs: []deploytest.BadConfig{{Desc: "an unknown key", Config: json.RawMessage(`{"Nope":1}`)}},
		Failing: []deploytest.Failing{{Desc: "injected", Target: func(*testing.T) deploy.Target {
			tgt := fakeTarget()
			f.Fail(tgt.ResourceID, 100, true)
			return tgt
		}}},
	})
}

// TestRunCatchesViolations: the suite fails a deployer breaking the
// contract, naming the rule broken.
func TestRunCatchesViolations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ rule, want string }{
		{rule: "leaks the key", want: "returned an error quoting a secret"},
		{rule: "loses permanence", want: "want a permanent error"},
		{rule: "loses the context", want: "want an error wrapping context.Canceled"},
		{rule: "forgets to roll back", want: "after the rollback: the target serves"},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenDeployer$", "-test.count=1")
			cmd.Env = append(os.Environ(), "DEPLOYTEST_BROKEN="+tc.rule)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a deployer that %s:\n%s", tc.rule, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("the suite failed a deployer that %s without saying %q:\n%s", tc.rule, tc.want, out)
			}
		})
	}
}

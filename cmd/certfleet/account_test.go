package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestAccountSettings: account create/update/show keep an account's egress
// allowances and local-root subdirectory, and refuse what is not one.
func TestAccountSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the certfleet binary")
	}
	t.Parallel()
	home, dataDir := t.TempDir(), t.TempDir()
	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(binary, append(args, "--data-dir", dataDir)...)
		cmd.Env = cleanEnv(home)
		out, err := cmd.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	type account struct {
		AccountName, LocalRoot, AccessKeySecret string
		EgressAllow                             []string
	}
	decode := func(out string) account {
		t.Helper()
		var a account
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			t.Fatalf("%v: %q", err, out)
		}
		return a
	}

	out, code := run("account", "create", "acme", "--egress-allow", "10.1.0.0/16", "--local-root", "acme")
	if code != 0 || decode(out).AccessKeySecret == "" {
		t.Fatalf("account create: exit %d %q", code, out)
	}
	out, _ = run("account", "show", "acme")
	if a := decode(out); a.LocalRoot != "acme" || strings.Join(a.EgressAllow, ",") != "10.1.0.0/16" || a.AccessKeySecret != "" {
		t.Errorf("account show after create: %+v", a)
	}
	out, code = run("account", "update", "acme", "--egress-allow", "hooks.internal.example", "--egress-allow", "fd00::/8", "--no-local-root")
	if a := decode(out); code != 0 || a.LocalRoot != "" || strings.Join(a.EgressAllow, ",") != "10.1.0.0/16,hooks.internal.example,fd00::/8" {
		t.Errorf("account update: exit %d %+v", code, a)
	}
	out, _ = run("account", "update", "acme", "--clear-egress-allow", "--local-root", "tenants/acme")
	if a := decode(out); a.LocalRoot != "tenants/acme" || len(a.EgressAllow) != 0 {
		t.Errorf("account update --clear-egress-allow: %+v", a)
	}
	for _, args := range [][]string{
		{"account", "update", "acme", "--local-root", "../etc"},
		{"account", "update", "acme", "--local-root", "/srv/tls"},
		{"account", "update", "acme", "--egress-allow", "not a host"},
		{"account", "create", "globex", "--egress-allow", "10.0.0.0/33"},
	} {
		if _, code := run(args...); code != exitUsage {
			t.Errorf("certfleet %v: exit %d, want 2", args, code)
		}
	}
	if _, code := run("account", "show", "globex"); code != 1 {
		t.Errorf("account show of an account never created (refused flags): exit %d, want 1", code)
	}
	if _, code := run("account", "update", "nobody", "--no-local-root"); code != 1 {
		t.Errorf("account update of an unknown account: exit %d, want 1", code)
	}
}

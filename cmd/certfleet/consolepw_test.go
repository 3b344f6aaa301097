package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/password"
	"github.com/certfleet/certfleet/internal/store/sqlite"
)

// TestAccountPassword: `account password` sets the root's console password
// from standard input (before the first serve too), refuses a weak one, and
// --remove deletes it.
func TestAccountPassword(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the certfleet binary")
	}
	t.Parallel()
	home, dataDir := t.TempDir(), t.TempDir()
	run := func(stdin string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(binary, append(args, "--data-dir", dataDir)...)
		cmd.Env = cleanEnv(home)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	hash := func() string {
		t.Helper()
		st, err := sqlite.Open(context.Background(), filepath.Join(dataDir, "certfleet.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		a, err := st.AccountGetByName(context.Background(), "root")
		if err != nil {
			t.Fatal(err)
		}
		p, err := st.LoginProfileGet(context.Background(), a.ID, 0)
		if err != nil {
			return ""
		}
		return p.PasswordHash
	}
	if out, code := run("password\n", "account", "password", "root"); code == 0 || !strings.Contains(out, "letters with digits or symbols") {
		t.Fatalf("weak password: exit %d %q", code, out)
	}
	if out, code := run("console-pass-1\n", "account", "password", "root"); code != 0 || !strings.Contains(out, "sign in at /console/ as root") {
		t.Fatalf("account password: exit %d %q", code, out)
	}
	if h := hash(); !password.Verify(h, "console-pass-1") {
		t.Fatalf("stored hash %q does not verify the password", h)
	}
	if out, code := run("console-pass-2\n", "account", "password", "root"); code != 0 || !password.Verify(hash(), "console-pass-2") {
		t.Fatalf("second account password: exit %d %q", code, out)
	}
	if out, code := run("", "account", "password", "root", "--remove"); code != 0 || hash() != "" {
		t.Fatalf("--remove: exit %d %q", code, out)
	}
	if out, code := run("console-pass-1\n", "account", "password", "nosuch"); code == 0 || !strings.Contains(out, "does not exist") {
		t.Fatalf("unknown account: exit %d %q", code, out)
	}
}

//go:build unix

package local

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy"
)

// TestScope: the root account writes anywhere under --local-root; any other
// account nowhere without a LocalRoot, and with one only inside it.
func TestScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		scope deploy.Scope
		path  []string // under the root
		want  string   // empty: accepted
	}{
		{desc: "root anywhere", path: []string{"a.pem"}},
		{desc: "root inside a subdirectory", path: []string{"acme", "a.pem"}},
		{desc: "an account without a local root", scope: deploy.Scope{Confined: true}, path: []string{"acme", "a.pem"},
			want: "this account may not write local files"},
		{desc: "an account inside its local root", scope: deploy.Scope{Confined: true, LocalRoot: "acme"}, path: []string{"acme", "a.pem"}},
		{desc: "an account in a directory its local root does not exist yet", scope: deploy.Scope{Confined: true, LocalRoot: "acme"},
			path: []string{"acme", "later", "a.pem"}},
		{desc: "an account outside its local root", scope: deploy.Scope{Confined: true, LocalRoot: "acme"}, path: []string{"a.pem"},
			want: "outside the account's local root"},
		{desc: "an account in another account's directory", scope: deploy.Scope{Confined: true, LocalRoot: "acme"},
			path: []string{"other", "a.pem"}, want: "outside the account's local root"},
		{desc: "a local root that climbs out", scope: deploy.Scope{Confined: true, LocalRoot: "../outside"}, path: []string{"a.pem"},
			want: "not a relative path inside --local-root"},
		{desc: "a local root that is a symlink out", scope: deploy.Scope{Confined: true, LocalRoot: "escape"},
			path: []string{"escape", "a.pem"}, want: "resolves outside --local-root"},
		{desc: "a local root that does not exist", scope: deploy.Scope{Confined: true, LocalRoot: "nobody"},
			path: []string{"nobody", "a.pem"}, want: "the operator must create it"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			mkdir(t, e.in("acme"))
			mkdir(t, e.in("other"))
			symlink(t, e.outside, e.in("escape"))
			req := e.req(t, map[string]any{"CertPath": e.in(tt.path...), "KeyPath": e.in(tt.path...) + ".key"})
			req.Target.AccountID, req.Target.Scope = 2, tt.scope
			claims, err := deploy.Check(e.d, req.Target, false)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Check: %v, want nil", err)
			case tt.want != "" && (err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Check: %v, want a permanent error containing %q", err, tt.want)
			case tt.want != "":
				// Deploy refuses the same, writing nothing.
				if _, err := e.d.Deploy(context.Background(), req); err == nil || !deploy.IsPermanent(err) {
					t.Errorf("Deploy: %v, want a permanent error", err)
				}
				wantAbsent(t, e.in(tt.path...))
				return
			}
			want := []string{"local:" + e.in(tt.path...), "local:" + e.in(tt.path...) + ".key"}
			if !slices.Equal(claims, want) {
				t.Errorf("claims = %q, want %q", claims, want)
			}
		})
	}
}

// TestClaimsResolveSymlinks: two spellings of one file claim the same name.
func TestClaimsResolveSymlinks(t *testing.T) {
	t.Parallel()
	e := setup(t)
	mkdir(t, e.in("real"))
	symlink(t, e.in("real"), e.in("alias"))
	a, err := deploy.Check(e.d, e.req(t, map[string]any{"CertPath": e.in("real", "a.pem"), "KeyPath": e.in("real", "a.key")}).Target, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := deploy.Check(e.d, e.req(t, map[string]any{"CertPath": e.in("alias", "a.pem"), "KeyPath": e.in("alias", "x.key")}).Target, false)
	if err != nil {
		t.Fatal(err)
	}
	if a[0] != b[0] {
		t.Errorf("claims %q and %q differ for one file", a[0], b[0])
	}
}

func TestKeyMode(t *testing.T) {
	t.Parallel()
	for mode, want := range map[string]string{
		"0600": "", "0640": "", "0400": "", "0440": "",
		"0644": "may not be writable by its group nor accessible to others",
		"0660": "may not be writable by its group nor accessible to others",
		"0604": "may not be writable by its group nor accessible to others",
		"0777": "may not be writable by its group nor accessible to others",
	} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			req := e.req(t, map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key"), "KeyMode": mode})
			err := deploy.Validate(e.d, req.Target.Config, false)
			switch {
			case want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case want != "" && (err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), want) ||
				!strings.Contains(err.Error(), `"KeyMode"`)):
				t.Errorf("got %v, want a permanent error naming KeyMode and containing %q", err, want)
			}
		})
	}
}

// TestRollbackRestoresModeAndOwner: a file is restored with the mode and
// owner it had, not those of the Config key that names it now.
func TestRollbackRestoresModeAndOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file another owner")
	}
	e := setup(t)
	writeFile(t, e.in("a.pem"), "old cert", 0o640)
	if err := os.Chown(e.in("a.pem"), 4321, 5432); err != nil {
		t.Fatal(err)
	}
	req := e.req(t, map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key")})
	previous, err := e.d.Deploy(context.Background(), req)
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	wantFile(t, e.in("a.pem"), e.bundle.FullChainPEM, 0o644)
	if err := e.d.Rollback(context.Background(), req, previous); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	wantFile(t, e.in("a.pem"), "old cert", 0o640)
	wantOwner(t, e.in("a.pem"), 4321, 5432)
	wantAbsent(t, e.in("a.key"))
}

// TestRollbackOldSnapshot: a snapshot from before modes were recorded (the
// content alone, base64) still rolls back, with the key's mode.
func TestRollbackOldSnapshot(t *testing.T) {
	t.Parallel()
	e := setup(t)
	req := e.req(t, map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key")})
	if _, err := e.d.Deploy(context.Background(), req); err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	old, err := json.Marshal(map[string]any{e.in("a.pem"): base64.StdEncoding.EncodeToString([]byte("old cert")), e.in("a.key"): nil})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.d.Rollback(context.Background(), req, old); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	wantFile(t, e.in("a.pem"), "old cert", 0o644)
	wantAbsent(t, e.in("a.key"))
}

func wantOwner(t *testing.T, path string, uid, gid int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s is owned by %d:%d, want %d:%d", path, st.Uid, st.Gid, uid, gid)
	}
}

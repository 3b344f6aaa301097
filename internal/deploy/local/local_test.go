package local

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy"
)

// env is one test's world: a local root, a directory outside it, and a
// Deployer allowed to run a few reload commands.
type env struct {
	base    string // parent of root and outside
	root    string // the Deployer's LocalRoot
	outside string // a directory outside the root
	marker  string // the file reloadCmd appends a line to
	// reloadCmd is allowed and records each run in marker.
	reloadCmd string
	d         *Deployer
	bundle    deploy.Bundle
}

const (
	failingCmd = "false"
	noisyCmd   = "echo broken config >&2; exit 3"
	slowCmd    = "sleep 10"
)

func setup(t *testing.T) *env {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		base:    base,
		root:    filepath.Join(base, "root"),
		outside: filepath.Join(base, "outside"),
		marker:  filepath.Join(base, "reloads"),
		bundle:  deploytest.Bundle(t, "www.example.com"),
	}
	for _, dir := range []string{e.root, e.outside} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.reloadCmd = "echo reloaded >> '" + e.marker + "'"
	e.d = e.deployer(e.root)
	return e
}

func (e *env) deployer(root string) *Deployer {
	return New(Options{
		Root:        root,
		ReloadAllow: []string{e.reloadCmd, failingCmd, noisyCmd, slowCmd},
	})
}

func (e *env) req(t *testing.T, cfg map[string]any) deploy.Request {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return deploy.Request{
		JobID:    7,
		WorkerID: 9,
		Target:   deploy.Target{ResourceID: 3, CloudName: "local", CloudProduct: "FILE", Domain: "www.example.com", Config: raw},
		Bundle:   e.bundle,
	}
}

// in returns name joined to the root.
func (e *env) in(name ...string) string { return filepath.Join(append([]string{e.root}, name...)...) }

func (e *env) reloads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(e.marker)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "reloaded\n")
}

func writeFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

// wantFile checks path holds content with mode.
func wantFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("read %s: %v", path, err)
		return
	}
	if string(b) != content {
		t.Errorf("%s holds %q, want %q", path, b, content)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != mode {
		t.Errorf("%s has mode %#o, want %#o", path, got, mode)
	}
}

func wantAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists (err %v), want it absent", path, err)
	}
}

func TestDeployWritesFiles(t *testing.T) {
	t.Parallel()
	type want struct {
		path    func(e *env) string
		content func(b deploy.Bundle) string
		mode    fs.FileMode
	}
	full := func(b deploy.Bundle) string { return b.FullChainPEM }
	chain := func(b deploy.Bundle) string { return b.ChainPEM }
	key := func(b deploy.Bundle) string { return b.KeyPEM }
	at := func(name ...string) func(e *env) string { return func(e *env) string { return e.in(name...) } }

	tests := []struct {
		desc string
		// prepare lays out the file system and returns the Config; it may
		// replace e.d.
		prepare func(t *testing.T, e *env) map[string]any
		want    []want
		// symlinks must still be symlinks after the deployment.
		symlinks []string
	}{
		{
			desc: "cert, chain and key with the default key mode, then reload",
			prepare: func(t *testing.T, e *env) map[string]any {
				return map[string]any{"CertPath": e.in("a.pem"), "ChainPath": e.in("chain.pem"), "KeyPath": e.in("a.key"), "ReloadCommand": e.reloadCmd}
			},
			want: []want{{at("a.pem"), full, 0o644}, {at("chain.pem"), chain, 0o644}, {at("a.key"), key, 0o600}},
		},
		{
			desc: "KeyMode 0640 in a subdirectory, existing files overwritten",
			prepare: func(t *testing.T, e *env) map[string]any {
				mkdir(t, e.in("nginx", "tls"))
				writeFile(t, e.in("nginx", "tls", "a.pem"), "old cert", 0o600)
				writeFile(t, e.in("nginx", "tls", "a.key"), "old key", 0o644)
				return map[string]any{"CertPath": e.in("nginx", "tls", "a.pem"), "KeyPath": e.in("nginx", "tls", "a.key"), "KeyMode": "0640"}
			},
			want: []want{{at("nginx", "tls", "a.pem"), full, 0o644}, {at("nginx", "tls", "a.key"), key, 0o640}},
		},
		{
			desc: "a symlink inside the root is written through and kept",
			prepare: func(t *testing.T, e *env) map[string]any {
				mkdir(t, e.in("archive"))
				writeFile(t, e.in("archive", "a1.pem"), "old cert", 0o644)
				symlink(t, "archive/a1.pem", e.in("a.pem"))
				return map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key")}
			},
			want:     []want{{at("archive", "a1.pem"), full, 0o644}, {at("a.pem"), full, 0o644}, {at("a.key"), key, 0o600}},
			symlinks: []string{"a.pem"},
		},
		{
			desc: "the local root itself reached through a symlink",
			prepare: func(t *testing.T, e *env) map[string]any {
				link := filepath.Join(e.base, "rootlink")
				symlink(t, e.root, link)
				e.d = e.deployer(link)
				return map[string]any{"CertPath": filepath.Join(link, "a.pem"), "KeyPath": filepath.Join(link, "a.key")}
			},
			want: []want{{at("a.pem"), full, 0o644}, {at("a.key"), key, 0o600}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			cfg := tt.prepare(t, e)
			req := e.req(t, cfg)
			if err := deploy.Validate(e.d, req.Target.Config, false); err != nil {
				t.Fatalf("ValidateConfig: %v", err)
			}
			if _, err := e.d.Deploy(context.Background(), req); err != nil {
				t.Fatalf("Deploy: %v", err)
			}
			for _, w := range tt.want {
				wantFile(t, w.path(e), w.content(e.bundle), w.mode)
			}
			for _, name := range tt.symlinks {
				if fi, err := os.Lstat(e.in(name)); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
					t.Errorf("%s is no longer a symlink (err %v)", e.in(name), err)
				}
			}
			wantReloads := 0
			if cfg["ReloadCommand"] != nil {
				wantReloads = 1
			}
			if got := e.reloads(t); got != wantReloads {
				t.Errorf("reload ran %d times, want %d", got, wantReloads)
			}
			if leftovers, _ := filepath.Glob(filepath.Join(e.root, "*", ".*.tmp")); len(leftovers) > 0 {
				t.Errorf("temporary files left behind: %v", leftovers)
			}
		})
	}
}

func TestRollback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		// nilPrevious rolls back with a nil previous instead of Deploy's.
		nilPrevious  bool
		wantPrevious map[string]*string
	}{
		{
			desc:         "an existing file is restored and a new one removed",
			wantPrevious: map[string]*string{"a.pem": ptr("old cert"), "a.key": nil},
		},
		{
			desc:         "a nil previous removes every configured file",
			nilPrevious:  true,
			wantPrevious: map[string]*string{"a.pem": ptr("old cert"), "a.key": nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			writeFile(t, e.in("a.pem"), "old cert", 0o644)
			req := e.req(t, map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key"), "ReloadCommand": e.reloadCmd})

			snap, err := e.d.Snapshot(context.Background(), req)
			if err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			previous, err := e.d.Deploy(context.Background(), req)
			if err != nil {
				t.Fatalf("Deploy: %v", err)
			}
			if string(snap) != string(previous) {
				t.Errorf("Snapshot = %s, Deploy's previous = %s; want them equal", snap, previous)
			}
			var got snapshot
			if err := json.Unmarshal(previous, &got); err != nil {
				t.Fatalf("previous %s is not JSON: %v", previous, err)
			}
			if len(got) != len(tt.wantPrevious) {
				t.Errorf("previous has %d paths, want %d: %s", len(got), len(tt.wantPrevious), previous)
			}
			for name, want := range tt.wantPrevious {
				have, ok := got[e.in(name)]
				switch {
				case !ok:
					t.Errorf("previous lacks %s: %s", e.in(name), previous)
				case (have == nil) != (want == nil), have != nil && string(have.Content) != *want:
					t.Errorf("previous[%s] = %s, want %v", e.in(name), previous, want)
				}
			}
			wantFile(t, e.in("a.pem"), e.bundle.FullChainPEM, 0o644)

			if tt.nilPrevious {
				previous = nil
			}
			if err := e.d.Rollback(context.Background(), req, previous); err != nil {
				t.Fatalf("Rollback: %v", err)
			}
			if tt.nilPrevious {
				wantAbsent(t, e.in("a.pem"))
			} else {
				wantFile(t, e.in("a.pem"), "old cert", 0o644)
			}
			wantAbsent(t, e.in("a.key"))
			if got := e.reloads(t); got != 2 {
				t.Errorf("reload ran %d times, want 2 (deploy and rollback)", got)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		prepare func(t *testing.T, e *env) map[string]any
		want    string
	}{
		{
			desc: "a symlinked directory escaping the root",
			prepare: func(t *testing.T, e *env) map[string]any {
				symlink(t, e.outside, e.in("escape"))
				return map[string]any{"CertPath": e.in("escape", "a.pem"), "KeyPath": e.in("a.key")}
			},
			want: "outside --local-root",
		},
		{
			desc: "a symlinked file escaping the root",
			prepare: func(t *testing.T, e *env) map[string]any {
				symlink(t, filepath.Join(e.outside, "victim.pem"), e.in("a.key"))
				return map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key")}
			},
			want: "resolves to $OUTSIDE/victim.pem",
		},
		{
			desc: "a relative symlink climbing out of the root",
			prepare: func(t *testing.T, e *env) map[string]any {
				symlink(t, "../outside/victim.pem", e.in("a.pem"))
				return map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key")}
			},
			want: "outside --local-root",
		},
		{
			desc: "a dangling symlink",
			prepare: func(t *testing.T, e *env) map[string]any {
				symlink(t, filepath.Join(e.outside, "missing.pem"), e.in("a.pem"))
				return map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key")}
			},
			want: "does not resolve",
		},
		{
			desc: "a path outside the root",
			prepare: func(t *testing.T, e *env) map[string]any {
				return map[string]any{"CertPath": e.in("a.pem"), "KeyPath": filepath.Join(e.outside, "a.key")}
			},
			want: "outside --local-root",
		},
		{
			desc: "a path climbing out with ..",
			prepare: func(t *testing.T, e *env) map[string]any {
				return map[string]any{"CertPath": e.root + "/../outside/a.pem", "KeyPath": e.in("a.key")}
			},
			want: "outside --local-root",
		},
		{
			desc: "a relative path",
			prepare: func(t *testing.T, e *env) map[string]any {
				return map[string]any{"CertPath": "a.pem", "KeyPath": e.in("a.key")}
			},
			want: `Config key "CertPath": "a.pem" is not an absolute path`,
		},
		{
			desc: "a directory as a file",
			prepare: func(t *testing.T, e *env) map[string]any {
				mkdir(t, e.in("a.pem"))
				return map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key")}
			},
			want: "is not a regular file",
		},
		{
			desc: "the same file for cert and key",
			prepare: func(t *testing.T, e *env) map[string]any {
				return map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.root + "/./a.pem"}
			},
			want: "CertPath and KeyPath name the same file",
		},
		{
			desc: "a reload command not allowed",
			prepare: func(t *testing.T, e *env) map[string]any {
				return map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key"), "ReloadCommand": e.reloadCmd + " "}
			},
			want: "--local-reload-allow",
		},
		{
			desc: "an unknown Config key",
			prepare: func(t *testing.T, e *env) map[string]any {
				return map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key"), "Reload": "true"}
			},
			want: `Config key "Reload" is unknown for local/FILE (did you mean "ReloadCommand"?)`,
		},
		{
			desc: "no KeyPath",
			prepare: func(t *testing.T, e *env) map[string]any {
				return map[string]any{"CertPath": e.in("a.pem")}
			},
			want: `Config key "KeyPath" is required for local/FILE`,
		},
		{
			desc: "a KeyMode that is not octal",
			prepare: func(t *testing.T, e *env) map[string]any {
				return map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key"), "KeyMode": "0699"}
			},
			want: `Config key "KeyMode" must be an octal permission like "0600" (got "0699")`,
		},
		{
			desc: "a negative ReloadTimeoutSeconds",
			prepare: func(t *testing.T, e *env) map[string]any {
				return map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key"), "ReloadTimeoutSeconds": -1}
			},
			want: `Config key "ReloadTimeoutSeconds" must be a number from 0 to 3600 (got "-1")`,
		},
		{
			desc: "a server started without --local-root",
			prepare: func(t *testing.T, e *env) map[string]any {
				e.d = e.deployer("")
				return map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key")}
			},
			want: "local targets are disabled; start the server with --local-root DIR",
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			victim := filepath.Join(e.outside, "victim.pem")
			writeFile(t, victim, "not yours", 0o600)
			want := strings.ReplaceAll(tt.want, "$OUTSIDE", e.outside)
			req := e.req(t, tt.prepare(t, e))

			err := deploy.Validate(e.d, req.Target.Config, false)
			if err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), want) {
				t.Errorf("ValidateConfig: got %v, want a permanent error containing %q", err, want)
			}
			_, err = e.d.Deploy(context.Background(), req)
			if err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), want) {
				t.Errorf("Deploy: got %v, want a permanent error containing %q", err, want)
			}
			if _, err := e.d.AlreadyDeployed(context.Background(), req); err == nil || !deploy.IsPermanent(err) {
				t.Errorf("AlreadyDeployed: got %v, want a permanent error", err)
			}
			if _, err := e.d.Snapshot(context.Background(), req); err == nil || !deploy.IsPermanent(err) {
				t.Errorf("Snapshot: got %v, want a permanent error", err)
			}
			if err := e.d.Rollback(context.Background(), req, nil); err == nil || !deploy.IsPermanent(err) {
				t.Errorf("Rollback: got %v, want a permanent error", err)
			}
			wantFile(t, victim, "not yours", 0o600)
			if entries, _ := os.ReadDir(e.outside); len(entries) != 1 {
				t.Errorf("%s holds %d entries, want only victim.pem", e.outside, len(entries))
			}
			if fi, err := os.Lstat(e.in("a.key")); err == nil && fi.Mode().IsRegular() {
				t.Errorf("%s was written", e.in("a.key"))
			}
			if got := e.reloads(t); got != 0 {
				t.Errorf("reload ran %d times, want 0", got)
			}
		})
	}
}

func TestValidateConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc      string
		cfg       func(e *env) map[string]any
		hasAccess bool
		want      string // empty: accepted
	}{
		{
			desc: "every key set",
			cfg: func(e *env) map[string]any {
				return map[string]any{"CertPath": e.in("a.pem"), "ChainPath": e.in("c.pem"), "KeyPath": e.in("a.key"),
					"KeyMode": "0640", "ReloadCommand": e.reloadCmd, "ReloadTimeoutSeconds": 5}
			},
		},
		{
			desc: "a directory not created yet",
			cfg: func(e *env) map[string]any {
				return map[string]any{"CertPath": e.in("later", "tls", "a.pem"), "KeyPath": e.in("later", "tls", "a.key")}
			},
		},
		{
			desc: "a credential",
			cfg: func(e *env) map[string]any {
				return map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key")}
			},
			hasAccess: true,
			want:      "remove CloudAccessId",
		},
		{
			desc: "a Config that is not an object",
			cfg:  func(e *env) map[string]any { return nil },
			want: "Config of local/FILE must be a JSON object",
		},
		{
			desc: "a misspelt key",
			cfg: func(e *env) map[string]any {
				return map[string]any{"CertPth": e.in("a.pem"), "KeyPath": e.in("a.key")}
			},
			want: `Config key "CertPth" is unknown for local/FILE (did you mean "CertPath"?); known keys: CertPath, KeyPath,`,
		},
		{
			desc: "a number given as a string",
			cfg: func(e *env) map[string]any {
				return map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key"), "ReloadTimeoutSeconds": "30"}
			},
		},
		{
			desc: "a missing required key",
			cfg:  func(e *env) map[string]any { return map[string]any{"KeyPath": e.in("a.key")} },
			want: `Config key "CertPath" is required for local/FILE`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			err := deploy.Validate(e.d, e.req(t, tt.cfg(e)).Target.Config, tt.hasAccess)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tt.want != "" && (err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want a permanent error containing %q", err, tt.want)
			}
		})
	}
}

func TestDeployMissingDirectory(t *testing.T) {
	t.Parallel()
	e := setup(t)
	req := e.req(t, map[string]any{"CertPath": e.in("later", "a.pem"), "KeyPath": e.in("later", "a.key")})
	_, err := e.d.Deploy(context.Background(), req)
	if err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), "does not exist; create it") {
		t.Fatalf("got %v, want a permanent error asking to create the directory", err)
	}
	mkdir(t, e.in("later"))
	if _, err := e.d.Deploy(context.Background(), req); err != nil {
		t.Fatalf("after creating the directory: %v", err)
	}
	wantFile(t, e.in("later", "a.key"), e.bundle.KeyPEM, 0o600)
}

func TestDeployReloadFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		cmd     string
		timeout int
		want    []string
	}{
		{desc: "a command that fails silently", cmd: failingCmd, want: []string{`reload "false": exit status 1; no output`}},
		{desc: "a command that explains itself", cmd: noisyCmd, want: []string{"exit status 3", "output: broken config"}},
		{desc: "a command that outlives its timeout", cmd: slowCmd, timeout: 1, want: []string{"timed out after 1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			writeFile(t, e.in("a.pem"), "old cert", 0o644)
			writeFile(t, e.in("c.pem"), "old chain", 0o644)
			cfg := map[string]any{"CertPath": e.in("a.pem"), "ChainPath": e.in("c.pem"), "KeyPath": e.in("a.key"), "ReloadCommand": tt.cmd}
			if tt.timeout > 0 {
				cfg["ReloadTimeoutSeconds"] = tt.timeout
			}
			previous, err := e.d.Deploy(context.Background(), e.req(t, cfg))
			if err == nil {
				t.Fatal("Deploy succeeded, want the reload's error")
			}
			if deploy.IsPermanent(err) {
				t.Errorf("error %v is permanent, want transient", err)
			}
			for _, w := range append(tt.want, "local: reload", "previous files restored") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if previous != nil {
				t.Errorf("previous = %s, want nil on failure", previous)
			}
			wantFile(t, e.in("a.pem"), "old cert", 0o644)
			wantFile(t, e.in("c.pem"), "old chain", 0o644)
			wantAbsent(t, e.in("a.key"))
		})
	}
}

func TestAlreadyDeployed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	req := e.req(t, map[string]any{"CertPath": e.in("a.pem"), "ChainPath": e.in("c.pem"), "KeyPath": e.in("a.key")})
	check := func(step string, want bool) {
		t.Helper()
		got, err := e.d.AlreadyDeployed(context.Background(), req)
		if err != nil || got != want {
			t.Errorf("%s: AlreadyDeployed = %v, %v; want %v, nil", step, got, err, want)
		}
	}
	check("before deploying", false)
	if _, err := e.d.Deploy(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	check("after deploying", true)
	writeFile(t, e.in("c.pem"), e.bundle.ChainPEM+"\n", 0o644)
	check("after the chain file changed", false)
	if _, err := e.d.Deploy(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	other := req
	other.Bundle = deploytest.Bundle(t, "www.example.com")
	got, err := e.d.AlreadyDeployed(context.Background(), other)
	if err != nil || got {
		t.Errorf("for another certificate: AlreadyDeployed = %v, %v; want false, nil", got, err)
	}
}

func TestHost(t *testing.T) {
	t.Parallel()
	if got := New(Options{}).Host(deploy.Target{}); got != "local" {
		t.Errorf("Host = %q, want \"local\"", got)
	}
}

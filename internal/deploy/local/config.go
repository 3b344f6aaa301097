package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
)

// Description is local/FILE's Description: its Config keys, documented once.
var Description = deploy.Description{
	CloudName:    "local",
	CloudProduct: "FILE",
	Summary:      "PEM files on the certfleet server's own machine, under --local-root, then an allowed reload command.",
	Config: []deploy.Field{
		{Name: "CertPath", Type: deploy.TypeString, Required: true, Help: "Absolute path that receives the full chain (leaf, then intermediates), mode 0644; inside --local-root."},
		{Name: "KeyPath", Type: deploy.TypeString, Required: true, Help: "Absolute path that receives the private key, with KeyMode; inside --local-root."},
		{Name: "ChainPath", Type: deploy.TypeString, Help: "Absolute path that receives the intermediates alone, mode 0644."},
		{Name: "KeyMode", Type: deploy.TypeString, Default: "0600", Help: "The key file's permission bits, in octal; at most 0640 (no write for the group, nothing for others)."},
		{Name: "ReloadCommand", Type: deploy.TypeString, Help: "Run with /bin/sh -c after writing and after a rollback; must equal one of the server's --local-reload-allow values."},
		{Name: "ReloadTimeoutSeconds", Type: deploy.TypeInteger, Min: 0, Max: 3600, Help: "Seconds ReloadCommand may run; 0 or absent means the server's command timeout (60 s)."},
	},
	Access: deploy.AccessSpec{Need: deploy.AccessNone},
}

// Options are the server's settings for local targets.
type Options struct {
	// Root is the directory every local target path must resolve inside
	// (--local-root). Empty refuses every local target.
	Root string
	// ReloadAllow lists the exact ReloadCommand strings local targets may run
	// (--local-reload-allow).
	ReloadAllow []string
	// CommandTimeout bounds reload commands. Defaults to 60s.
	CommandTimeout time.Duration
}

// Config is a local resource's Config, decoded through Description (so
// unknown keys are refused and numbers given as strings accepted). Every
// path must be absolute and, once symlinks are resolved, lie inside the
// server's --local-root.
type Config struct {
	// CertPath receives the full chain: the leaf, then the intermediates.
	// Mode 0644. Required.
	CertPath string
	// KeyPath receives the private key, with KeyMode. Required.
	KeyPath string
	// ChainPath, when set, receives the intermediates alone. Mode 0644.
	ChainPath string
	// KeyMode is the key file's permission bits in octal, like "0640".
	// Defaults to "0600".
	KeyMode string
	// ReloadCommand, when set, is run with /bin/sh -c after the files are
	// written and after a rollback. It must equal, byte for byte, one of the
	// server's --local-reload-allow values.
	ReloadCommand string
	// ReloadTimeoutSeconds bounds ReloadCommand. Defaults to the server's
	// command timeout (60 seconds unless configured otherwise).
	ReloadTimeoutSeconds int
}

const (
	defaultKeyMode        fs.FileMode = 0o600
	publicMode            fs.FileMode = 0o644
	defaultCommandTimeout             = 60 * time.Second
)

// file is one path a deployment writes.
type file struct {
	key  string // the Config key naming it, for errors and for its content
	path string // as configured, cleaned
	rel  string // symlinks resolved, relative to the resolved root
	mode fs.FileMode
}

// plan is a Config checked against the server's options: everything Deploy,
// Rollback and AlreadyDeployed need before touching a file.
type plan struct {
	rootDir       string // the account's root, absolute, symlinks resolved
	rootName      string // what errors call rootDir
	files         []file // in write order: CertPath, ChainPath, KeyPath
	reload        string
	reloadTimeout time.Duration
}

// plan performs the static checks for t's Config within t's Scope; every
// error it returns is permanent.
func (d *Deployer) plan(t deploy.Target) (*plan, error) {
	var c Config
	if err := Description.DecodeConfig(t.Config, &c); err != nil {
		return nil, err
	}
	keyMode := defaultKeyMode
	if c.KeyMode != "" {
		m, err := strconv.ParseUint(c.KeyMode, 8, 32)
		if err != nil || m > 0o777 {
			return nil, deploy.Permanentf("local/FILE: Config key \"KeyMode\" must be an octal permission like \"0600\" (got %q)", c.KeyMode)
		}
		keyMode = fs.FileMode(m)
		if err := deploy.CheckKeyMode("KeyMode", keyMode); err != nil {
			return nil, deploy.Permanentf("local/FILE: %w", err)
		}
	}
	if c.ReloadCommand != "" && !slices.Contains(d.opts.ReloadAllow, c.ReloadCommand) {
		return nil, deploy.Permanentf("local/FILE: Config key \"ReloadCommand\" %q is not allowed; the server must list it exactly with --local-reload-allow", c.ReloadCommand)
	}

	rootDir, err := d.rootDir(t.Scope)
	if err != nil {
		return nil, err
	}
	p := &plan{rootDir: rootDir, rootName: rootName(t.Scope), reload: c.ReloadCommand, reloadTimeout: d.commandTimeout()}
	if c.ReloadTimeoutSeconds > 0 {
		p.reloadTimeout = time.Duration(c.ReloadTimeoutSeconds) * time.Second
	}
	add := func(key, path string, mode fs.FileMode) error {
		rel, err := resolve(rootDir, p.rootName, path)
		if err != nil {
			return deploy.Permanentf("local/FILE: Config key %q: %w", key, err)
		}
		for _, f := range p.files {
			if f.rel == rel {
				return deploy.Permanentf("local/FILE: Config keys %s and %s name the same file %s", f.key, key, filepath.Join(rootDir, rel))
			}
		}
		p.files = append(p.files, file{key: key, path: filepath.Clean(path), rel: rel, mode: mode})
		return nil
	}
	if err := add("CertPath", c.CertPath, publicMode); err != nil {
		return nil, err
	}
	if c.ChainPath != "" {
		if err := add("ChainPath", c.ChainPath, publicMode); err != nil {
			return nil, err
		}
	}
	if err := add("KeyPath", c.KeyPath, keyMode); err != nil {
		return nil, err
	}
	return p, nil
}

func (d *Deployer) commandTimeout() time.Duration {
	if d.opts.CommandTimeout > 0 {
		return d.opts.CommandTimeout
	}
	return defaultCommandTimeout
}

// rootName is what errors call the directory scope may write in.
func rootName(scope deploy.Scope) string {
	if scope.Confined {
		return "the account's local root"
	}
	return "--local-root"
}

// rootDir returns the directory scope may write in, absolute with its
// symlinks resolved: --local-root for the root account, the account's
// LocalRoot subdirectory of it for any other, which must exist and, once
// resolved, still lie inside --local-root.
func (d *Deployer) rootDir(scope deploy.Scope) (string, error) {
	if d.opts.Root == "" {
		return "", deploy.Permanentf("local: local targets are disabled; start the server with --local-root DIR")
	}
	abs, err := filepath.Abs(d.opts.Root)
	if err != nil {
		return "", deploy.Permanentf("local: --local-root %s: %w", d.opts.Root, err)
	}
	dir, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", deploy.Permanentf("local: --local-root %s: %w", d.opts.Root, err)
	}
	if !scope.Confined {
		return dir, nil
	}
	if scope.LocalRoot == "" {
		return "", deploy.Permanentf("local: this account may not write local files; the operator grants it a subdirectory of --local-root with `certfleet account update NAME --local-root SUBDIR`")
	}
	if !filepath.IsLocal(scope.LocalRoot) {
		return "", deploy.Permanentf("local: the account's local root %q is not a relative path inside --local-root", scope.LocalRoot)
	}
	sub, err := filepath.EvalSymlinks(filepath.Join(dir, scope.LocalRoot))
	if err != nil {
		return "", deploy.Permanentf("local: the account's local root %s: %w; the operator must create it", filepath.Join(dir, scope.LocalRoot), err)
	}
	if rel, err := filepath.Rel(dir, sub); err != nil || !filepath.IsLocal(rel) {
		return "", deploy.Permanentf("local: the account's local root %s resolves outside --local-root", filepath.Join(dir, scope.LocalRoot))
	}
	return sub, nil
}

// resolve checks that path is absolute and, with every symlink resolved,
// names a regular file (or nothing yet) inside rootDir, which errors call
// rootName. It returns the
// resolved path relative to rootDir. Directories that do not exist yet are
// allowed here, so that a resource can be created before its directory;
// Deploy refuses them.
func resolve(rootDir, rootName, path string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("%q is not an absolute path", path)
	}
	path = filepath.Clean(path)

	// Resolve the deepest existing ancestor; the components below it do not
	// exist, so they cannot be symlinks.
	dir := filepath.Dir(path)
	var missing []string
	for {
		r, err := filepath.EvalSymlinks(dir)
		if err == nil {
			dir = r
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		if _, lerr := os.Lstat(dir); lerr == nil {
			return "", fmt.Errorf("%s: %s is a symlink to a missing target", path, dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		missing = append(missing, filepath.Base(dir))
		dir = parent
	}
	slices.Reverse(missing)
	resolved := filepath.Join(dir, filepath.Join(missing...), filepath.Base(path))

	if len(missing) == 0 {
		fi, err := os.Lstat(resolved)
		if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			r, rerr := filepath.EvalSymlinks(resolved)
			if rerr != nil {
				return "", fmt.Errorf("%s is a symlink that does not resolve: %w", path, rerr)
			}
			resolved = r
			fi, err = os.Stat(resolved)
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return "", fmt.Errorf("%s: %w", path, err)
		case !fi.Mode().IsRegular():
			return "", fmt.Errorf("%s is not a regular file", path)
		}
	}

	rel, err := filepath.Rel(rootDir, resolved)
	if err != nil || rel == "." || !filepath.IsLocal(rel) {
		if resolved != path {
			return "", fmt.Errorf("%s resolves to %s, outside %s %s", path, resolved, rootName, rootDir)
		}
		return "", fmt.Errorf("%s is outside %s %s", path, rootName, rootDir)
	}
	return rel, nil
}

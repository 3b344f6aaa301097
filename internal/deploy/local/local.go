// Package local deploys certificates as files on the certfleet server's own
// machine (CloudName "local", CloudProduct "FILE"), then optionally runs a
// reload command such as "systemctl reload nginx".
//
// It is deliberately fenced in: nothing is written unless the server was
// started with --local-root, every path must resolve inside that directory
// (symlinks included), and a reload command runs only if it is listed exactly
// with --local-reload-allow. It is not for remote hosts; those are other
// deployers' business.
package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/certfleet/certfleet/internal/deploy"
)

// Deployer writes a bundle's files under the local root. It is safe for
// concurrent use; it holds no state besides its Options.
type Deployer struct {
	opts Options
}

var (
	_ deploy.Product         = (*Deployer)(nil)
	_ deploy.Rollbacker      = (*Deployer)(nil)
	_ deploy.ConfigValidator = (*Deployer)(nil)
	_ deploy.TargetValidator = (*Deployer)(nil)
	_ deploy.Claimer         = (*Deployer)(nil)
	_ deploy.Hoster          = (*Deployer)(nil)
	_ deploy.Checker         = (*Deployer)(nil)
	_ deploy.Snapshotter     = (*Deployer)(nil)
)

// New returns a Deployer governed by opts. The root is resolved again on
// every call, so a root directory replaced on disk is honoured.
func New(opts Options) *Deployer {
	opts.ReloadAllow = slices.Clone(opts.ReloadAllow)
	return &Deployer{opts: opts}
}

// Describe returns Description.
func (d *Deployer) Describe() deploy.Description { return Description }

// ValidateConfig is ValidateTarget for the root account.
func (d *Deployer) ValidateConfig(config json.RawMessage) error {
	return d.ValidateTarget(deploy.Target{Config: config})
}

// ValidateTarget performs the checks the Description cannot: KeyMode octal
// and at most 0640, paths absolute and inside the account's root (the whole
// --local-root for the root account, its LocalRoot subdirectory for any
// other, none without one), ReloadCommand allowed. Directories that do not
// exist yet are accepted; Deploy will refuse them until they are created.
func (d *Deployer) ValidateTarget(t deploy.Target) error {
	_, err := d.plan(t)
	return err
}

// Claims returns the files t writes, "local:" and their absolute path with
// symlinks resolved: one file belongs to one resource across all accounts.
func (d *Deployer) Claims(t deploy.Target) ([]string, error) {
	p, err := d.plan(t)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(p.files))
	for i, f := range p.files {
		out[i] = "local:" + filepath.Join(p.rootDir, f.rel)
	}
	return out, nil
}

// Host returns "local": every local target shares the server's own machine.
func (d *Deployer) Host(deploy.Target) string { return "local" }

// Deploy repeats ValidateConfig's checks, then writes CertPath (full chain),
// ChainPath (intermediates) and KeyPath atomically and runs ReloadCommand.
//
// previous is a JSON object mapping each configured path written to what it
// held before (content, mode and owner; see prior) or null when it did not
// exist. If a write or the
// reload fails, the files already written are restored before the error is
// returned, and the error is transient. Configuration problems are
// deploy.Permanent. When ctx ends during the reload, the files are restored
// and the error wraps ctx.Err().
func (d *Deployer) Deploy(ctx context.Context, req deploy.Request) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := d.plan(req.Target)
	if err != nil {
		return nil, err
	}
	contents, err := bundleContents(p, req.Bundle)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(p.rootDir)
	if err != nil {
		return nil, fmt.Errorf("local: open --local-root %s: %w", p.rootDir, err)
	}
	defer root.Close()

	prev, err := capture(root, p)
	if err != nil {
		return nil, err
	}
	previous, err := json.Marshal(prev)
	if err != nil {
		return nil, fmt.Errorf("local: encode previous state: %w", err)
	}

	for i, f := range p.files {
		if err := writeAtomic(root, f.rel, contents[i], f.mode, nil); err != nil {
			err = fmt.Errorf("local: write %s: %w", f.path, err)
			return nil, errors.Join(err, restore(root, p.files[:i], prev))
		}
	}
	if err := runReload(ctx, p, append(prev.pems(), req.Bundle.FullChainPEM, req.Bundle.KeyPEM)...); err != nil {
		if rerr := restore(root, p.files, prev); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		return nil, fmt.Errorf("%w; previous files restored", err)
	}
	return previous, nil
}

// Snapshot returns what Deploy would return as previous, without writing
// anything, so the engine can record it before deploying. Its errors are
// Deploy's: permanent for Config problems and missing directories.
func (d *Deployer) Snapshot(ctx context.Context, req deploy.Request) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := d.plan(req.Target)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(p.rootDir)
	if err != nil {
		return nil, fmt.Errorf("local: open --local-root %s: %w", p.rootDir, err)
	}
	defer root.Close()
	prev, err := capture(root, p)
	if err != nil {
		return nil, err
	}
	previous, err := json.Marshal(prev)
	if err != nil {
		return nil, fmt.Errorf("local: encode previous state: %w", err)
	}
	return previous, nil
}

// capture reads the current content of p's files, refusing directories that
// do not exist.
func capture(root *os.Root, p *plan) (snapshot, error) {
	prev := snapshot{}
	for _, f := range p.files {
		if dir := filepath.Dir(f.rel); dir != "." {
			if _, err := root.Stat(dir); errors.Is(err, fs.ErrNotExist) {
				return nil, deploy.Permanentf("local: write %s: directory %s does not exist; create it inside --local-root",
					f.path, filepath.Join(p.rootDir, dir))
			}
		}
		old, err := read(root, f.rel)
		if err != nil {
			return nil, fmt.Errorf("local: read %s: %w", f.path, err)
		}
		prev[f.path] = old
	}
	return prev, nil
}

// Rollback restores the files Deploy recorded in previous (removing those
// that did not exist before), atomically, each with the mode and owner it
// had, then runs ReloadCommand. A nil
// previous means nothing was there before: the configured files are removed.
// Paths are checked against the local root again before anything is touched.
func (d *Deployer) Rollback(ctx context.Context, req deploy.Request, previous []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := d.plan(req.Target)
	if err != nil {
		return err
	}
	prev := snapshot{}
	if previous != nil {
		if err := json.Unmarshal(previous, &prev); err != nil {
			return deploy.Permanentf("local: decode previous state: %w", err)
		}
	} else {
		for _, f := range p.files {
			prev[f.path] = nil
		}
	}

	// Restore to the paths recorded, even if the Config has changed since,
	// with the mode and owner recorded; a snapshot that recorded no mode (an
	// older one) gets the mode of the key naming the path now, or the key
	// file's conservative mode for a path no longer in the Config.
	var files []file
	for _, path := range slices.Sorted(maps.Keys(prev)) {
		i := slices.IndexFunc(p.files, func(f file) bool { return f.path == path })
		if i >= 0 {
			files = append(files, p.files[i])
			continue
		}
		rel, err := resolve(p.rootDir, p.rootName, path)
		if err != nil {
			return deploy.Permanentf("local: rollback: %w", err)
		}
		files = append(files, file{key: "previous", path: path, rel: rel, mode: defaultKeyMode})
	}

	root, err := os.OpenRoot(p.rootDir)
	if err != nil {
		return fmt.Errorf("local: open --local-root %s: %w", p.rootDir, err)
	}
	defer root.Close()
	if err := restore(root, files, prev); err != nil {
		return err
	}
	return runReload(ctx, p, append(prev.pems(), req.Bundle.FullChainPEM, req.Bundle.KeyPEM)...)
}

// AlreadyDeployed reports whether every configured file exists with exactly
// the content Deploy would write. File modes are not compared.
func (d *Deployer) AlreadyDeployed(ctx context.Context, req deploy.Request) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p, err := d.plan(req.Target)
	if err != nil {
		return false, err
	}
	contents, err := bundleContents(p, req.Bundle)
	if err != nil {
		return false, err
	}
	root, err := os.OpenRoot(p.rootDir)
	if err != nil {
		return false, fmt.Errorf("local: open --local-root %s: %w", p.rootDir, err)
	}
	defer root.Close()
	for i, f := range p.files {
		have, err := read(root, f.rel)
		if err != nil {
			return false, fmt.Errorf("local: read %s: %w", f.path, err)
		}
		if have == nil || !bytes.Equal(have.Content, contents[i]) {
			return false, nil
		}
	}
	return true, nil
}

// bundleContents returns what each of p.files receives.
func bundleContents(p *plan, b deploy.Bundle) ([][]byte, error) {
	full := b.FullChainPEM
	if full == "" {
		full = b.CertPEM + b.ChainPEM
	}
	if full == "" || b.KeyPEM == "" {
		return nil, deploy.Permanentf("local: certificate %d has no certificate or no private key to deploy", b.CertID)
	}
	out := make([][]byte, len(p.files))
	for i, f := range p.files {
		switch f.key {
		case "CertPath":
			out[i] = []byte(full)
		case "ChainPath":
			out[i] = []byte(b.ChainPEM)
		case "KeyPath":
			out[i] = []byte(b.KeyPEM)
		}
	}
	return out, nil
}

// restore puts back prev's content for each of files, removing those that
// did not exist, and returns every failure.
func restore(root *os.Root, files []file, prev snapshot) error {
	var errs []error
	for _, f := range files {
		old, ok := prev[f.path]
		switch {
		case !ok:
			continue
		case old == nil:
			if err := remove(root, f.rel); err != nil {
				errs = append(errs, fmt.Errorf("local: restore %s (remove): %w", f.path, err))
			}
		default:
			mode, own := f.mode, (*fileOwner)(nil)
			if old.Mode != nil {
				mode = *old.Mode
			}
			if old.UID != nil && old.GID != nil {
				own = &fileOwner{uid: *old.UID, gid: *old.GID}
			}
			if err := writeAtomic(root, f.rel, old.Content, mode, own); err != nil {
				errs = append(errs, fmt.Errorf("local: restore %s: %w", f.path, err))
			}
		}
	}
	return errors.Join(errs...)
}

package sshx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/pkg/sftp"
)

// maxExisting bounds an existing file the deployer reads (and so may
// overwrite): certificates and keys are a few KiB; anything larger is
// probably a misconfigured path.
const maxExisting = 1 << 20

// Files reads and atomically replaces remote files, either directly over
// SFTP as the login user or, with Sudo, through "sudo -n sh -c" with the
// content on stdin.
type Files struct {
	c    *Conn
	sudo bool
	cmdT time.Duration
}

// Files returns the file operations of c; sudo runs them as root.
func (c *Conn) Files(sudo bool) *Files { return &Files{c: c, sudo: sudo, cmdT: TransferTimeout} }

// Read returns the content of p, or nil when it does not exist.
func (f *Files) Read(ctx context.Context, p string) (*[]byte, error) {
	if f.sudo {
		const script = `if [ -f "$1" ]; then exec cat -- "$1"; elif [ -e "$1" ]; then echo "not a regular file" >&2; exit 2; else exit 3; fi`
		out, err := f.c.Run(ctx, "sudo -n sh -c "+ShellQuote(script)+" sh "+ShellQuote(p), nil, f.cmdT, false)
		var ce *CommandError
		if errors.As(err, &ce) && ce.Status == 3 {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("ssh: %s: read %s: %w", f.c.ep, p, err)
		}
		if len(out) > maxExisting {
			return nil, fmt.Errorf("ssh: %s: read %s: existing file is larger than any certificate or key; check the path", f.c.ep, p)
		}
		return &out, nil
	}
	sc, err := f.c.SFTP()
	if err != nil {
		return nil, err
	}
	var b []byte
	var missing bool
	err = f.c.transfer(ctx, "read "+p, func() error {
		fi, err := sc.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			missing = true
			return nil
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return errors.New("not a regular file")
		}
		if fi.Size() > maxExisting {
			return fmt.Errorf("existing file is %d bytes, larger than any certificate or key; check the path", fi.Size())
		}
		r, err := sc.Open(p)
		if err != nil {
			return err
		}
		defer r.Close()
		b, err = io.ReadAll(io.LimitReader(r, maxExisting+1))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ssh: %s: read %s: %w", f.c.ep, p, err)
	}
	if missing {
		return nil, nil
	}
	return &b, nil
}

// Write replaces p with data: a temporary file in p's directory is written,
// given mode (and owner, "user" or "user:group", when set), synced and
// renamed over p, so readers see the old file or the new one, never a mix.
func (f *Files) Write(ctx context.Context, p string, data []byte, mode fs.FileMode, owner string) error {
	if f.sudo {
		const script = `set -e
t="$(dirname -- "$1")/.$(basename -- "$1").certfleet-$$.tmp"
trap 'rm -f -- "$t"' EXIT
umask 077
cat > "$t"
chmod "$2" "$t"
if [ -n "$3" ]; then chown -- "$3" "$t"; fi
mv -f -- "$t" "$1"
trap - EXIT`
		cmd := "sudo -n sh -c " + ShellQuote(script) + " sh " + ShellQuote(p) + " " + ShellQuote(fmt.Sprintf("%04o", mode)) + " " + ShellQuote(owner)
		if _, err := f.c.Run(ctx, cmd, data, f.cmdT, false); err != nil {
			return fmt.Errorf("ssh: %s: write %s: %w", f.c.ep, p, err)
		}
		return nil
	}
	sc, err := f.c.SFTP()
	if err != nil {
		return err
	}
	tmp := path.Join(path.Dir(p), "."+path.Base(p)+".certfleet-"+randomSuffix()+".tmp")
	err = f.c.transfer(ctx, "write "+p, func() (err error) {
		w, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if err != nil {
			return err
		}
		defer func() {
			if err != nil {
				w.Close()
				sc.Remove(tmp)
			}
		}()
		if err = w.Chmod(mode); err != nil {
			return err
		}
		if _, err = w.Write(data); err != nil {
			return err
		}
		if err = w.Sync(); err != nil && !errors.Is(err, sftp.ErrSSHFxOpUnsupported) {
			return err
		}
		if err = w.Close(); err != nil {
			return err
		}
		if owner != "" {
			if _, err = f.c.Run(ctx, "chown -- "+ShellQuote(owner)+" "+ShellQuote(tmp), nil, f.cmdT, false); err != nil {
				return err
			}
		}
		return sc.PosixRename(tmp, p)
	})
	if err != nil {
		return fmt.Errorf("ssh: %s: write %s: %w", f.c.ep, p, err)
	}
	return nil
}

// Remove deletes p; a missing file is not an error.
func (f *Files) Remove(ctx context.Context, p string) error {
	if f.sudo {
		if _, err := f.c.Run(ctx, "sudo -n rm -f -- "+ShellQuote(p), nil, f.cmdT, false); err != nil {
			return fmt.Errorf("ssh: %s: remove %s: %w", f.c.ep, p, err)
		}
		return nil
	}
	sc, err := f.c.SFTP()
	if err != nil {
		return err
	}
	err = f.c.transfer(ctx, "remove "+p, func() error {
		err := sc.Remove(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("ssh: %s: remove %s: %w", f.c.ep, p, err)
	}
	return nil
}

// DirExists reports whether p's directory exists.
func (f *Files) DirExists(ctx context.Context, p string) (bool, error) {
	dir := path.Dir(p)
	if f.sudo {
		_, err := f.c.Run(ctx, "sudo -n test -d "+ShellQuote(dir), nil, f.cmdT, false)
		var ce *CommandError
		if errors.As(err, &ce) {
			return false, nil
		}
		return err == nil, err
	}
	sc, err := f.c.SFTP()
	if err != nil {
		return false, err
	}
	var ok bool
	err = f.c.transfer(ctx, "stat "+dir, func() error {
		fi, err := sc.Stat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		ok = fi.IsDir()
		return nil
	})
	return ok, err
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

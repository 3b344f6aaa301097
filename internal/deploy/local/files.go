package local

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// maxExisting bounds how large an existing file may be before the deployer
// refuses to overwrite it: certificates and keys are a few KiB, so anything
// larger is probably a misconfigured path, and its content would otherwise
// be copied into the previous state.
const maxExisting = 1 << 20

// snapshot is the previous state Deploy returns, as JSON: for each configured
// path written, its former content (base64), or null when it did not exist.
type snapshot map[string]*[]byte

// pems returns the contents s holds, for withholding command output that
// quotes a key among them.
func (s snapshot) pems() []string {
	var out []string
	for _, b := range s {
		if b != nil {
			out = append(out, string(*b))
		}
	}
	return out
}

// read returns the content of rel under root, or nil when it does not exist.
func read(root *os.Root, rel string) (*[]byte, error) {
	f, err := root.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	if fi.Size() > maxExisting {
		return nil, fmt.Errorf("existing file is %d bytes, larger than any certificate or key; check the path", fi.Size())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxExisting+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxExisting {
		return nil, fmt.Errorf("existing file grew past %d bytes while being read", maxExisting)
	}
	return &b, nil
}

// writeAtomic replaces rel under root with data and mode: a temporary file
// in the same directory is written, chmod-ed, synced and renamed over rel,
// then the directory is synced, so a reader sees the old or the new content,
// never a mix, even across a crash.
//
// os.CreateTemp cannot work inside an os.Root, so the temporary name is made
// here; the Root keeps every step inside the local root even if a directory
// is swapped for a symlink after the path was checked.
func writeAtomic(root *os.Root, rel string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(rel)
	var (
		f   *os.File
		tmp string
	)
	for range 10 {
		tmp = filepath.Join(dir, "."+filepath.Base(rel)+".certfleet-"+randomSuffix()+".tmp")
		f, err = root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			root.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = root.Rename(tmp, rel); err != nil {
		return err
	}
	return syncDir(root, dir)
}

// remove deletes rel under root if it exists and syncs its directory.
func remove(root *os.Root, rel string) error {
	if err := root.Remove(rel); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return syncDir(root, filepath.Dir(rel))
}

func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func randomSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

package local

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
// path written, what it held before, or null when it did not exist.
type snapshot map[string]*prior

// prior is one file as it was before a deployment: its content, permission
// bits and owner. Snapshots written before modes and owners were recorded
// hold the content alone, as a base64 string; Rollback then uses the mode of
// the Config key naming the path and leaves the owner to the process.
type prior struct {
	Content []byte
	Mode    *fs.FileMode `json:",omitempty"`
	UID     *int         `json:",omitempty"`
	GID     *int         `json:",omitempty"`
}

// UnmarshalJSON accepts both forms: an object, or the older base64 string.
func (p *prior) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*p = prior{}
		return json.Unmarshal(b, &p.Content)
	}
	type plain prior
	return json.Unmarshal(b, (*plain)(p))
}

// pems returns the contents s holds, for withholding command output that
// quotes a key among them.
func (s snapshot) pems() []string {
	var out []string
	for _, p := range s {
		if p != nil {
			out = append(out, string(p.Content))
		}
	}
	return out
}

// read returns rel under root as it is now, or nil when it does not exist.
func read(root *os.Root, rel string) (*prior, error) {
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
	mode := fi.Mode().Perm()
	p := &prior{Content: b, Mode: &mode}
	if uid, gid, ok := owner(fi); ok {
		p.UID, p.GID = &uid, &gid
	}
	return p, nil
}

// fileOwner is a file's numeric owner and group.
type fileOwner struct{ uid, gid int }

// writeAtomic replaces rel under root with data and mode (and own, when not
// nil, as owner): a temporary file in the same directory is written,
// chown-ed, chmod-ed, synced and renamed over rel,
// then the directory is synced, so a reader sees the old or the new content,
// never a mix, even across a crash.
//
// os.CreateTemp cannot work inside an os.Root, so the temporary name is made
// here; the Root keeps every step inside the local root even if a directory
// is swapped for a symlink after the path was checked.
func writeAtomic(root *os.Root, rel string, data []byte, mode fs.FileMode, own *fileOwner) (err error) {
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
	if own != nil {
		if err = chownIfNeeded(f, *own); err != nil {
			return err
		}
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

//go:build unix

package local

import (
	"io/fs"
	"os"
	"syscall"
)

// owner returns fi's numeric owner and group.
func owner(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// chownIfNeeded gives f the owner own unless it has it already (so a process
// that is not root can restore files it owns itself).
func chownIfNeeded(f *os.File, own fileOwner) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if uid, gid, ok := owner(fi); ok && uid == own.uid && gid == own.gid {
		return nil
	}
	return f.Chown(own.uid, own.gid)
}

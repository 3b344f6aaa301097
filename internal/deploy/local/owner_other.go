//go:build !unix

package local

import (
	"io/fs"
	"os"
)

// owner reports no owner: only unix systems have numeric owners.
func owner(fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }

// chownIfNeeded does nothing: only unix systems have numeric owners.
func chownIfNeeded(*os.File, fileOwner) error { return nil }

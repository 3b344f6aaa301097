package deploy

import (
	"fmt"
	"io/fs"
)

// keyModeForbidden are the permission bits a private key file may not have:
// write for its group, any access for others. So 0640 is the loosest usual
// mode.
const keyModeForbidden fs.FileMode = 0o027

// CheckKeyMode refuses a key file mode looser than 0640: one granting write
// to the group or any access to others. key names the Config key.
func CheckKeyMode(key string, mode fs.FileMode) error {
	if mode&keyModeForbidden != 0 {
		return fmt.Errorf("Config key %q is %04o: a private key file may not be writable by its group nor accessible to others; use 0640 or stricter (such as 0600)",
			key, uint32(mode))
	}
	return nil
}

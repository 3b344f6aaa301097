// Package password hashes and checks console passwords (the root's, set
// with `certfleet account password`, and RAM users' login profiles) with
// Argon2id, a memory-hard KDF, in the PHC string format
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash), so the parameters can be raised
// later without invalidating stored hashes.
//
// It is not where sign-in attempts are limited (internal/console) nor where
// access keys are checked (internal/auth).
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Parameters of new hashes: OWASP's Argon2id baseline (19 MiB, 2 passes,
// 1 lane), about 30 ms on one core of a small server.
const (
	memoryKiB = 19 * 1024
	passes    = 2
	lanes     = 1
	saltLen   = 16
	keyLen    = 32
)

// MinLen and MaxLen bound a password's length in characters.
const (
	MinLen = 8
	MaxLen = 128
)

// ErrPolicy is wrapped by Check's errors.
var ErrPolicy = errors.New("password policy")

// Check returns an error (wrapping ErrPolicy) saying what a new password
// lacks: 8 to 128 characters, not only letters or only digits.
func Check(pw string) error {
	n := utf8.RuneCountInString(pw)
	if n < MinLen || n > MaxLen {
		return fmt.Errorf("%w: a password has %d to %d characters", ErrPolicy, MinLen, MaxLen)
	}
	var letter, other bool
	for _, r := range pw {
		if ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') {
			letter = true
		} else {
			other = true
		}
	}
	if !letter || !other {
		return fmt.Errorf("%w: a password mixes letters with digits or symbols", ErrPolicy)
	}
	return nil
}

// Hash returns the PHC string of pw under a fresh salt.
func Hash(pw string) string {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, passes, memoryKiB, lanes, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, memoryKiB, passes, lanes, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// Verify reports whether pw matches the PHC string hash. A malformed hash
// never matches.
func Verify(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 1<<20 || t == 0 || t > 16 || p == 0 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// Dummy is a valid hash of no password anyone knows: sign-in verifies
// against it when the user does not exist, so both cases take as long.
var Dummy = Hash("certfleet-no-such-user-\x00")

package password

import (
	"errors"
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	t.Parallel()
	h := Hash("correct horse 1")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q: not the PHC argon2id form", h)
	}
	if h == Hash("correct horse 1") {
		t.Fatal("two hashes of one password are equal: the salt is not fresh")
	}
	for _, tc := range []struct {
		desc, hash, pw string
		want           bool
	}{
		{"right password", h, "correct horse 1", true},
		{"wrong password", h, "correct horse 2", false},
		{"empty password", h, "", false},
		{"truncated hash", h[:len(h)-4], "correct horse 1", false},
		{"other algorithm", strings.Replace(h, "argon2id", "argon2i", 1), "correct horse 1", false},
		{"absurd memory", strings.Replace(h, "m=19456", "m=99999999", 1), "correct horse 1", false},
		{"empty hash", "", "", false},
	} {
		if got := Verify(tc.hash, tc.pw); got != tc.want {
			t.Errorf("%s: Verify = %v, want %v", tc.desc, got, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, pw string
		ok       bool
	}{
		{"short", "ab1", false},
		{"letters only", "abcdefghij", false},
		{"digits only", "1234567890", false},
		{"mixed", "abcd1234", true},
		{"symbols", "pässwörd!", true},
		{"too long", strings.Repeat("a1", 65), false},
	} {
		err := Check(tc.pw)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrPolicy)) {
			t.Errorf("%s: Check = %v, want ok=%v", tc.desc, err, tc.ok)
		}
	}
}

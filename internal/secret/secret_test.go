package secret

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpen(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, KeySize)
	box, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte("-----BEGIN PRIVATE KEY-----\nabc\n")
	sealed := box.Seal(pt, PurposeCertKey)
	if bytes.Contains(sealed, pt[:10]) {
		t.Fatal("sealed value contains plaintext")
	}
	got, err := box.Open(sealed, PurposeCertKey)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	tests := []struct {
		desc    string
		sealed  []byte
		purpose Purpose
	}{
		{desc: "wrong purpose", sealed: sealed, purpose: PurposeAccessSecret},
		{desc: "tampered", sealed: append(append([]byte{}, sealed[:len(sealed)-1]...), sealed[len(sealed)-1]^1), purpose: PurposeCertKey},
		{desc: "truncated", sealed: sealed[:5], purpose: PurposeCertKey},
		{desc: "empty", sealed: nil, purpose: PurposeCertKey},
	}
	for _, tt := range tests {
		if _, err := box.Open(tt.sealed, tt.purpose); err != ErrOpen {
			t.Errorf("%s: err = %v, want ErrOpen", tt.desc, err)
		}
	}
	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
	if _, err := other.Open(sealed, PurposeCertKey); err != ErrOpen {
		t.Errorf("other key: err = %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "master.key")
	k1, created, err := LoadOrCreateKeyFile(path)
	if err != nil || !created || len(k1) != KeySize {
		t.Fatalf("create: %v %v %d", err, created, len(k1))
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v", st.Mode(), err)
	}
	k2, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("reload: %v %v", err, created)
	}
	if _, err := ParseKey("not a key"); err == nil {
		t.Fatal("ParseKey accepted garbage")
	}
	if k, err := ParseKey("0000000000000000000000000000000000000000000000000000000000000000"); err != nil || len(k) != KeySize {
		t.Fatalf("hex key: %v", err)
	}
}

// TestPurposesStable pins the purpose strings: every sealed value in a
// database is bound to one, so changing a string makes those values unreadable.
func TestPurposesStable(t *testing.T) {
	t.Parallel()
	// A map literal: two purposes with the same string would not compile.
	want := map[Purpose]string{
		PurposeAccessKey:    "access-key-secret",
		PurposeCertKey:      "cert-key",
		PurposeAccessSecret: "cloud-access-secret",
		PurposePrevious:     "worker-previous",
		PurposeConfigSecret: "config-secret",
	}
	for p, s := range want {
		if string(p) != s {
			t.Errorf("purpose %q, want %q", p, s)
		}
	}
}

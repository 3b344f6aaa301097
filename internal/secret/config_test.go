package secret

import (
	"bytes"
	"strings"
	"testing"
)

func TestSealConfig(t *testing.T) {
	t.Parallel()
	box, err := New(bytes.Repeat([]byte{3}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	secretKey := func(k string) bool { return k == "Passphrase" }
	sealed, err := box.SealConfig(`{"Passphrase":"hunter2","User":"deploy"}`, secretKey)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "hunter2") || !strings.Contains(sealed, `"User":"deploy"`) {
		t.Fatalf("sealed = %s", sealed)
	}
	again, _ := box.SealConfig(sealed, secretKey)
	if again != sealed {
		t.Errorf("sealing twice changed the Config: %s", again)
	}
	if m := MaskConfig(sealed); !strings.Contains(m, `"Passphrase":"******"`) || strings.Contains(m, "$sealed") {
		t.Errorf("masked = %s", m)
	}
	opened, err := box.OpenConfig(sealed)
	if err != nil || opened != `{"Passphrase":"hunter2","User":"deploy"}` {
		t.Errorf("opened = %s, %v", opened, err)
	}
	kept := KeepSealed(sealed, `{"Passphrase":"******","User":"other"}`)
	if opened, _ := box.OpenConfig(kept); opened != `{"Passphrase":"hunter2","User":"other"}` {
		t.Errorf("an update sending the mask back lost the secret: %s", opened)
	}
	if c, _ := box.SealConfig("", secretKey); c != "" {
		t.Errorf("empty Config sealed to %q", c)
	}
}

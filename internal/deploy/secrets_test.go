package deploy

import (
	"strings"
	"testing"
)

func TestEchoesKey(t *testing.T) {
	t.Parallel()
	const key = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nGwH0gPOsHYBbEpWg3pJxm0ThnnzfJ7wcooAoGCCqGSM49\nAwEHoUQDQgAE\n-----END EC PRIVATE KEY-----\n"
	const cert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUYw\n-----END CERTIFICATE-----\n"
	for _, tc := range []struct {
		desc, s string
		want    bool
	}{
		{desc: "the whole key", s: "output: " + key, want: true},
		{desc: "a PEM label alone", s: "-----BEGIN PRIVATE KEY----- truncated", want: true},
		{desc: "one base64 line", s: "bad data MHcCAQEEIBkg4LVWM9nGwH0gPOsHYBbEpWg3pJxm0ThnnzfJ7wcooAoGCCqGSM49 here", want: true},
		{desc: "a 31-character run from the middle", s: strings.Repeat("x", 5) + "EIBkg4LVWM9nGwH0gPOsHYBbEpWg3pJ", want: true},
		{desc: "the certificate", s: cert, want: false},
		{desc: "ordinary output", s: "nginx: configuration file /etc/nginx/nginx.conf test failed", want: false},
	} {
		if got := EchoesKey(tc.s, cert+key); got != tc.want {
			t.Errorf("%s: EchoesKey = %v, want %v", tc.desc, got, tc.want)
		}
	}
}

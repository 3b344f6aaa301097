package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// noSecret fails when an error's text carries the secret.
func noSecret(t *testing.T, err error, secret string) {
	t.Helper()
	if err != nil && len(secret) >= 4 && strings.Contains(err.Error(), secret) {
		t.Fatalf("error echoes the secret: %v", err)
	}
}

// FuzzVerifyV1 signs arbitrary parameters with HMAC-SHA1 as the SDK does and
// checks the round trip: Parse then Verify accept them with the secret,
// refuse them with SignatureDoesNotMatch under another, and no error carries
// the secret.
func FuzzVerifyV1(f *testing.F) {
	f.Add("Action=ListContact&Version=2020-04-07&Keyword=a+b*c~d", "POST", testSecret)
	f.Add("Name=%E8%AF%81%E4%B9%A6&Empty=&Star*Tilde=*~&Dup=1&Dup=2", "GET", "k")
	f.Add("Cert=-----BEGIN+CERTIFICATE-----%0AMIIB%2B%2F%3D%3D", "POST", "s3cr3t&=+/")
	f.Fuzz(func(t *testing.T, rawQuery, method, secret string) {
		params, err := url.ParseQuery(rawQuery)
		if err != nil || secret == "" {
			return
		}
		for _, k := range []string{"Signature", "AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"} {
			delete(params, k)
		}
		ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		params.Set("AccessKeyId", testKeyID)
		params.Set("SignatureMethod", SchemeV1)
		params.Set("SignatureVersion", "1.0")
		params.Set("SignatureNonce", "n0nce")
		params.Set("Timestamp", ts.Format(TimeLayout))
		mac := hmac.New(sha1.New, []byte(secret+"&"))
		mac.Write([]byte(stringToSignV1(method, params)))
		params.Set("Signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		r := &http.Request{Method: method, URL: &url.URL{Path: "/"}, Header: http.Header{}, Host: "h"}
		s, err := Parse(r, params)
		if err != nil {
			t.Fatalf("Parse of a well-formed V1 request: %v", err)
		}
		if err := Verify(r, params, nil, s, secret, ts); err != nil {
			t.Fatalf("Verify with the signing secret: %v", err)
		}
		err = Verify(r, params, nil, s, secret+"x", ts)
		var ae *Error
		if !errors.As(err, &ae) || ae.Code != CodeSignatureDoesNotMatch {
			t.Fatalf("Verify with another secret: %v, want SignatureDoesNotMatch", err)
		}
		noSecret(t, err, secret)
	})
}

// FuzzVerifyV3 signs an arbitrary query, body and header value with
// ACS3-HMAC-SHA256 and checks the round trip through Verify and through
// VerifyHead + CheckBody (the check made before the body is read): both
// accept with the secret, refuse another secret or another body, and no error
// carries the secret.
func FuzzVerifyV3(f *testing.F) {
	f.Add("Keyword=a%20b*c~d&Empty=", []byte("Cert=x&Label=f+o"), "ListContact", testSecret)
	f.Add("", []byte{}, "", "k")
	f.Add("a=%E8%AF%81&a=1&b", []byte("\x00\xff"), " spaced  value ", "s3cr3t")
	f.Fuzz(func(t *testing.T, rawQuery string, body []byte, action, secret string) {
		if _, err := url.ParseQuery(rawQuery); err != nil || secret == "" || strings.ContainsAny(action, "\r\n\x00") {
			return
		}
		u, err := url.Parse("/?" + rawQuery)
		if err != nil {
			return
		}
		ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		r := &http.Request{Method: "POST", URL: u, Host: "127.0.0.1:8080", Header: http.Header{}}
		sum := sha256.Sum256(body)
		r.Header.Set("x-acs-action", action)
		r.Header.Set("x-acs-date", ts.Format(TimeLayout))
		r.Header.Set("x-acs-signature-nonce", "n0nce")
		r.Header.Set("x-acs-content-sha256", hex.EncodeToString(sum[:]))
		const signed = "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce"
		r.Header.Set("Authorization", SchemeV3+" Credential="+testKeyID+",SignedHeaders="+signed+",Signature="+strings.Repeat("0", 64))
		v, _, err := parse(r, nil)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		sts, err := v.stringToSign(r)
		if err != nil {
			return // a query url.Parse accepts but the canonical form refuses
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(sts))
		r.Header.Set("Authorization", SchemeV3+" Credential="+testKeyID+",SignedHeaders="+signed+",Signature="+hex.EncodeToString(mac.Sum(nil)))

		s, err := Parse(r, nil)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if err := Verify(r, nil, body, s, secret, ts); err != nil {
			t.Fatalf("Verify with the signing secret: %v", err)
		}
		if err := VerifyHead(r, s, secret, ts); err != nil {
			t.Fatalf("VerifyHead with the signing secret: %v", err)
		}
		if err := CheckBody(r, s, sum[:]); err != nil {
			t.Fatalf("CheckBody of the signed body: %v", err)
		}
		other := sha256.Sum256(append([]byte("x"), body...))
		if err := CheckBody(r, s, other[:]); err == nil {
			t.Fatal("CheckBody accepted another body")
		}
		for _, err := range []error{Verify(r, nil, body, s, secret+"x", ts), VerifyHead(r, s, secret+"x", ts)} {
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != CodeSignatureDoesNotMatch {
				t.Fatalf("another secret: %v, want SignatureDoesNotMatch", err)
			}
			noSecret(t, err, secret)
		}
	})
}

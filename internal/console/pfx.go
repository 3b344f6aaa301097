package console

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"crypto/x509"
	"golang.org/x/crypto/pkcs12"
)

// pfx turns a PKCS#12 (PFX) file and its password into the PEM Cert and
// Key of UploadUserCertificate, then runs that operation like any other
// console call: the conversion is the console's, the upload the API's.
// Form fields: Name, Pfx (base64), PfxPassword. golang.org/x/crypto/pkcs12
// reads the legacy encryptions (3DES, RC2) only; for a PFX of OpenSSL 3's
// default (AES), the error says to re-export with -legacy or upload PEM.
func (c *Console) pfx(w http.ResponseWriter, r *http.Request) {
	s, ok := c.sessionForWrite(w, r)
	if !ok {
		return
	}
	if err := c.checkProfile(r, s); err != nil {
		c.fail(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		writeErr(w, http.StatusBadRequest, "InvalidParameter", "The upload is malformed or larger than 1 MiB.")
		return
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.PostForm.Get("Pfx")))
	if err != nil || len(raw) == 0 {
		writeErr(w, http.StatusBadRequest, "InvalidParameter", "Pfx: choose a .pfx or .p12 file.")
		return
	}
	blocks, err := pkcs12.ToPEM(raw, r.PostForm.Get("PfxPassword"))
	if err != nil {
		msg := "Pfx: the file could not be read: " + err.Error() + "."
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			msg = "Pfx: the password is wrong."
		} else if strings.Contains(err.Error(), "unknown") || strings.Contains(err.Error(), "OID") {
			msg = "Pfx: this file's encryption is not supported (OpenSSL 3 uses AES by default); export it again with `openssl pkcs12 -export -legacy`, or upload the PEM files."
		}
		writeErr(w, http.StatusBadRequest, "InvalidParameter", msg)
		return
	}
	var certs, key bytes.Buffer
	var leaf []byte
	for _, b := range blocks {
		b.Headers = nil
		switch b.Type {
		case "CERTIFICATE":
			// pkcs12 gives no order; the leaf is the one with the key's
			// localKeyId, which ToPEM dropped: put the first non-CA first.
			if leaf == nil && !isCA(b.Bytes) {
				leaf = pem.EncodeToMemory(b)
				continue
			}
			pem.Encode(&certs, b)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			// pkcs12 labels every key PRIVATE KEY, an EC key's bytes being
			// SEC1: re-encode whatever it is as PKCS#8.
			pemKey(&key, b.Bytes)
		}
	}
	form := url.Values{"Action": {"UploadUserCertificate"}, "Version": {"2020-04-07"}, "Name": {r.PostForm.Get("Name")},
		"Cert": {string(leaf) + certs.String()}, "Key": {key.String()}}
	body := form.Encode()
	r2 := r.Clone(r.Context())
	r2.Body = http.NoBody
	r2.Body = readCloser{strings.NewReader(body)}
	r2.ContentLength = int64(len(body))
	r2.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r2.URL.RawQuery = ""
	c.serveAs(w, r2, s)
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

func isCA(der []byte) bool {
	c, err := parseCert(der)
	return err == nil && c.IsCA
}

var parseCert = x509.ParseCertificate

func pemKey(w *bytes.Buffer, der []byte) {
	var k any
	var err error
	if k, err = x509.ParsePKCS8PrivateKey(der); err != nil {
		if k, err = x509.ParseECPrivateKey(der); err != nil {
			if k, err = x509.ParsePKCS1PrivateKey(der); err != nil {
				return // no key: the upload says Key is missing
			}
		}
	}
	if p8, err := x509.MarshalPKCS8PrivateKey(k); err == nil {
		pem.Encode(w, &pem.Block{Type: "PRIVATE KEY", Bytes: p8})
	}
}

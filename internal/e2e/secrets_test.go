package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver
	_ "modernc.org/sqlite"             // "sqlite" driver

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/secret"
)

// leak is a secret that must never be stored or logged in the clear.
type leak struct {
	what string
	b    []byte
}

// forms are the encodings a careless store could keep a secret in: as is, as
// hex (how PostgreSQL prints bytea), and as base64.
func (l leak) forms() map[string][]byte {
	return map[string][]byte{
		"raw":    l.b,
		"hex":    []byte(hex.EncodeToString(l.b)),
		"HEX":    []byte(strings.ToUpper(hex.EncodeToString(l.b))),
		"base64": []byte(base64.StdEncoding.EncodeToString(l.b)),
	}
}

// keyLeaks lists what of a private key must not appear: each base64 line of
// its PEM body, the whole body, its DER as uploaded and as PKCS#8, and its
// raw private numbers.
func keyLeaks(t *testing.T, desc string, ch certstest.Chain) []leak {
	t.Helper()
	block, _ := pem.Decode([]byte(ch.KeyPEM))
	if block == nil {
		t.Fatalf("%s: key is not PEM", desc)
	}
	var out []leak
	var body strings.Builder
	for i, line := range strings.Split(ch.KeyPEM, "\n") {
		if strings.HasPrefix(line, "-----") || line == "" {
			continue
		}
		body.WriteString(line)
		if len(line) >= 16 { // a short last line could match anything
			out = append(out, leak{fmt.Sprintf("%s PEM line %d", desc, i), []byte(line)})
		}
	}
	out = append(out, leak{desc + " PEM body", []byte(body.String())}, leak{desc + " DER", block.Bytes})
	pkcs8, err := x509.MarshalPKCS8PrivateKey(ch.Key)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, leak{desc + " PKCS#8 DER", pkcs8})
	switch k := ch.Key.(type) {
	case *rsa.PrivateKey:
		out = append(out, leak{desc + " D", k.D.Bytes()}, leak{desc + " P", k.Primes[0].Bytes()}, leak{desc + " Q", k.Primes[1].Bytes()})
	case *ecdsa.PrivateKey:
		out = append(out, leak{desc + " D", k.D.FillBytes(make([]byte, (k.Curve.Params().BitSize+7)/8))})
	case ed25519.PrivateKey:
		out = append(out, leak{desc + " seed", k.Seed()})
	default:
		t.Fatalf("%s: unexpected key type %T", desc, ch.Key)
	}
	return out
}

// dumpSQL reads every column of every table through database/sql: strings as
// they are, byte columns as raw bytes and hex.
func dumpSQL(t *testing.T, driver, dsn string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	listTables := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if driver == "pgx" {
		listTables = `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`
	}
	rows, err := db.QueryContext(ctx, listTables)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) == 0 {
		t.Fatalf("no tables in %s", dsn)
	}
	var out bytes.Buffer
	for _, table := range tables {
		fmt.Fprintf(&out, "-- table %s\n", table)
		rows, err := db.QueryContext(ctx, `SELECT * FROM "`+table+`"`)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			for i, v := range vals {
				switch v := v.(type) {
				case []byte:
					fmt.Fprintf(&out, "%s=%s|%x\n", cols[i], v, v)
				default:
					fmt.Fprintf(&out, "%s=%v\n", cols[i], v)
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		rows.Close()
	}
	return out.Bytes()
}

// dumpDatabase returns the stopped server's database, in as many renderings
// as can be had: for SQLite every byte of every file in the data directory
// (but the master key and root credentials) and a logical dump; for
// PostgreSQL pg_dump's output, when pg_dump is installed, and a logical dump.
func dumpDatabase(t *testing.T, srv *server) map[string][]byte {
	t.Helper()
	dumps := map[string][]byte{}
	if srv.engine == "sqlite" {
		entries, err := os.ReadDir(srv.dataDir)
		if err != nil {
			t.Fatal(err)
		}
		var raw bytes.Buffer
		var files []string
		for _, e := range entries {
			if e.IsDir() || e.Name() == "master.key" || e.Name() == "root-credentials.json" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(srv.dataDir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, e.Name())
			raw.Write(b)
		}
		t.Logf("SQLite files read: %v (%d bytes)", files, raw.Len())
		dumps["sqlite files"] = raw.Bytes()
		// The logical dump reads a copy, so opening it changes nothing we read above.
		cp := t.TempDir()
		for _, f := range files {
			b, _ := os.ReadFile(filepath.Join(srv.dataDir, f))
			if err := os.WriteFile(filepath.Join(cp, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		dumps["sqlite rows"] = dumpSQL(t, "sqlite", "file:"+filepath.Join(cp, "certfleet.db"))
		return dumps
	}
	if pgDump, err := exec.LookPath("pg_dump"); err == nil {
		out, err := exec.Command(pgDump, "--no-owner", "--dbname", srv.database).Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("pg_dump: %v: %s", err, stderr)
		}
		dumps["pg_dump"] = out
	} else {
		t.Logf("pg_dump not installed; checking the logical dump only")
	}
	dumps["postgres rows"] = dumpSQL(t, "pgx", srv.database)
	return dumps
}

func TestSecretsAtRest(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		srv := startServer(t, engine, serverOpts{args: []string{"--retry-base", "100ms"}})
		c := srv.client(false)
		var leaks []leak
		var certIDs []int64
		for i, k := range []struct{ desc, keyType, keyFormat string }{
			{"RSA PKCS#1 key", "rsa", "pkcs1"},
			{"ECDSA SEC1 key", "ecdsa", "sec1"},
			{"Ed25519 PKCS#8 key", "ed25519", "pkcs8"},
		} {
			domain := fmt.Sprintf("secret%d.example.test", i)
			ch := certstest.New(t, certstest.Options{DNSNames: []string{domain}, KeyType: k.keyType, KeyFormat: k.keyFormat})
			if !strings.Contains(ch.KeyPEM, "PRIVATE KEY-----") {
				t.Fatalf("%s: unexpected PEM %q", k.desc, ch.KeyPEM[:40])
			}
			// Upload each key once over V3 and once over V1 (where the key travels in signed query parameters).
			for _, v1 := range []bool{false, true} {
				up, err := srv.client(v1).UploadUserCertificate(&cas.UploadUserCertificateRequest{
					Name: tea.String(fmt.Sprintf("secrets-%s-v1-%v", k.keyType, v1)), Cert: tea.String(ch.CertPEM), Key: tea.String(ch.KeyPEM)})
				if err != nil {
					t.Fatalf("upload %s (v1=%v): %v", k.desc, v1, err)
				}
				certIDs = append(certIDs, tea.Int64Value(up.Body.CertId))
			}
			leaks = append(leaks, keyLeaks(t, k.desc, ch)...)
		}

		// CloudAccess secrets: one in the query (callOwn), one in a V1 form body.
		sk := make([]byte, 24)
		rand.Read(sk)
		secretKey := "cfsk-" + hex.EncodeToString(sk)
		rand.Read(sk)
		secretKeyForm := "cfsk-form-" + hex.EncodeToString(sk)
		secretID := fmt.Sprintf("secret-id-%d", time.Now().UnixNano())
		srv.mustOwn("CreateCloudAccess", map[string]string{"CloudName": "webhook", "SecretId": secretID, "SecretKey": secretKey, "Name": "hook-credential"})
		if _, err := callGeneric(srv.genericVia(srv.keyID, srv.secret, true, &wireTap{}), "CreateCloudAccess", "2020-04-07", nil,
			map[string]any{"CloudName": "webhook", "SecretId": secretID + "-form", "SecretKey": secretKeyForm}); err != nil {
			t.Fatalf("CreateCloudAccess with a V1 form body: %v", err)
		}
		// An SSH CloudAccess whose Config holds the key's Passphrase (sshx marks it Secret).
		rand.Read(sk)
		passphrase := "cfpass-" + hex.EncodeToString(sk)
		srv.mustOwn("CreateCloudAccess", map[string]string{"CloudName": "ssh", "SecretId": "deploy", "SecretKey": "not-a-key", "Name": "ssh-credential",
			"Config": `{"Passphrase":"` + passphrase + `"}`})
		audit := srv.mustOwn("LookupAuditEvents", map[string]string{"EventAction": "yundun-cert:CreateCloudAccess", "ShowSize": "100"})
		if b, _ := json.Marshal(audit); !bytes.Contains(b, []byte("ssh-credential")) || bytes.Contains(b, []byte(passphrase)) {
			t.Errorf("LookupAuditEvents lacks the ssh access or shows its Passphrase: %s", b)
		}
		leaks = append(leaks,
			leak{"the SSH CloudAccess Passphrase", []byte(passphrase)},
			leak{"the CloudAccess SecretKey", []byte(secretKey)},
			leak{"the CloudAccess SecretKey sent in a form body", []byte(secretKeyForm)},
			leak{"the root AccessKey secret", []byte(srv.secret)},
			leak{`"PRIVATE KEY-----"`, []byte("PRIVATE KEY-----")},
		)

		// ListCloudAccess never returns a secret, neither raw nor through the SDK.
		raw := srv.mustOwn("ListCloudAccess", map[string]string{"ShowSize": "100"})
		rawJSON, _ := json.Marshal(raw)
		for _, bad := range []string{"SecretKey", secretKey, secretKeyForm} {
			if bytes.Contains(rawJSON, []byte(bad)) {
				t.Errorf("ListCloudAccess returns %q: %s", bad, rawJSON)
			}
		}
		if !bytes.Contains(rawJSON, []byte(secretID)) {
			t.Errorf("ListCloudAccess does not list SecretId %s: %s", secretID, rawJSON)
		}
		list, err := c.ListCloudAccess(&cas.ListCloudAccessRequest{CloudName: tea.String("webhook")})
		if err != nil {
			t.Fatalf("ListCloudAccess: %v", err)
		}
		if n := len(list.Body.CloudAccessList); n != 2 {
			t.Errorf("ListCloudAccess through the SDK lists %d accesses, want 2", n)
		}

		// A deployment, so the engine's tables and logs see the keys too.
		rcv := newReceiver(t)
		res := srv.webhookResource(rcv.URL, "secret1.example.test")
		job, err := c.CreateDeploymentJob(&cas.CreateDeploymentJobRequest{Name: tea.String("secrets"), JobType: tea.String("user"),
			CertIds: tea.String(joinIDs(certIDs[2])), ResourceIds: tea.String(joinIDs(res)), ContactIds: tea.String(joinIDs(srv.contact()))})
		if err != nil {
			t.Fatalf("create job: %v", err)
		}
		jobID := tea.Int64Value(job.Body.JobId)
		if _, err := c.UpdateDeploymentJobStatus(&cas.UpdateDeploymentJobStatusRequest{JobId: tea.Int64(jobID), Status: tea.String("scheduling")}); err != nil {
			t.Fatalf("start job: %v", err)
		}
		if st := srv.waitJob(c, jobID, 60*time.Second, "success", "error"); st != "success" {
			t.Fatalf("job ended %s", st)
		}

		srv.stop()
		if mk, err := os.ReadFile(filepath.Join(srv.dataDir, "master.key")); err == nil {
			if key, err := secret.ParseKey(string(mk)); err == nil {
				leaks = append(leaks, leak{"the master key", key})
			}
		}

		dumps := dumpDatabase(t, srv)
		for name, dump := range dumps {
			// The dump must hold the data, or finding nothing proves nothing.
			for _, want := range []string{secretID, "secrets-rsa-v1-false", "hook-credential"} {
				if !bytes.Contains(dump, []byte(want)) {
					t.Errorf("%s (%d bytes) lacks %q: the dump did not capture the data", name, len(dump), want)
				}
			}
			for _, l := range leaks {
				for form, b := range l.forms() {
					if bytes.Contains(dump, b) {
						t.Errorf("%s holds %s (%s form)", name, l.what, form)
					}
				}
			}
		}
		logs := srv.Logs()
		if !strings.Contains(logs, "request") {
			t.Fatalf("no request logs captured:\n%s", logs)
		}
		for _, l := range leaks {
			for form, b := range l.forms() {
				if strings.Contains(logs, string(b)) {
					t.Errorf("the server log holds %s (%s form)", l.what, form)
				}
			}
		}
	})
}

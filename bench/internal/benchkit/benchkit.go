// Package benchkit holds what the benchmark programs under bench/ share:
// calling certfleet's own operations through the SDK's generic client,
// reading IDs from responses, and probing what a TLS listener serves.
package benchkit

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
)

// CallOwn calls one of certfleet's own operations (the CAS SDK has no
// method for them) and returns the response body.
func CallOwn(c *openapi.Client, action string, query map[string]string) (map[string]any, error) {
	q := map[string]*string{}
	for k, v := range query {
		q[k] = tea.String(v)
	}
	params := &openapiutil.Params{Action: tea.String(action), Version: tea.String("2020-04-07"), Protocol: tea.String("HTTP"),
		Pathname: tea.String("/"), Method: tea.String("POST"), AuthType: tea.String("AK"), Style: tea.String("RPC"),
		ReqBodyType: tea.String("formData"), BodyType: tea.String("json")}
	resp, err := c.CallApi(params, &openapiutil.OpenApiRequest{Query: q}, &dara.RuntimeOptions{})
	if err != nil {
		return nil, err
	}
	body, _ := resp["body"].(map[string]any)
	return body, nil
}

// IDOf reads an integer ID field of a response body.
func IDOf(body map[string]any, field string) (int64, error) {
	switch v := body[field].(type) {
	case json.Number:
		return v.Int64()
	case float64:
		return int64(v), nil
	case string:
		return strconv.ParseInt(v, 10, 64)
	}
	return 0, fmt.Errorf("no %s in %v", field, body)
}

// JoinIDs formats IDs as the API's comma-separated lists.
func JoinIDs(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ",")
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Served returns the SHA-256 of the leaf addr presents for serverName (SNI).
func Served(addr, serverName string) ([32]byte, error) {
	d := &net.Dialer{Timeout: 2 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: serverName, InsecureSkipVerify: true})
	if err != nil {
		return [32]byte{}, err
	}
	defer c.Close()
	certs := c.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return [32]byte{}, fmt.Errorf("no certificate")
	}
	return sha256.Sum256(certs[0].Raw), nil
}

// StopByPidFile signals the process named in pidFile and waits up to 5 s for
// it to exit, then kills it.
func StopByPidFile(pidFile string, sig syscall.Signal) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	syscall.Kill(pid, sig)
	for range 100 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// WriteNginxSites writes, for each site, its certificate and key at
// certPath(site) and keyPath(site), and an nginx configuration at conf with
// one TLS server block per site on addr (SNI), keeping pid, logs and
// temporary files under dir (which must hold "logs" and "tmp").
func WriteNginxSites(dir, conf, addr string, sites []string, certPath, keyPath func(string) string, certPEM, keyPEM string) error {
	var servers strings.Builder
	for _, site := range sites {
		if err := os.WriteFile(certPath(site), []byte(certPEM), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(keyPath(site), []byte(keyPEM), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(&servers, "    server {\n        listen %s ssl;\n        server_name %s;\n        ssl_certificate %s;\n        ssl_certificate_key %s;\n        return 200 \"ok\\n\";\n    }\n",
			addr, site, certPath(site), keyPath(site))
	}
	text := fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log;
worker_processes 1;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    server_names_hash_bucket_size 128;
%[2]s}
`, dir, servers.String())
	return os.WriteFile(conf, []byte(text), 0o644)
}

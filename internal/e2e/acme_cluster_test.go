package e2e

import (
	"io"
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/testutil"
	"github.com/certfleet/certfleet/internal/testutil/pebble"
)

var acmeHTTPAddr = regexp.MustCompile(`"msg":"answering ACME http-01 challenges","addr":"([^"]+)"`)

// TestACMECluster: two nodes on one PostgreSQL; the leader drives the order,
// and the other node answers the CA's http-01 request from the database
// (port 80 routed to it), as with a load balancer in front of a cluster.
func TestACMECluster(t *testing.T) {
	skipShort(t)
	peb := pebble.Start(t, pebble.Options{})
	args := acmeArgs(peb, false)
	r := startCluster(t, 2, append(args, "--acme-http-addr", "127.0.0.1:0")...)
	var leader int
	testutil.WaitFor(t, 20*time.Second, "a leader", func() (bool, error) {
		leader = r.leader()
		return leader >= 0, nil
	})
	other := r.nodes[1-leader]
	m := acmeHTTPAddr.FindStringSubmatch(other.Logs())
	if m == nil {
		t.Fatalf("node %d does not say where it answers http-01:\n%s", 1-leader, other.Logs())
	}
	// Port 80 of the names (pebble's HTTPPort) reaches only the non-leader.
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(peb.HTTPPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", m[1])
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	r.own("CreateIssuer", map[string]string{"ProductCode": "pebble", "DirectoryUrl": peb.DirectoryURL, "TrustedCA": peb.TrustedCA})
	var id int64
	r.sdk(func(c *cas.Client) error {
		resp, err := c.CreateCertificateRequest(&cas.CreateCertificateRequestRequest{Domain: tea.String("cluster.test"), ValidateType: tea.String("FILE")})
		if err == nil {
			id = tea.Int64Value(resp.Body.OrderId)
		}
		return err
	})
	var typ, msg string
	testutil.WaitFor(t, time.Minute, "the order to end", func() (bool, error) {
		body := r.own("DescribeCertificateState", map[string]string{"OrderId": strconv.FormatInt(id, 10)})
		typ, _ = body["Type"].(string)
		msg, _ = body["Message"].(string)
		return typ == "certificate" || typ == "verify_fail", nil
	})
	if typ != "certificate" {
		t.Fatalf("order ended %s: %s", typ, msg)
	}
}

// Command stranger measures what unsigned strangers cost a certfleet node:
// it starts a node (internal/testutil/proc, through benchkit) and fires
// -concurrency unsigned form POSTs of -size bytes at it at once, each on its
// own connection to 127.0.0.1, while it samples the node's VmRSS and VmHWM
// from /proc/<pid>/status and times signed ListUserCertificateOrder calls
// through the official SDK. It runs two scenarios: the defaults, and with
// the per-source limit off (--stranger-rate -1), so that only the in-flight
// body cap (--max-inflight-body) stands between the flood and the heap.
//
//	go run ./bench/stranger [-concurrency 1000] [-size 1048576] [-timeout 60s]
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/bench/internal/benchkit"
)

func main() {
	concurrency := flag.Int("concurrency", 1000, "unsigned requests sent at once")
	size := flag.Int("size", 1<<20, "bytes of each unsigned form body")
	timeout := flag.Duration("timeout", 60*time.Second, "bound on each scenario's flood")
	flag.Parse()
	if *concurrency > 5000 || *size > 8<<20 {
		fmt.Fprintln(os.Stderr, "stranger: at most 5000 requests of at most 8 MiB")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "certfleet-stranger-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)

	fmt.Printf("%d concurrent unsigned %d-byte forms at 127.0.0.1; signed ListUserCertificateOrder calls (V3, official SDK) during the flood\n\n", *concurrency, *size)
	fmt.Println("| scenario | answers to the flood | RSS before | VmHWM (peak RSS) | RSS after | signed calls (ok/all) | signed p50 | signed p99 | signed max |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for i, sc := range []struct {
		name string
		args []string
	}{
		{"defaults", nil},
		{"--stranger-rate -1 (in-flight cap only)", []string{"--stranger-rate", "-1"}},
	} {
		r, err := run(filepath.Join(dir, strconv.Itoa(i)), sc.args, *concurrency, *size, *timeout)
		if err != nil {
			fail(err)
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %d/%d | %s | %s | %s |\n", sc.name, r.answers, mib(r.rssBefore), mib(r.hwm), mib(r.rssAfter),
			r.signedOK, r.signedAll, ms(r.p(0.50)), ms(r.p(0.99)), ms(r.p(1)))
	}
}

type result struct {
	answers                  string
	rssBefore, hwm, rssAfter int64 // bytes
	signedOK, signedAll      int
	latencies                []time.Duration
}

func (r result) p(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(q * float64(len(r.latencies)-1))
	return r.latencies[i]
}

func run(dataDir string, args []string, concurrency, size int, timeout time.Duration) (result, error) {
	var res result
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Minute)
	defer cancel()
	keyID, secret := "LTAIbenchstranger", rand.Text()
	node, err := benchkit.StartCertfleet(ctx, benchkit.Certfleet{KeyID: keyID, Secret: secret, LogPath: dataDir + ".log",
		Args: append([]string{"--data-dir", dataDir, "--log-format", "json", "--log-level", "warn"}, args...)})
	if err != nil {
		return res, err
	}
	defer node.Stop(30 * time.Second)
	addr := node.Addr()
	client, err := cas.NewClient(&openapi.Config{AccessKeyId: tea.String(keyID), AccessKeySecret: tea.String(secret),
		Endpoint: tea.String(addr), Protocol: tea.String("http"), ReadTimeout: tea.Int(30000), ConnectTimeout: tea.Int(5000)})
	if err != nil {
		return res, err
	}
	if _, err := client.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{}); err != nil { // warm
		return res, err
	}
	status := func() (rss, hwm int64) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", node.Pid()))
		if err != nil {
			return 0, 0
		}
		for l := range strings.SplitSeq(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && (f[0] == "VmRSS:" || f[0] == "VmHWM:") {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				if f[0] == "VmRSS:" {
					rss = kb << 10
				} else {
					hwm = kb << 10
				}
			}
		}
		return rss, hwm
	}
	res.rssBefore, _ = status()

	stop := make(chan struct{})
	var bg sync.WaitGroup
	var peak atomic.Int64
	bg.Add(2)
	go func() { // sampler (VmHWM is the kernel's own peak; sampled as a cross-check)
		defer bg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if _, h := status(); h > peak.Load() {
					peak.Store(h)
				}
			}
		}
	}()
	var mu sync.Mutex
	go func() { // signed calls, one after another, during the flood
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			_, err := client.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{})
			d := time.Since(start)
			mu.Lock()
			res.signedAll++
			if err == nil {
				res.signedOK++
				res.latencies = append(res.latencies, d)
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()

	body := []byte("Action=ListContact&Version=2020-04-07&Pad=")
	body = append(body, strings.Repeat("x", size-len(body))...)
	answers := map[string]int{}
	var amu sync.WaitGroup
	var am sync.Mutex
	deadline := time.Now().Add(timeout)
	for range concurrency {
		amu.Add(1)
		go func() {
			defer amu.Done()
			a := unsigned(addr, body, deadline)
			am.Lock()
			answers[a]++
			am.Unlock()
		}()
	}
	amu.Wait()
	time.Sleep(200 * time.Millisecond) // a few more signed calls and samples after the flood
	close(stop)
	bg.Wait()
	res.rssAfter, res.hwm = status()
	res.hwm = max(res.hwm, peak.Load())
	slices.Sort(res.latencies)
	keys := make([]string, 0, len(answers))
	for k := range answers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%d× %s", answers[k], k)
	}
	res.answers = strings.Join(keys, ", ")
	return res, nil
}

// unsigned sends one unsigned form on its own connection, writing the body
// while it reads the answer, and returns "status Code" or the failure.
func unsigned(addr string, body []byte, deadline time.Time) string {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return "dial error"
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	head := fmt.Sprintf("POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", addr, len(body))
	go func() {
		io.WriteString(conn, head)
		conn.Write(body) // fails when the server answers without reading: expected
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "no answer"
	}
	defer resp.Body.Close()
	var eb struct{ Code string }
	json.NewDecoder(resp.Body).Decode(&eb)
	return strconv.Itoa(resp.StatusCode) + " " + eb.Code
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "stranger:", err)
	os.Exit(1)
}

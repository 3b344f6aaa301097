// Command aliyun measures one certfleet job deploying to many Alibaba Cloud
// resources — by default 1,000 CDN domains and 200 SLB listeners — against
// the fake Alibaba Cloud (internal/deploy/aliyun/aliyunfake) answering each
// call after -latency and limiting each API action to -qps calls a second.
// A real `certfleet serve` (SQLite) runs the job; the fake runs in this
// process on 127.0.0.1.
//
//	go run ./bench/aliyun                       # 1000 CDN + 200 SLB, 50 ms, 100 QPS per action
//	go run ./bench/aliyun -cdn 200 -slb 50      # quick check
//
// For each mode (unbatched: one call per domain; batched: the credential's
// Batch, concurrent CDN deployments sharing calls of up to 50 domains) it
// prints the wall time from the job's start to its end next to the lower
// bound the QPS limit imposes on the calls that mode made: for each action,
// accepted calls / QPS, the largest of them. The credential paces itself
// with ActionQPS equal to the fake's limit.
//
// It asserts nothing; docs/benchmarks.md records its figures.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/bench/internal/benchkit"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/aliyunfake"
	"github.com/certfleet/certfleet/internal/testutil/proc"
)

const (
	ak     = "LTAI5tBenchAliyun"
	secret = "bench-aliyun-secret-0123456789"
	region = "cn-hangzhou"
)

type config struct {
	cdn, slb, qps, workers int
	latency, timeout       time.Duration
	modes                  []string
	interleave             bool
}

type result struct {
	mode      string
	wall      time.Duration
	calls     map[string]int
	refused   map[string]int
	bound     time.Duration
	busiest   string
	status    string
	resources int
}

func main() {
	var c config
	var modes string
	flag.IntVar(&c.cdn, "cdn", 1000, "CDN domains in the job")
	flag.IntVar(&c.slb, "slb", 200, "SLB listeners (default certificates) in the job")
	flag.IntVar(&c.qps, "qps", 100, "calls a second the fake accepts per API action")
	flag.IntVar(&c.workers, "workers", 64, "certfleet serve --workers")
	flag.DurationVar(&c.latency, "latency", 50*time.Millisecond, "the fake's latency per call")
	flag.DurationVar(&c.timeout, "timeout", 15*time.Minute, "give up after")
	flag.StringVar(&modes, "modes", "unbatched,batched", "modes to run")
	flag.BoolVar(&c.interleave, "interleave", false, "order the job's resources CDN and SLB mixed (default: every CDN domain, then every SLB listener)")
	flag.Parse()
	c.modes = strings.Split(modes, ",")
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var results []result
	for _, m := range c.modes {
		r, err := run(ctx, c, m)
		if err != nil {
			fmt.Fprintln(os.Stderr, "aliyun bench:", err)
			os.Exit(1)
		}
		results = append(results, r)
	}
	order := "every CDN domain, then every SLB listener"
	if c.interleave {
		order = "CDN and SLB interleaved"
	}
	fmt.Printf("\n%d CDN domains + %d SLB listeners, one job (%s); fake: %v per call, %d QPS per action; certfleet --workers %d\n\n",
		c.cdn, c.slb, order, c.latency, c.qps, c.workers)
	fmt.Printf("%-10s %-8s %8s %9s %-38s %9s %9s %11s\n", "mode", "job", "calls", "throttled", "busiest action (accepted calls)", "bound s", "wall s", "wall/bound")
	for _, r := range results {
		total, refused := 0, 0
		for a, n := range r.calls {
			total += n
			refused += r.refused[a]
		}
		fmt.Printf("%-10s %-8s %8d %9d %-38s %9.1f %9.1f %11.2f\n", r.mode, r.status, total, refused,
			fmt.Sprintf("%s (%d)", r.busiest, r.calls[r.busiest]-r.refused[r.busiest]), r.bound.Seconds(), r.wall.Seconds(), r.wall.Seconds()/r.bound.Seconds())
	}
	for _, r := range results {
		fmt.Printf("\n%s calls per action (accepted/refused):\n", r.mode)
		var names []string
		for a := range r.calls {
			names = append(names, a)
		}
		sort.Strings(names)
		for _, a := range names {
			fmt.Printf("  %-44s %6d / %d\n", a, r.calls[a]-r.refused[a], r.refused[a])
		}
	}
}

func run(ctx context.Context, c config, mode string) (result, error) {
	res := result{mode: mode, resources: c.cdn + c.slb}
	f := aliyunfake.New(ak, secret)
	defer f.Close()
	certPEM, keyPEM, err := selfSigned("*.bench.test")
	if err != nil {
		return res, err
	}
	theirPEM, _, err := selfSigned("theirs.bench.test")
	if err != nil {
		return res, err
	}
	theirSLB := f.AddSLBCert(region, "theirs", theirPEM)
	for i := range c.cdn {
		f.AddCDNDomain(fmt.Sprintf("d%04d.bench.test", i), 0)
	}
	for i := range c.slb {
		f.AddLoadBalancer(region, fmt.Sprintf("lb-bench%04d", i), theirSLB, 443)
	}
	f.SetLatency(c.latency)
	for _, a := range []string{"DescribeDomainCertificateInfo", "SetCdnDomainSSLCertificate", "BatchSetCdnDomainServerCertificate",
		"ListUserCertificateOrder", "UploadUserCertificate", "GetUserCertificateDetail",
		"DescribeLoadBalancerHTTPSListenerAttribute", "SetLoadBalancerHTTPSListenerAttribute", "DescribeServerCertificates", "UploadServerCertificate"} {
		f.SetQPS(a, c.qps)
	}

	tmp, err := os.MkdirTemp("", "certfleet-bench-aliyun-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	bin, err := proc.Binary()
	if err != nil {
		return res, err
	}
	node, err := benchkit.StartCertfleet(ctx, benchkit.Certfleet{Binary: bin, KeyID: "LTAIbenchaliyun", Secret: "bench-root-secret-0123456789",
		LogPath: filepath.Join(tmp, "certfleet.log"),
		Args: []string{"--data-dir", filepath.Join(tmp, "data"), "--workers", strconv.Itoa(c.workers),
			"--rate-limit", "-1", "--egress-allow", "127.0.0.1/32", "--log-level", "warn", "--sync-interval", "0"}})
	if err != nil {
		return res, err
	}
	defer node.Stop(30 * time.Second)
	cfg := &openapi.Config{AccessKeyId: tea.String("LTAIbenchaliyun"), AccessKeySecret: tea.String("bench-root-secret-0123456789"),
		Endpoint: tea.String(node.Addr()), Protocol: tea.String("http"), MaxIdleConns: tea.Int(32), ReadTimeout: tea.Int(60000)}
	casc, err := cas.NewClient(cfg)
	if err != nil {
		return res, err
	}
	gen, err := openapi.NewClient(cfg)
	if err != nil {
		return res, err
	}
	body, err := benchkit.CallOwn(gen, "CreateCloudAccess", map[string]string{"CloudName": "aliyun", "Name": "bench", "SecretId": ak, "SecretKey": secret,
		"Config": fmt.Sprintf(`{"Endpoints":{"*":%q},"MaxQPS":1000,"ActionQPS":{"*":%d},"Batch":%v}`, f.URL(), c.qps, mode == "batched")})
	if err != nil {
		return res, fmt.Errorf("CreateCloudAccess: %w", err)
	}
	access, err := benchkit.IDOf(body, "AccessId")
	if err != nil {
		return res, err
	}
	up, err := casc.UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String("bench"), Cert: tea.String(certPEM), Key: tea.String(keyPEM)})
	if err != nil {
		return res, err
	}
	ids := make([]int64, c.cdn+c.slb)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range ids {
		q := map[string]string{"CloudName": "aliyun", "CloudAccessId": strconv.FormatInt(access, 10), "RegionId": region}
		if i < c.cdn {
			q["CloudProduct"], q["Domain"], q["Name"] = "CDN", fmt.Sprintf("d%04d.bench.test", i), fmt.Sprintf("cdn %d", i)
		} else {
			j := i - c.cdn
			q["CloudProduct"], q["InstanceId"], q["ListenerPort"], q["Name"] = "SLB", fmt.Sprintf("lb-bench%04d", j), "443", fmt.Sprintf("slb %d", j)
			q["Config"] = `{"DefaultResource":true}`
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			body, err := benchkit.CallOwn(gen, "CreateCloudResource", q)
			if err == nil {
				ids[i], err = benchkit.IDOf(body, "Id")
			}
			if err != nil {
				mu.Lock()
				firstErr = cmpErr(firstErr, fmt.Errorf("CreateCloudResource %v: %w", q, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	body, err = benchkit.CallOwn(gen, "CreateContact", map[string]string{"Name": "ops", "Email": "ops@example.test"})
	if err != nil {
		return res, fmt.Errorf("CreateContact: %w", err)
	}
	contact, err := benchkit.IDOf(body, "ContactId")
	if err != nil {
		return res, err
	}
	if c.interleave && c.slb > 0 {
		// One SLB listener after every cdn/slb CDN domains.
		mixed := make([]int64, 0, len(ids))
		step := max(1, c.cdn/c.slb)
		cdnIDs, slbIDs := ids[:c.cdn], ids[c.cdn:]
		for len(cdnIDs)+len(slbIDs) > 0 {
			n := min(step, len(cdnIDs))
			mixed = append(mixed, cdnIDs[:n]...)
			cdnIDs = cdnIDs[n:]
			if len(slbIDs) > 0 {
				mixed = append(mixed, slbIDs[0])
				slbIDs = slbIDs[1:]
			}
		}
		ids = mixed
	}
	job, err := casc.CreateDeploymentJob(&cas.CreateDeploymentJobRequest{Name: tea.String("bench " + mode), JobType: tea.String("user"),
		ContactIds: tea.String(strconv.FormatInt(contact, 10)),
		CertIds:    tea.String(strconv.FormatInt(tea.Int64Value(up.Body.CertId), 10)), ResourceIds: tea.String(benchkit.JoinIDs(ids))})
	if err != nil {
		return res, fmt.Errorf("CreateDeploymentJob: %w", err)
	}
	jobID := tea.Int64Value(job.Body.JobId)
	f.ResetCalls()
	start := time.Now()
	if _, err := casc.UpdateDeploymentJobStatus(&cas.UpdateDeploymentJobStatusRequest{JobId: tea.Int64(jobID), Status: tea.String("pending")}); err != nil {
		return res, err
	}
	for {
		d, err := casc.DescribeDeploymentJob(&cas.DescribeDeploymentJobRequest{JobId: tea.Int64(jobID)})
		if err != nil {
			return res, err
		}
		if st := tea.StringValue(d.Body.Status); st == "success" || st == "error" {
			res.wall, res.status = time.Since(start), st
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if res.status != "success" {
		w, _ := benchkit.CallOwn(gen, "ListWorkerResource", map[string]string{"JobId": strconv.FormatInt(jobID, 10), "ShowSize": "3"})
		fmt.Fprintf(os.Stderr, "%s: the job failed; some workers: %v\n", mode, w["Data"])
	}
	res.calls, res.refused = f.AllCalls(), f.Refused()
	for a, n := range res.calls {
		b := time.Duration(float64(n-res.refused[a]) / float64(c.qps) * float64(time.Second))
		if b > res.bound {
			res.bound, res.busiest = b, a
		}
	}
	fmt.Fprintf(os.Stderr, "%s: job %s in %v\n", mode, res.status, res.wall.Round(time.Millisecond))
	return res, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// selfSigned returns a self-signed ECDSA certificate for name and its key.
func selfSigned(name string) (certPEM, keyPEM string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})), nil
}

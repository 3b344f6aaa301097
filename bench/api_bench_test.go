package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/api"
	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/deploy/registry"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/postgres"
	"github.com/certfleet/certfleet/internal/store/sqlite"
	"github.com/certfleet/certfleet/internal/store/sqlstore"
	"github.com/certfleet/certfleet/internal/testutil"
)

// clients is how many goroutines call the API at once in BenchmarkAuth,
// whatever GOMAXPROCS is (b.RunParallel would tie it to the core count).
const clients = 8

// listSeed is how many certificates the List fixtures hold; List asks for
// the first page of listPage of them.
const (
	listSeed = 20
	listPage = 10
)

// BenchmarkAuth measures what authentication costs: the throughput of
// UploadUserCertificate and ListUserCertificateOrder through the real API
// handler on loopback, called by the official SDK (V3 signatures), with the
// signature check on ("signed") and off ("unsigned": Options.SkipSignature,
// which also skips the nonce insert; the SDK still signs). Each
// engine/operation/variant gets its own fresh store and server; the rate
// limit is off.
//
//	for i in $(seq 10); do go test ./bench -run '^$' -bench Auth -benchtime 1s; done | awk -f bench/authtable.awk
//
// Metrics: ops/s is calls completed per wall-clock second by 8 concurrent
// client goroutines (a fixed number, not b.RunParallel); cpu-us/op is this
// process's CPU per call (SDK client, API and SQLite together; the SDK
// client runs in the same process and shares the CPU); handler-us/op is the
// mean wall time a call spends inside the API handler.
func BenchmarkAuth(b *testing.B) {
	chain := certstest.New(b, certstest.Options{DNSNames: []string{"bench.example.test", "www.bench.example.test"}})
	ops := []struct {
		name string
		seed int
		call func(c *cas.Client, i int64) error
	}{
		{"Upload", 0, func(c *cas.Client, i int64) error {
			_, err := c.UploadUserCertificate(&cas.UploadUserCertificateRequest{
				Name: tea.String(fmt.Sprintf("bench-%d", i)), Cert: tea.String(chain.CertPEM), Key: tea.String(chain.KeyPEM)})
			return err
		}},
		{"List", listSeed, func(c *cas.Client, i int64) error {
			r, err := c.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{ShowSize: tea.Int64(listPage)})
			if err == nil && len(r.Body.CertificateOrderList) != listPage {
				err = fmt.Errorf("listed %d certificates, want %d", len(r.Body.CertificateOrderList), listPage)
			}
			return err
		}},
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			for _, op := range ops {
				b.Run(op.name, func(b *testing.B) {
					// Fixtures live across the sub-benchmark's b.N ramp-up, so
					// they are made here, once, and cleaned up with this level.
					for _, v := range []struct {
						name string
						skip bool
					}{{"signed", false}, {"unsigned", true}} {
						fx := newFixture(b, engine, v.skip)
						for i := range op.seed {
							if err := uploadSeed(fx.client, chain, i); err != nil {
								b.Fatalf("seed: %v", err)
							}
						}
						// One call before timing: the key cache and the connection pool are warm.
						if err := op.call(fx.client, names.Add(1)); err != nil {
							b.Fatalf("warm-up %s: %v", op.name, err)
						}
						b.Run(v.name, func(b *testing.B) { drive(b, fx, op.call) })
					}
				})
			}
		})
	}
}

// names numbers uploads across every run, so certificate Names never collide.
var names atomic.Int64

func uploadSeed(c *cas.Client, chain certstest.Chain, i int) error {
	_, err := c.UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String(fmt.Sprintf("seed-%d", i)),
		Cert: tea.String(chain.CertPEM), Key: tea.String(chain.KeyPEM)})
	return err
}

// drive runs b.N calls spread over clients goroutines and reports ops/s.
func drive(b *testing.B, fx *fixture, call func(*cas.Client, int64) error) {
	var done atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	cpu0 := cpuTime()
	fx.handlerNanos.Store(0)
	b.ResetTimer()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done.Add(1) <= int64(b.N) {
				if err := call(fx.client, names.Add(1)); err != nil {
					once.Do(func() { firstErr = err })
					done.Store(int64(b.N)) // stop the others
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	cpu := cpuTime() - cpu0
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
	b.ReportMetric(float64(fx.handlerNanos.Load())/1e3/float64(b.N), "handler-us/op")
}

// cpuTime is the user+system CPU time this process has used: client, API
// and SQLite together (PostgreSQL's own backends are not counted). Unlike
// ops/s it barely moves when other processes load the machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fixture is one API on its own fresh store, served on loopback.
type fixture struct {
	client *cas.Client
	// handlerNanos sums the wall time requests spent in the API handler
	// (signature check included), apart from the SDK and the network.
	handlerNanos atomic.Int64
}

type noWake struct{}

func (noWake) Wake() {}

func newFixture(b *testing.B, engine string, skipSignature bool) *fixture {
	b.Helper()
	ctx := context.Background()
	var st *sqlstore.DB
	var err error
	switch engine {
	case "sqlite":
		st, err = sqlite.Open(ctx, filepath.Join(b.TempDir(), "certfleet.db"))
		if err == nil {
			err = st.StartLocalNonces(ctx) // as serve does
		}
	case "postgres":
		st, err = postgres.Open(ctx, testutil.PostgresURL(b))
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })

	key := make([]byte, 32)
	rand.Read(key)
	box, err := secret.New(key)
	if err != nil {
		b.Fatal(err)
	}
	account, err := st.AccountEnsure(ctx, "root")
	if err != nil {
		b.Fatal(err)
	}
	keyID, sec := "LTAIbench"+strings.ToUpper(rand.Text()[:12]), rand.Text()
	if err := st.AccessKeyUpsert(ctx, store.AccessKey{ID: keyID, AccountID: account, Status: store.AccessKeyActive,
		SecretEnc: box.Seal([]byte(sec), secret.PurposeAccessKey), Created: time.Now()}); err != nil {
		b.Fatal(err)
	}
	// Request logs are formatted as in production (JSON), then dropped.
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	front := api.New(st, box, log, noWake{}, registry.New(registry.Options{}), account,
		api.Options{RateLimit: -1, SkipSignature: skipSignature})
	fx := &fixture{}
	h := front.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		fx.handlerNanos.Add(int64(time.Since(start)))
	}))
	b.Cleanup(srv.Close)

	// Enough idle connections for every client goroutine (the SDK default
	// keeps 2 per host, which would reconnect on most calls).
	c, err := cas.NewClient(&openapi.Config{AccessKeyId: tea.String(keyID), AccessKeySecret: tea.String(sec),
		Endpoint: tea.String(strings.TrimPrefix(srv.URL, "http://")), Protocol: tea.String("http"),
		MaxIdleConns: tea.Int(2 * clients)})
	if err != nil {
		b.Fatal(err)
	}
	fx.client = c
	return fx
}

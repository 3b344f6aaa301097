// Package server assembles a running certfleet node: it opens the store,
// loads the master key, ensures the root credentials, and serves the API,
// /healthz and the engine until its context ends.
//
// It is not the command line: cmd/certfleet turns flags and environment
// variables into a Config.
package server

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/api"
	"github.com/certfleet/certfleet/internal/auth"
	"github.com/certfleet/certfleet/internal/console"
	"github.com/certfleet/certfleet/internal/deploy/registry"
	"github.com/certfleet/certfleet/internal/discovery"
	"github.com/certfleet/certfleet/internal/egress"
	"github.com/certfleet/certfleet/internal/engine"
	"github.com/certfleet/certfleet/internal/issuance"
	"github.com/certfleet/certfleet/internal/metrics"
	"github.com/certfleet/certfleet/internal/notify"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/postgres"
	"github.com/certfleet/certfleet/internal/store/sqlite"
	"github.com/certfleet/certfleet/internal/store/sqlstore"
)

// Config is everything a node needs. See cmd/certfleet for the flags.
type Config struct {
	Addr     string
	TLSCert  string
	TLSKey   string
	DataDir  string
	Database string // empty: SQLite in DataDir; postgres://… : PostgreSQL
	// MasterKey, when set, is the master key (hex or base64); otherwise DataDir/master.key.
	MasterKey       string
	RootAccessKeyID string
	RootSecret      string
	NodeID          string
	API             api.Options
	// RenewTrustStore is a PEM bundle of roots an uploaded renewal may
	// chain to besides the CAs of the certificate it renews (empty: none).
	RenewTrustStore string
	Engine          engine.Config
	Deploy          registry.Options
	// EgressAllow and EgressDeny are the server-wide egress policy
	// (--egress-allow, --egress-deny): CIDRs, addresses and host names; an
	// entry may hold several separated by commas. See internal/egress.
	EgressAllow []string
	EgressDeny  []string
	// ProbeInterval is how often resources with a VerifyAddress are probed
	// and what they serve recorded. Zero disables periodic probing.
	ProbeInterval time.Duration
	// SyncInterval is how often the leader syncs the resources of every
	// cloud credential whose products can list them (0: never).
	SyncInterval time.Duration
	// Notify configures messages to contacts (SMTP, webhooks, retries).
	Notify notify.Config
	// ExpiryScanInterval is how often certificates near expiry are looked
	// for (also once shortly after start). Zero disables the scan.
	ExpiryScanInterval time.Duration
	// LeaderLease is how long the leadership of the periodic duties lasts
	// without renewal on PostgreSQL; a dead leader is replaced within about
	// it. Defaults to 5s.
	LeaderLease time.Duration
	// ACME configures certificate orders (issue 20): --acme-http-addr,
	// --acme-dns-resolvers, --renew-check-interval. Its Egress, Clock,
	// Notifier, AutoRenew and RenewTrust are filled in by Run.
	ACME issuance.Options
	// ShutdownTimeout bounds draining on SIGTERM. Defaults to 30s.
	ShutdownTimeout time.Duration
	// Ready, when set, receives the listening address once serving.
	Ready func(addr string)
}

// Run serves until ctx ends, then drains and returns nil (or the first fatal error).
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	st, migrations, engineName, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.Database == "" {
		// serve alone uses the SQLite file's nonces (the offline commands
		// open it beside it): answered from memory, written behind.
		if err := st.StartLocalNonces(ctx); err != nil {
			return err
		}
	}
	box, err := loadBox(cfg, log)
	if err != nil {
		return err
	}
	rootAccount, err := st.AccountEnsure(ctx, "root")
	if err != nil {
		return fmt.Errorf("root account: %w", err)
	}
	if err := ensureRootKey(ctx, cfg, st, box, rootAccount, log); err != nil {
		return err
	}
	if cfg.NodeID == "" {
		host, _ := os.Hostname()
		abs, _ := filepath.Abs(cfg.DataDir)
		cfg.NodeID = host + ":" + abs
	}
	cfg.Engine.Owner = cfg.NodeID
	dialer, err := newEgress(cfg, st, rootAccount)
	if err != nil {
		return err
	}
	cfg.Engine.Egress, cfg.API.Egress, cfg.Notify.Egress = dialer, dialer, dialer
	cfg.Deploy.SSH.Egress, cfg.Deploy.Webhook.Egress = dialer, dialer
	cfg.Deploy.Aliyun.Egress = dialer
	cfg.Deploy.AWS.Egress, cfg.Deploy.Tencent.Egress = dialer, dialer
	cfg.Deploy.Kubernetes.Egress = dialer
	products := registry.New(cfg.Deploy)
	if err := cfg.Notify.SMTP.Validate(); err != nil {
		return err
	}
	eng := engine.New(st, box, products, log, cfg.Engine)
	notifier := notify.New(st, log, cfg.Notify)
	apiOpts := cfg.API
	if cfg.RenewTrustStore != "" {
		pem, err := os.ReadFile(cfg.RenewTrustStore)
		if err != nil {
			return fmt.Errorf("renew trust store: %w", err)
		}
		apiOpts.RenewTrust = x509.NewCertPool()
		if !apiOpts.RenewTrust.AppendCertsFromPEM(pem) {
			return fmt.Errorf("renew trust store %s: no PEM certificate in it", cfg.RenewTrustStore)
		}
	}
	acmeOpts := cfg.ACME
	acmeOpts.RenewTrust = apiOpts.RenewTrust
	acmeOpts.Egress, acmeOpts.Notifier, acmeOpts.AutoRenew = dialer, notifier, cfg.API.AutoRenew
	acmeOpts.OnJob = func(int64) { eng.Wake() }
	orders := issuance.New(st, box, log, acmeOpts)
	elector, bus, err := newCluster(cfg, st, engineName, log, func() { eng.Wake(); notifier.Wake(); orders.Wake() })
	if err != nil {
		return err
	}
	eng.OnJobChange(func(int64) { notifier.Wake(); bus.Notify() })
	apiOpts.EmailEnabled = cfg.Notify.SMTP.Addr != ""
	apiOpts.Renewals = notifier
	apiOpts.Issuance = wakeOrders{orders, bus}
	syncer := &discovery.Syncer{Store: st, Catalog: products, Box: box, Log: log}
	apiOpts.Syncer = syncer
	front := api.New(st, box, log, wakeAll{eng, bus}, products, rootAccount, apiOpts)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		pctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := st.Ping(pctx); err != nil {
			http.Error(w, "database unreachable\n", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		pctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		ok, err := st.MigrationsCurrent(pctx, migrations)
		if err != nil || !ok {
			http.Error(w, "not ready\n", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", metrics.Handler())
	con := console.New(st, front, box, log, console.Options{Secure: cfg.TLSCert != ""})
	mux.Handle(console.Prefix, con.Handler())
	apiHandler := front.Handler()
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if console.IsBrowserRoot(r) { // a browser; API calls always carry an Action
			http.Redirect(w, r, console.Prefix, http.StatusFound)
			return
		}
		apiHandler.ServeHTTP(w, r)
	}))

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	log.Info("certfleet serving", "addr", ln.Addr().String(), "scheme", scheme, "database", engineName, "node", cfg.NodeID)

	engineCtx, stopEngine := context.WithCancel(context.Background())
	engineDone := make(chan struct{})
	go func() {
		defer close(engineDone)
		eng.Run(engineCtx)
	}()
	// Every node schedules jobs and claims workers (row locks make that
	// exclusive); the periodic duties run on the leader only.
	go elector.Run(engineCtx)
	go bus.Run(engineCtx)
	go elector.Lead(engineCtx, func(ctx context.Context) { purgeNonces(ctx, st, log) })
	go elector.Lead(engineCtx, func(ctx context.Context) { purgeSessions(ctx, con, log) })
	if cfg.ProbeInterval > 0 {
		go elector.Lead(engineCtx, func(ctx context.Context) { eng.RunProber(ctx, cfg.ProbeInterval) })
	}
	if cfg.SyncInterval > 0 {
		go elector.Lead(engineCtx, func(ctx context.Context) { syncer.Run(ctx, cfg.SyncInterval) })
	}
	go elector.Lead(engineCtx, notifier.Run)
	// Orders are driven by the leader; every node answers http-01 from the database.
	go elector.Lead(engineCtx, orders.Run)
	if cfg.ACME.HTTPAddr != "" {
		acmeLn, err := net.Listen("tcp", cfg.ACME.HTTPAddr)
		if err != nil {
			stopEngine()
			return fmt.Errorf("--acme-http-addr %s: %w", cfg.ACME.HTTPAddr, err)
		}
		acmeSrv := &http.Server{Handler: orders.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
		go acmeSrv.Serve(acmeLn)
		defer acmeSrv.Close()
		log.Info("answering ACME http-01 challenges", "addr", acmeLn.Addr().String())
	}
	go elector.Lead(engineCtx, func(ctx context.Context) {
		notifier.RunExpiryScan(ctx, cfg.ExpiryScanInterval, min(cfg.ExpiryScanInterval, 10*time.Second))
	})

	serveErr := make(chan error, 1)
	go func() {
		if cfg.TLSCert != "" {
			serveErr <- srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			serveErr <- srv.Serve(ln)
		}
	}()
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining requests")
	case err := <-serveErr:
		runErr = err
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown: requests still running after timeout", "error", err)
	}
	stopEngine()
	select {
	case <-engineDone:
	case <-sctx.Done():
		log.Warn("shutdown: engine still running after timeout")
	}
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	log.Info("stopped")
	return runErr
}

func openStore(ctx context.Context, cfg Config) (*sqlstore.DB, fs.FS, string, error) {
	switch {
	case cfg.Database == "":
		path := filepath.Join(cfg.DataDir, "certfleet.db")
		st, err := sqlite.Open(ctx, path)
		return st, sqlite.Migrations(), "sqlite:" + path, err
	case strings.HasPrefix(cfg.Database, "postgres://"), strings.HasPrefix(cfg.Database, "postgresql://"):
		st, err := postgres.Open(ctx, cfg.Database)
		return st, postgres.Migrations(), "postgres", err
	}
	return nil, nil, "", fmt.Errorf("--database must be empty (SQLite in the data dir) or a postgres:// URL")
}

func loadBox(cfg Config, log *slog.Logger) (*secret.Box, error) {
	var key []byte
	var err error
	if cfg.MasterKey != "" {
		key, err = secret.ParseKey(cfg.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("CERTFLEET_MASTER_KEY: %w", err)
		}
	} else {
		path := filepath.Join(cfg.DataDir, "master.key")
		var created bool
		key, created, err = secret.LoadOrCreateKeyFile(path)
		if err != nil {
			return nil, err
		}
		if created {
			log.Info("created master key; back it up, without it sealed secrets are lost", "path", path)
		}
	}
	return secret.New(key)
}

// ensureRootKey makes sure the root account has an access key: the one given
// in the environment, or one generated on first start and written to
// DataDir/root-credentials.json.
func ensureRootKey(ctx context.Context, cfg Config, st store.Store, box *secret.Box, account int64, log *slog.Logger) error {
	put := func(id, sec string) error { return PutRootKey(ctx, st, box, account, id, sec) }
	if cfg.RootAccessKeyID != "" || cfg.RootSecret != "" {
		if cfg.RootAccessKeyID == "" || cfg.RootSecret == "" {
			return errors.New("set both CERTFLEET_ROOT_ACCESS_KEY_ID and CERTFLEET_ROOT_ACCESS_KEY_SECRET, or neither")
		}
		return put(cfg.RootAccessKeyID, cfg.RootSecret)
	}
	path := filepath.Join(cfg.DataDir, "root-credentials.json")
	if data, err := os.ReadFile(path); err == nil {
		var c struct{ AccessKeyId, AccessKeySecret string }
		if err := json.Unmarshal(data, &c); err != nil || c.AccessKeyId == "" || c.AccessKeySecret == "" {
			return fmt.Errorf("%s is not valid; delete it to generate new root credentials", path)
		}
		if _, err := st.AccessKeyGet(ctx, c.AccessKeyId); errors.Is(err, store.ErrNotFound) {
			return put(c.AccessKeyId, c.AccessKeySecret)
		} else if err != nil {
			return err
		}
		return nil
	}
	id, sec := auth.NewAccessKey()
	if err := put(id, sec); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(map[string]string{"AccessKeyId": id, "AccessKeySecret": sec}, "", "  ")
	if err := secret.WriteFileAtomic(path, append(data, '\n'), 0o600); err != nil {
		return err
	}
	log.Info("generated root credentials", "path", path, "access_key_id", id)
	return nil
}

func purgeNonces(ctx context.Context, st store.Store, log *slog.Logger) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := st.NoncePurge(ctx, time.Now()); err != nil && ctx.Err() == nil {
				log.Warn("purge nonces", "error", err)
			}
		}
	}
}

// newEgress builds the one dialer of every connection made on a user's
// behalf: the server-wide policy from cfg, and each account's allow list
// read from the store on every dial (so `certfleet account update` applies
// to the next connection).
func newEgress(cfg Config, st store.Store, rootAccount int64) (*egress.Dialer, error) {
	allow, err := egress.ParseRules(splitEntries(cfg.EgressAllow))
	if err != nil {
		return nil, fmt.Errorf("--egress-allow: %w", err)
	}
	deny, err := egress.ParseRules(splitEntries(cfg.EgressDeny))
	if err != nil {
		return nil, fmt.Errorf("--egress-deny: %w", err)
	}
	accounts := func(ctx context.Context, id int64) (egress.Scope, error) {
		if id == rootAccount {
			return egress.Scope{Root: true}, nil
		}
		a, err := st.AccountGet(ctx, id)
		if err != nil {
			return egress.Scope{}, err
		}
		var s egress.Scope
		for _, e := range a.EgressAllow {
			if r, err := egress.ParseRule(e); err == nil { // the CLI checked them; a bad one grants nothing
				s.Allow = append(s.Allow, r)
			}
		}
		return s, nil
	}
	return egress.New(egress.Policy{Allow: allow, Deny: deny}, accounts, nil), nil
}

// splitEntries splits entries holding several comma-separated rules (as an
// environment variable does).
func splitEntries(in []string) []string {
	var out []string
	for _, e := range in {
		for _, f := range strings.Split(e, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

// purgeSessions deletes expired and idle console sessions every 10 minutes.
func purgeSessions(ctx context.Context, con *console.Console, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := con.Purge(ctx); err != nil && ctx.Err() == nil {
				log.Warn("purge console sessions", "error", err)
			}
		}
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/certfleet/certfleet/internal/notify"
	"github.com/certfleet/certfleet/internal/server"
)

func newServeCmd() *cobra.Command {
	var cfg server.Config
	var logFormat, logLevel, acmeResolvers string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a certfleet node (API and deployment engine)",
		Long: `Run a certfleet node: the CAS 2020-04-07 compatible API on --addr, and the
deployment engine. Every flag can also be set by an environment variable
CERTFLEET_<FLAG> (for example CERTFLEET_DATA_DIR for --data-dir).

Secrets from the environment only:
  CERTFLEET_ROOT_ACCESS_KEY_ID, CERTFLEET_ROOT_ACCESS_KEY_SECRET
      ensure this access key exists for the root account. When unset on first
      start, a key pair is generated and written to <data-dir>/root-credentials.json.
  CERTFLEET_MASTER_KEY
      the 32-byte master key (64 hex characters or base64) that seals private
      keys and credentials. Default: <data-dir>/master.key, created on first
      start. Nodes sharing one PostgreSQL must share this key.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := bindEnv(cmd.Flags()); err != nil {
				return err
			}
			log, err := newLogger(logFormat, logLevel)
			if err != nil {
				return err
			}
			cfg.Deploy.SSH.CommandTimeout = cfg.Deploy.Local.CommandTimeout
			cfg.MasterKey = os.Getenv("CERTFLEET_MASTER_KEY")
			cfg.RootAccessKeyID = os.Getenv("CERTFLEET_ROOT_ACCESS_KEY_ID")
			cfg.RootSecret = os.Getenv("CERTFLEET_ROOT_ACCESS_KEY_SECRET")
			if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
				return fmt.Errorf("--tls-cert and --tls-key go together")
			}
			cfg.Ready = func(addr string) {
				// The bound address (--addr may name port 0), for scripts and
				// test harnesses (internal/testutil/proc reads this line).
				fmt.Fprintf(os.Stderr, "certfleet: listening on %s\n", addr)
				printClientHint(os.Stderr, cfg, addr)
				scheme := "http"
				if cfg.TLSCert != "" {
					scheme = "https"
				}
				fmt.Fprintf(os.Stderr, "certfleet: web console: %s://%s/console/ (the root's password: certfleet account password root)\n", scheme, addr)
			}
			for _, r := range strings.Split(acmeResolvers, ",") {
				if r = strings.TrimSpace(r); r == "" {
					continue
				}
				if _, _, err := net.SplitHostPort(r); err != nil {
					return fmt.Errorf("--acme-dns-resolvers: %q is not host:port", r)
				}
				cfg.ACME.Resolvers = append(cfg.ACME.Resolvers, r)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return server.Run(ctx, cfg, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "serve HTTPS with this certificate file (PEM)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "private key file for --tls-cert (PEM)")
	f.StringVar(&cfg.DataDir, "data-dir", "./certfleet-data", "directory of the SQLite database, master key and root credentials")
	f.StringVar(&cfg.Database, "database", "", "empty for SQLite in --data-dir, or a postgres:// URL")
	f.StringVar(&cfg.NodeID, "node-id", "", "this node's name in worker leases; unique among live nodes (default host:data-dir)")
	f.BoolVar(&cfg.API.AllowRSA1024, "allow-rsa-1024", false, "accept uploaded certificates with 1024-bit RSA keys, for legacy devices (default: 2048 bits at least)")
	f.BoolVar(&cfg.API.AutoStart, "auto-start", false, "move new deployment jobs to pending at creation")
	f.Float64Var(&cfg.API.RateLimit, "rate-limit", 500, "API requests per second per AccessKey (negative: unlimited)")
	f.IntVar(&cfg.API.RateBurst, "rate-burst", 0, "API request burst per AccessKey (default 2×rate-limit)")
	f.Int64Var(&cfg.API.MaxBodyBytes, "max-body-bytes", 1<<20, "largest accepted request body")
	f.Int64Var(&cfg.API.MaxInflightBody, "max-inflight-body", 64<<20, "bytes of request bodies from callers not yet authenticated read at once (503 Throttling past it; negative: unlimited)")
	f.Float64Var(&cfg.API.StrangerRate, "stranger-rate", 10, "requests per second per source address that are unsigned, name an unknown AccessKeyId or fail their signature (negative: unlimited)")
	f.IntVar(&cfg.Engine.Workers, "workers", 64, "deployments running at once on this node")
	f.IntVar(&cfg.Engine.PerHost, "per-host", 16, "deployments (for ssh targets: sessions) running at once to one target host; reload rounds are not bounded by it")
	f.IntVar(&cfg.Engine.Attempts, "retry-attempts", 5, "attempts of a transiently failing deployment before it fails")
	f.DurationVar(&cfg.Engine.RetryBase, "retry-base", 2*time.Second, "first retry delay; doubles each retry, with jitter")
	f.DurationVar(&cfg.Engine.RetryMax, "retry-max", 5*time.Minute, "longest retry delay")
	f.DurationVar(&cfg.Engine.Lease, "lease", 30*time.Second, "worker lease; renewed every third of it while a deployment runs")
	f.DurationVar(&cfg.LeaderLease, "leader-lease", 5*time.Second, "PostgreSQL: lease of the leadership of periodic duties (probes, expiry scans, notifications, nonce purge); renewed every third of it")
	f.DurationVar(&cfg.Engine.AttemptTimeout, "deploy-timeout", 5*time.Minute, "bound on one deployment attempt")
	f.StringVar(&cfg.Deploy.Local.Root, "local-root", "", "allow local FILE targets, with every path inside this directory")
	f.StringArrayVar(&cfg.EgressAllow, "egress-allow", nil, "CIDR, address or host name every account may connect to, metadata and private addresses included (repeatable; comma-separated in CERTFLEET_EGRESS_ALLOW)")
	f.StringArrayVar(&cfg.EgressDeny, "egress-deny", nil, "CIDR, address or host name no account may connect to, root included; wins over every allow (repeatable; comma-separated in CERTFLEET_EGRESS_DENY)")
	f.StringArrayVar(&cfg.Deploy.Local.ReloadAllow, "local-reload-allow", nil, "exact ReloadCommand local targets may run (repeatable)")
	f.DurationVar(&cfg.Deploy.Local.CommandTimeout, "command-timeout", time.Minute, "default bound on reload and test commands (local and ssh targets)")
	f.DurationVar(&cfg.ProbeInterval, "probe-interval", time.Hour, "how often resources with a VerifyAddress are probed for what they serve (0: never)")
	f.DurationVar(&cfg.SyncInterval, "sync-interval", 6*time.Hour, "how often the leader syncs every cloud credential's resources, as SyncCloudResources does (0: never)")
	f.StringVar(&cfg.Notify.SMTP.Addr, "smtp-addr", "", "SMTP server host:port for email to contacts (empty: no email)")
	f.StringVar(&cfg.Notify.SMTP.TLS, "smtp-tls", notify.TLSStartTLS, "SMTP TLS: none, starttls or implicit")
	f.StringVar(&cfg.Notify.SMTP.User, "smtp-user", "", "SMTP user (PLAIN authentication); the password from CERTFLEET_SMTP_PASSWORD")
	f.StringVar(&cfg.Notify.SMTP.Password, "smtp-password", "", "SMTP password; prefer the environment variable CERTFLEET_SMTP_PASSWORD")
	f.StringVar(&cfg.Notify.SMTP.From, "smtp-from", "", "sender address of email (default certfleet@<smtp host>)")
	f.BoolVar(&cfg.Notify.SMTP.InsecureSkipVerify, "smtp-insecure-skip-verify", false, "accept any SMTP server certificate (tests, self-signed)")
	f.BoolVar(&cfg.Notify.NotifyUnchanged, "notify-unchanged", false, "tell contacts of jobs where every resource already held the certificate")
	f.DurationVar(&cfg.Notify.RetryBase, "notify-retry-base", 10*time.Second, "first retry delay of a failed message; doubles each retry (max 1h, 10 attempts)")
	f.DurationVar(&cfg.Notify.Timeout, "notify-timeout", 30*time.Second, "bound on one delivery of a message")
	f.DurationVar(&cfg.ExpiryScanInterval, "expiry-scan-interval", 24*time.Hour, "how often contacts are told of certificates 30/7/1 days from expiry (0: never)")
	f.BoolVar(&cfg.API.AutoRenew, "auto-renew", false, "default of the resource Config key AutoRenew: redeploy an uploaded renewal by itself")
	f.StringVar(&cfg.RenewTrustStore, "renew-trust-store", "", "PEM bundle of roots an uploaded renewal may chain to, besides the CAs of the certificate it renews")
	f.StringVar(&cfg.API.DefaultProductCode, "default-product-code", "", "issuer (ProductCode) of certificate requests that name none")
	f.StringVar(&cfg.ACME.HTTPAddr, "acme-http-addr", "", "answer ACME http-01 challenges on this address (route the names' port 80 here); FILE orders are manual without it")
	f.StringVar(&acmeResolvers, "acme-dns-resolvers", "", "comma-separated host:port DNS resolvers for propagation checks and manual orders (default: the system resolver)")
	f.DurationVar(&cfg.ACME.RenewCheck, "renew-check-interval", time.Hour, "how often issued certificates are checked for renewal")
	f.IntVar(&cfg.ACME.ChallengePort, "acme-challenge-port", 80, "port a manual FILE order's answer is looked for on before the CA is asked")
	f.DurationVar(&cfg.ACME.Poll, "acme-poll", 2*time.Second, "how often an order waiting on the CA or on a manual answer is looked at (growing for manual orders left waiting, at most 5m)")
	f.DurationVar(&cfg.ACME.RetryBase, "acme-retry-base", 10*time.Second, "first retry delay of a failed order step or renewal; doubles each retry (max 1h)")
	_ = f.MarkHidden("acme-challenge-port")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long SIGTERM waits for requests and deployments to finish")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

// printClientHint tells a local user, once serving, how to point the command
// line at this node, without printing the secret. The command names this very
// binary as a shell in another terminal can run it: "certfleet" when that is
// what PATH finds, else its absolute path. A plain eval succeeds even when the
// command inside fails, so the eval line turns a failure into a non-zero exit,
// and the second line offers the visible form: the export line to paste.
func printClientHint(w io.Writer, cfg server.Config, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	endpoint := scheme + "://" + net.JoinHostPort(host, port)
	if cfg.RootAccessKeyID != "" {
		fmt.Fprintf(w, "certfleet: to use the command line: export %s=%s %s=%s %s=\"$CERTFLEET_ROOT_ACCESS_KEY_SECRET\"\n",
			envEndpoint, shellQuote(endpoint), envKeyID, shellQuote(cfg.RootAccessKeyID), envSecret)
		return
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		dir = cfg.DataDir
	}
	env := fmt.Sprintf("%s env --data-dir %s --endpoint %s", selfCommand(), shellQuote(dir), shellQuote(endpoint))
	fmt.Fprintf(w, "certfleet: to use the command line, run in any terminal on this machine: eval \"$(%s || echo false)\"\n", env)
	fmt.Fprintf(w, "certfleet:   or run %s and paste the export line it prints\n", env)
}

// selfCommand is how a shell runs this binary: "certfleet" when PATH finds
// this very file, else its absolute path, quoted.
func selfCommand() string {
	self, err := os.Executable()
	if err != nil {
		return "certfleet"
	}
	if onPath, err := exec.LookPath("certfleet"); err == nil {
		a, errA := os.Stat(self)
		b, errB := os.Stat(onPath)
		if errA == nil && errB == nil && os.SameFile(a, b) {
			return "certfleet"
		}
	}
	if abs, err := filepath.EvalSymlinks(self); err == nil {
		self = abs
	}
	return shellQuote(self)
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json")
}

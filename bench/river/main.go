// Command river runs bench/jobs' workload on River (github.com/riverqueue/river
// v0.51.2), the general-purpose durable Go job queue, so that bench/jobs can
// print it beside certfleet's engine and the plain client in one run: N jobs,
// each POSTing the same body to the same loopback receiver, with W workers,
// on PostgreSQL (riverdatabasesql over pgx's database/sql driver) or SQLite
// (riversqlite over modernc.org/sqlite, one connection as the driver's
// documentation advises). The client settings are those of River's own
// benchmark (cmd/river/riverbench: FetchCooldown 2 ms, FetchPollInterval
// 20 ms), with MaxWorkers set to W instead of 2,000.
//
// It migrates River's schema, inserts the N jobs (InsertMany, 1,000 a
// batch; not timed), then starts the client and times from Start until the
// Nth completion event (after printing "ready" and reading a line from
// stdin, so that the caller can sample the database's CPU), and prints one
// JSON line: the wall time and this
// process's CPU (user+system) over that window.
//
// It lives in its own module (bench/river/go.mod) so that River never
// enters certfleet's go.mod. bench/jobs builds and runs it; it is not meant
// to be run by hand, though it can be.
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" database/sql driver
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	_ "modernc.org/sqlite" // "sqlite" database/sql driver
)

// PostArgs is one job: POST the body to the receiver.
type PostArgs struct {
	N int `json:"n"`
}

func (PostArgs) Kind() string { return "post" }

// PostWorker POSTs the shared body, as certfleet's webhook deployer does.
type PostWorker struct {
	river.WorkerDefaults[PostArgs]
	client *http.Client
	url    string
	body   []byte
}

func (w *PostWorker) Work(ctx context.Context, job *river.Job[PostArgs]) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(w.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// Result is what it prints.
type Result struct {
	Jobs   int   `json:"jobs"`
	WallNS int64 `json:"wall_ns"`
	CPUNS  int64 `json:"cpu_ns"`
}

func main() {
	var (
		engine, dsn, url, bodyFile string
		jobs, workers              int
	)
	flag.StringVar(&engine, "engine", "postgres", "postgres or sqlite")
	flag.StringVar(&dsn, "dsn", "", "PostgreSQL URL, or SQLite file path")
	flag.StringVar(&url, "url", "", "receiver URL")
	flag.StringVar(&bodyFile, "body", "", "file holding the body to POST")
	flag.IntVar(&jobs, "jobs", 10000, "jobs")
	flag.IntVar(&workers, "workers", 64, "MaxWorkers of the queue")
	flag.Parse()
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := run(ctx, engine, dsn, url, body, jobs, workers); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "river bench:", err)
	os.Exit(1)
}

func run(ctx context.Context, engine, dsn, url string, body []byte, jobs, workers int) error {
	var (
		db     *sql.DB
		driver riverdriver.Driver[*sql.Tx]
		err    error
	)
	switch engine {
	case "postgres":
		if db, err = sql.Open("pgx", dsn); err != nil {
			return err
		}
		db.SetMaxOpenConns(max(workers, 20))
		driver = riverdatabasesql.New(db)
	case "sqlite":
		if db, err = sql.Open("sqlite", "file:"+dsn+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)"); err != nil {
			return err
		}
		db.SetMaxOpenConns(1) // riversqlite's documentation: avoids SQLITE_BUSY
		driver = riversqlite.New(db)
	default:
		return fmt.Errorf("unknown engine %q", engine)
	}
	defer db.Close()

	m, err := rivermigrate.New(driver, nil)
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	ws := river.NewWorkers()
	tr := &http.Transport{MaxIdleConns: workers, MaxIdleConnsPerHost: workers}
	river.AddWorker(ws, &PostWorker{client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, url: url, body: body})
	client, err := river.NewClient(driver, &river.Config{
		// River logs to stdout by default; stdout is this program's
		// protocol with bench/jobs ("ready", then the JSON result).
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		FetchCooldown:     2 * time.Millisecond, // River's own benchmark settings
		FetchPollInterval: 20 * time.Millisecond,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
		Workers:           ws,
	})
	if err != nil {
		return err
	}
	for done := 0; done < jobs; {
		n := min(1000, jobs-done)
		batch := make([]river.InsertManyParams, n)
		for i := range batch {
			batch[i].Args = PostArgs{N: done + i}
		}
		if _, err := client.InsertMany(ctx, batch); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		done += n
	}
	// River drops an event when a subscriber's buffer is full (it logs
	// "Subscription event dropped"); with the default 1,000 a busy run lost
	// completions and waited out its bound. One slot per job loses none.
	events, stop := client.SubscribeConfig(&river.SubscribeConfig{ChanSize: jobs + 16,
		Kinds: []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed}})
	defer stop()
	// Tell bench/jobs we are ready (it samples the database's CPU) and wait
	// for its go.
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for go: %w", err)
	}

	cpu0 := cpuTime()
	start := time.Now()
	if err := client.Start(ctx); err != nil {
		return err
	}
	for completed := 0; completed < jobs; {
		select {
		case ev := <-events:
			if ev.Kind == river.EventKindJobFailed {
				return fmt.Errorf("job %d failed: %v", ev.Job.ID, ev.Job.Errors)
			}
			completed++
		case <-ctx.Done():
			return fmt.Errorf("%d of %d jobs completed: %w", completed, jobs, ctx.Err())
		}
	}
	r := Result{Jobs: jobs, WallNS: int64(time.Since(start)), CPUNS: int64(cpuTime() - cpu0)}
	// The result, then wait until bench/jobs has sampled the database's
	// backends (it closes stdin): stopping first would close River's
	// connections and their CPU would go uncounted.
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return err
	}
	io.Copy(io.Discard, os.Stdin)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Stop(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

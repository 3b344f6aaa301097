// Package notify tells a job's contacts what happened: a job's end, a
// rollback's end, a certificate entering its last days. Messages are rows in
// the store, written in the same transaction that records the event as told
// (so each event is told once, even across crashes and nodes), then
// delivered by a Dispatcher by email (SMTP) and chat-bot webhooks (DingTalk,
// Feishu/Lark, WeCom, Slack-compatible), retried with backoff.
//
// It is not the engine: a delivery failure never changes a job's outcome.
// It is not an API: ListNotification reads the rows through the store.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/clock"
	"github.com/certfleet/certfleet/internal/egress"
	"github.com/certfleet/certfleet/internal/store"
)

// Config tunes notifications. Zero values take the defaults given.
type Config struct {
	SMTP SMTPConfig
	// NotifyUnchanged tells a job's success even when every worker found
	// its certificate already in place. Defaults to false (no message).
	NotifyUnchanged bool
	// RetryBase is the delay before the first retry; each retry doubles it.
	// Defaults to 10s.
	RetryBase time.Duration
	// RetryMax caps a retry delay. Defaults to 1h.
	RetryMax time.Duration
	// Attempts is how many times a message is tried before it is failed.
	// Defaults to 10.
	Attempts int
	// Timeout bounds one delivery. Defaults to 30s. A claimed message whose
	// sender crashed is tried again Timeout+10s after its claim.
	Timeout time.Duration
	// Poll is the longest the dispatcher sleeps without looking at the
	// store (wake-ups are event-driven). Defaults to 10s.
	Poll time.Duration
	// Formats maps webhook hosts (or host:port) to a format, before
	// DefaultFormats.
	Formats map[string]string
	// HTTPClient's transport settings and timeout are used to post webhooks
	// (nil: http.DefaultTransport's, and Timeout). Its dial function, proxy
	// and redirect policy are replaced: connections go through Egress and
	// redirects are not followed. Its Transport, if set, must be an
	// *http.Transport.
	HTTPClient *http.Client
	// Egress makes every connection: webhooks under the egress policy of
	// the message's account, the SMTP server as the operator's. nil: the
	// default policy with every account treated as the root account.
	Egress *egress.Dialer
	// ExpiryThresholds are the days before expiry at which contacts are
	// told, once each. Defaults to 30, 7, 1.
	ExpiryThresholds []int
	// Clock is the dispatcher's time source. Defaults to clock.Real; tests
	// pass a clock.Fake.
	Clock clock.Clock
	// OnPass, if set, is called after each pass of Run (events emitted, due
	// messages delivered) with when it looks again unless woken earlier. It
	// must not block. Tests use it to know that the loop ran past a point.
	OnPass func(next time.Time)
}

func (c *Config) defaults() {
	if c.RetryBase <= 0 {
		c.RetryBase = 10 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Hour
	}
	if c.Attempts <= 0 {
		c.Attempts = 10
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = 10 * time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.Timeout}
	}
	if len(c.ExpiryThresholds) == 0 {
		c.ExpiryThresholds = []int{30, 7, 1}
	}
	if c.Clock == nil {
		c.Clock = clock.Real
	}
}

// permanentError is a delivery failure that retrying cannot fix.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

func permanent(err error) error { return &permanentError{err} }

func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Dispatcher turns due job events into messages and delivers messages. It
// is safe for concurrent use; several nodes may each run one.
type Dispatcher struct {
	cfg     Config
	clients *egress.Clients
	store   Store
	log     *slog.Logger
	wake    chan struct{}
	now     func() time.Time
}

// New returns a dispatcher; it does nothing until Run.
func New(st Store, log *slog.Logger, cfg Config) *Dispatcher {
	cfg.defaults()
	base, _ := cfg.HTTPClient.Transport.(*http.Transport)
	timeout := cfg.HTTPClient.Timeout
	if timeout <= 0 {
		timeout = cfg.Timeout
	}
	return &Dispatcher{cfg: cfg, store: st, log: log, wake: make(chan struct{}, 1), now: cfg.Clock.Now,
		clients: egress.NewClients(cfg.Egress, base, timeout, egress.RefuseRedirects)}
}

// Wake tells the dispatcher that a job changed. It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// sendParallel bounds the deliveries one node runs at once.
const sendParallel = 8

// Run emits due job events and delivers due messages until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	timer := d.cfg.Clock.NewTimer(0)
	defer timer.Stop()
	for {
		next := d.tick(ctx)
		timer.Reset(next.Sub(d.now()))
		if d.cfg.OnPass != nil {
			d.cfg.OnPass(next)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-timer.C():
		}
	}
}

func (d *Dispatcher) tick(ctx context.Context) time.Time {
	now := d.now()
	next := now.Add(d.cfg.Poll)
	if err := d.EmitJobEvents(ctx); err != nil && ctx.Err() == nil {
		d.log.Warn("notify: job events", "error", err)
		next = now.Add(time.Second)
	}
	for ctx.Err() == nil {
		rows, err := d.store.NotificationClaimDue(ctx, store.NotificationClaimDueParams{Now: d.now(),
			LeaseUntil: d.now().Add(d.cfg.Timeout + 10*time.Second), Limit: 32})
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, store.ErrConflict) {
				d.log.Warn("notify: claim messages", "error", err)
			}
			return now.Add(time.Second)
		}
		if len(rows) == 0 {
			break
		}
		sem := make(chan struct{}, sendParallel)
		var wg sync.WaitGroup
		for _, n := range rows {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				d.deliver(ctx, n)
			}()
		}
		wg.Wait()
	}
	if t, ok, err := d.store.NotificationNextDue(ctx); err == nil && ok && t.Before(next) {
		next = t
	}
	return next
}

// deliver sends one claimed message and records the outcome.
func (d *Dispatcher) deliver(ctx context.Context, n store.Notification) {
	sctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	err := d.send(sctx, n)
	cancel()
	if err != nil && ctx.Err() != nil {
		return // shutting down: the claim lapses and the message is tried again
	}
	now := d.now()
	p := store.NotificationFinishParams{ID: n.ID, ClaimToken: n.ClaimToken, Attempts: n.Attempts + 1}
	log := d.log.With("notification_id", n.ID, "job_id", n.JobID, "channel", n.Channel, "target", redactTarget(n))
	switch {
	case err == nil:
		p.Status, p.Sent = store.NotificationSent, now
	case isPermanent(err) || p.Attempts >= d.cfg.Attempts:
		p.Status, p.LastError = store.NotificationFailed, clip(err.Error(), 1000)
	default:
		p.Status, p.LastError, p.NextAttempt = store.NotificationPending, clip(err.Error(), 1000), now.Add(d.backoff(p.Attempts))
	}
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer wcancel()
	if ferr := d.store.NotificationFinish(wctx, p); ferr != nil {
		log.Warn("notify: outcome not recorded", "error", ferr)
		return
	}
	switch p.Status {
	case store.NotificationSent:
		log.Info("notification sent", "event", n.Event)
	case store.NotificationFailed:
		log.Warn("notification failed; giving up", "event", n.Event, "attempts", p.Attempts, "error", p.LastError)
	default:
		log.Info("notification will retry", "event", n.Event, "attempts", p.Attempts, "retry_at", p.NextAttempt.Format(time.RFC3339), "error", p.LastError)
	}
}

// backoff is the delay after attempt n (1-based): RetryBase·2^(n-1), capped.
func (d *Dispatcher) backoff(n int) time.Duration {
	b := d.cfg.RetryBase
	for i := 1; i < n && b < d.cfg.RetryMax; i++ {
		b *= 2
	}
	return min(b, d.cfg.RetryMax)
}

func redactTarget(n store.Notification) string {
	if n.Channel == store.ChannelWebhook {
		return redactURL(n.Target)
	}
	return n.Target
}

// emailBody is the Body of an email row.
type emailBody struct {
	Text string `json:"text"`
	HTML string `json:"html"`
}

func (d *Dispatcher) send(ctx context.Context, n store.Notification) error {
	switch n.Channel {
	case store.ChannelEmail:
		var b emailBody
		if err := json.Unmarshal([]byte(n.Body), &b); err != nil {
			return permanent(fmt.Errorf("notify: bad email body: %w", err))
		}
		return sendMail(ctx, d.cfg.Egress.Operator(), d.cfg.SMTP, n.Target, Message{Subject: n.Subject, Text: b.Text, HTML: b.HTML})
	case store.ChannelWebhook:
		return postWebhook(ctx, d.clients.Get(n.AccountID), n.Target, []byte(n.Body))
	}
	return permanent(fmt.Errorf("notify: unknown channel %q", n.Channel))
}

// Rows renders m for every channel of contacts: one email per distinct
// address, one webhook call per distinct URL, in the format its host expects.
func Rows(m Message, event string, accountID, jobID, certID int64, contacts []store.Contact, formats map[string]string) ([]store.Notification, error) {
	var out []store.Notification
	seen := map[string]bool{}
	base := store.Notification{AccountID: accountID, JobID: jobID, CertID: certID, Event: event, Subject: m.Subject}
	for _, c := range contacts {
		if e := strings.TrimSpace(c.Email); e != "" && !seen["e:"+strings.ToLower(e)] {
			seen["e:"+strings.ToLower(e)] = true
			b, _ := json.Marshal(emailBody{Text: m.Text, HTML: m.HTML})
			n := base
			n.Channel, n.Target, n.Body = store.ChannelEmail, e, string(b)
			out = append(out, n)
		}
		for _, u := range c.Webhooks {
			if u == "" || seen["w:"+u] {
				continue
			}
			seen["w:"+u] = true
			body, err := Payload(FormatFor(u, formats), m)
			if err != nil {
				return nil, err
			}
			n := base
			n.Channel, n.Target, n.Body = store.ChannelWebhook, u, string(body)
			out = append(out, n)
		}
	}
	return out, nil
}

// EmitJobEvents turns every due job event into messages, each event once.
func (d *Dispatcher) EmitJobEvents(ctx context.Context) error {
	for ctx.Err() == nil {
		evs, err := d.store.JobEventsDue(ctx, store.JobEventsDueParams{Limit: 100})
		if err != nil {
			return err
		}
		emitted := 0
		for _, ev := range evs {
			err := d.emitJob(ctx, ev)
			switch {
			case err == nil:
				emitted++
			case errors.Is(err, store.ErrConflict):
				// Another node told it first.
			default:
				return fmt.Errorf("job %d: %w", ev.Job.ID, err)
			}
		}
		if len(evs) < 100 || emitted == 0 {
			return nil
		}
	}
	return ctx.Err()
}

// reportPage is how many workers emitJob reads at a time.
const reportPage = 1000

// emitJob tells event ev. It reads the job's workers a page at a time and
// only the resources of the workers the message lists, so a job of any
// size is told in bounded memory.
func (d *Dispatcher) emitJob(ctx context.Context, ev store.JobEvent) error {
	j := ev.Job
	tally := NewJobTally(ev)
	page := store.WorkerListAfterParams{AccountID: j.AccountID, JobID: j.ID, Limit: reportPage}
	for {
		workers, err := d.store.WorkerListAfter(ctx, page)
		if err != nil {
			return err
		}
		if len(workers) == 0 {
			break
		}
		var ids []int64
		for _, w := range workers {
			if tally.Listed(w) {
				ids = append(ids, w.ResourceID)
			}
		}
		rs, err := d.store.ResourceGetMany(ctx, j.AccountID, ids)
		if err != nil {
			return err
		}
		byID := make(map[int64]store.Resource, len(rs))
		for _, r := range rs {
			byID[r.ID] = r
		}
		tally.Add(workers, byID)
		page.AfterID = workers[len(workers)-1].ID
	}
	report, nothing := tally.Report()
	p := store.NotificationEmitParams{Kind: ev.Kind, JobID: j.ID, Since: ev.Since, Mark: ev.Mark, Now: d.now()}
	if nothing && !d.cfg.NotifyUnchanged {
		return d.store.NotificationEmit(ctx, p) // told: nothing to tell
	}
	contacts, err := d.store.ContactGetMany(ctx, j.AccountID, j.ContactIDs)
	if err != nil {
		return err
	}
	p.Rows, err = Rows(report.Render(), report.Event, j.AccountID, j.ID, 0, contacts, d.cfg.Formats)
	if err != nil {
		return err
	}
	if err := d.store.NotificationEmit(ctx, p); err != nil {
		return err
	}
	if len(p.Rows) > 0 {
		d.log.Info("notifications queued", "job_id", j.ID, "event", report.Event, "messages", len(p.Rows))
		d.Wake()
	}
	return nil
}

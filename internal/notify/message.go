package notify

import (
	"fmt"
	"html"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// MaxListed is how many failed (or rolled back) resources a message lists;
// the rest are counted ("and N more").
const MaxListed = 20

// maxErrorLen bounds one resource's error in a message.
const maxErrorLen = 300

// Message is one event, rendered for every channel.
type Message struct {
	Subject  string
	Text     string // plain text (email, Feishu)
	Markdown string // DingTalk, WeCom, Slack
	HTML     string // email
}

// Item is one resource line of a message.
type Item struct {
	Resource string // "name (domain)"
	Product  string // cloud/product
	Status   string
	Error    string
}

// Report is what a message says about an event.
type Report struct {
	Event   string
	Title   string   // the subject
	Summary []string // lines of counts and facts
	// ListTitle heads Items (e.g. "Failed resources").
	ListTitle string
	Items     []Item
	// More counts items left out of Items already (a JobTally keeps only
	// MaxListed); they are told as "and N more" with those Render drops.
	More int
}

// Render turns a report into a message, listing at most MaxListed items.
func (r Report) Render() Message {
	items, more := r.Items, r.More
	if len(items) > MaxListed {
		items, more = items[:MaxListed], more+len(items)-MaxListed
	}
	var t, m, h strings.Builder
	t.WriteString(r.Title + "\n\n")
	m.WriteString("### " + mdEscape(r.Title) + "\n\n")
	h.WriteString(`<!DOCTYPE html><html><body style="font-family:sans-serif">` + "\n<h2>" + html.EscapeString(r.Title) + "</h2>\n<ul>\n")
	for _, l := range r.Summary {
		t.WriteString(l + "\n")
		m.WriteString("- " + mdEscape(l) + "\n")
		h.WriteString("<li>" + html.EscapeString(l) + "</li>\n")
	}
	h.WriteString("</ul>\n")
	if len(items) > 0 {
		t.WriteString("\n" + r.ListTitle + ":\n")
		m.WriteString("\n**" + mdEscape(r.ListTitle) + "**\n\n")
		h.WriteString("<h3>" + html.EscapeString(r.ListTitle) + "</h3>\n<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\n" +
			"<tr><th>Resource</th><th>Product</th><th>Status</th><th>Error</th></tr>\n")
		for _, it := range items {
			line := fmt.Sprintf("- %s [%s] %s", it.Resource, it.Product, it.Status)
			if it.Error != "" {
				line += ": " + it.Error
			}
			t.WriteString(line + "\n")
			m.WriteString("- " + mdEscape(line[2:]) + "\n")
			h.WriteString("<tr><td>" + html.EscapeString(it.Resource) + "</td><td>" + html.EscapeString(it.Product) + "</td><td>" +
				html.EscapeString(it.Status) + "</td><td>" + html.EscapeString(it.Error) + "</td></tr>\n")
		}
		h.WriteString("</table>\n")
		if more > 0 {
			l := fmt.Sprintf("… and %d more", more)
			t.WriteString(l + "\n")
			m.WriteString("- " + l + "\n")
			h.WriteString("<p>" + html.EscapeString(l) + "</p>\n")
		}
	}
	t.WriteString("\n-- \ncertfleet\n")
	h.WriteString("<p style=\"color:#888\">certfleet</p>\n</body></html>\n")
	return Message{Subject: r.Title, Text: t.String(), Markdown: m.String(), HTML: h.String()}
}

// mdEscape keeps user text from being read as Markdown markup.
func mdEscape(s string) string {
	return strings.NewReplacer("*", `\*`, "_", `\_`, "`", "'", "[", `\[`, "]", `\]`, "#", `\#`).Replace(s)
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

func resourceName(r store.Resource, id int64) string {
	switch {
	case r.ID == 0:
		return fmt.Sprintf("resource %d (deleted)", id)
	case r.Name != "" && r.Domain != "" && r.Name != r.Domain:
		return fmt.Sprintf("%s (%s, #%d)", r.Name, r.Domain, r.ID)
	case r.Domain != "":
		return fmt.Sprintf("%s (#%d)", r.Domain, r.ID)
	case r.Name != "":
		return fmt.Sprintf("%s (#%d)", r.Name, r.ID)
	}
	return fmt.Sprintf("resource #%d", r.ID)
}

// JobReport describes a job's end (ev.Kind end) or its rollbacks that ended
// after ev.Since (ev.Kind rollback). nothing reports a job end where every
// worker found its certificate already in place. It is a JobTally given
// all of workers at once.
func JobReport(ev store.JobEvent, workers []store.Worker, resources map[int64]store.Resource) (r Report, nothing bool) {
	t := NewJobTally(ev)
	t.Add(workers, resources)
	return t.Report()
}

// JobTally builds a job event's Report from the job's workers given a page
// at a time, keeping counts and at most MaxListed items, so a job of any
// size is told in bounded memory.
type JobTally struct {
	ev                                             store.JobEvent
	total, success, failed, unchanged, rbOK, rbErr int
	verifyRB, cancelled, rolledOK, rolledBad       int
	ran, skipped, rolling                          int // a halt's
	items                                          listed
}

// NewJobTally starts the tally of event ev.
func NewJobTally(ev store.JobEvent) *JobTally { return &JobTally{ev: ev} }

// Listed reports whether w will be listed in the report (a failure, or a
// rollback told now): the resources of those are the ones Add needs.
func (t *JobTally) Listed(w store.Worker) bool {
	switch t.ev.Kind {
	case store.JobEventKindHalt:
		return w.Status == store.WorkerError && !strings.HasPrefix(w.LastError, "not started:")
	case store.JobEventKindRollback:
		return (w.Status == store.WorkerRollbackSuccess || w.Status == store.WorkerRollbackError) && w.Modified.After(t.ev.Since)
	}
	return w.Status == store.WorkerError
}

// Add counts workers, in worker order; resources holds (at least) the
// resources of the workers Listed names.
func (t *JobTally) Add(workers []store.Worker, resources map[int64]store.Resource) {
	item := func(w store.Worker) Item {
		return Item{Resource: resourceName(resources[w.ResourceID], w.ResourceID), Product: w.CloudName + "/" + w.CloudProduct,
			Status: string(w.Status), Error: clip(w.LastError, maxErrorLen)}
	}
	for _, w := range workers {
		if t.ev.Kind == store.JobEventKindHalt {
			t.addHalted(w, item)
			continue
		}
		t.total++
		switch w.Status {
		case store.WorkerSuccess:
			t.success++
			if w.Unchanged {
				t.unchanged++
			}
		case store.WorkerError:
			t.failed++
			if strings.Contains(w.LastError, "rolled back") {
				t.verifyRB++
			}
			if t.ev.Kind == store.JobEventKindEnd {
				it := item(w)
				if strings.HasPrefix(it.Error, store.CancelledMessage) {
					t.cancelled++
				}
				t.items.add(it)
			}
		case store.WorkerRollbackSuccess, store.WorkerRollbackError:
			if w.Status == store.WorkerRollbackSuccess {
				t.rbOK++
			} else {
				t.rbErr++
			}
			if t.Listed(w) {
				if w.Status == store.WorkerRollbackSuccess {
					t.rolledOK++
				} else {
					t.rolledBad++
				}
				t.items.add(item(w))
			}
		}
	}
}

// Report is the event's report over every worker added.
func (t *JobTally) Report() (r Report, nothing bool) {
	j := t.ev.Job
	if t.ev.Kind == store.JobEventKindHalt {
		return t.haltReport(), false
	}
	name := fmt.Sprintf("%q (job %d, %s)", j.Name, j.ID, j.JobType)
	if t.ev.Kind == store.JobEventKindRollback {
		r = Report{Event: store.EventRollbackEnd, ListTitle: "Rolled back resources", Items: t.items.items, More: t.items.more}
		rolled := t.rolledOK + t.rolledBad
		if t.rolledBad > 0 {
			r.Title = fmt.Sprintf("[certfleet] Rollback failed on %d of %d resources: %s", t.rolledBad, rolled, name)
		} else {
			r.Title = fmt.Sprintf("[certfleet] Rollback succeeded on %d resources: %s", t.rolledOK, name)
		}
		r.Summary = []string{fmt.Sprintf("Job %s: %d resources rolled back now, %d of them failed.", name, rolled, t.rolledBad),
			fmt.Sprintf("In all: %d workers, %d deployed, %d failed, %d rolled back (%d failed to roll back).", t.total, t.success, t.failed,
				t.rbOK+t.rbErr, t.rbErr)}
		return r, false
	}
	r = Report{ListTitle: "Failed resources", Items: t.items.items, More: t.items.more}
	if j.Status == store.JobError {
		r.Event = store.EventJobError
		r.Title = fmt.Sprintf("[certfleet] Deployment failed on %d of %d resources: %s", t.failed, t.total, name)
	} else {
		r.Event = store.EventJobSuccess
		r.Title = fmt.Sprintf("[certfleet] Deployment succeeded on %d resources: %s", t.total, name)
	}
	if !j.Cancelled.IsZero() && t.cancelled > 0 {
		// CancelDeploymentJob: told once, as the job's end (the notified flag).
		r.Title = fmt.Sprintf("[certfleet] Deployment cancelled, %d of %d resources not deployed: %s", t.failed, t.total, name)
		r.Summary = []string{fmt.Sprintf("Job %s was cancelled at %s: %d workers never ran or stopped between retries.", name,
			j.Cancelled.UTC().Format(time.RFC3339), t.cancelled)}
	}
	r.Summary = append(r.Summary, fmt.Sprintf("Job %s ended %s.", name, j.Status),
		fmt.Sprintf("%d workers: %d deployed (%d already in place), %d failed, %d rolled back.", t.total, t.success, t.unchanged, t.failed,
			t.rbOK+t.rbErr))
	if t.verifyRB > 0 {
		r.Summary = append(r.Summary, fmt.Sprintf("%d failed verification and were rolled back automatically.", t.verifyRB))
	}
	if !j.StartTime.IsZero() && !j.EndTime.IsZero() {
		r.Summary = append(r.Summary, fmt.Sprintf("Ran from %s to %s (%s).", j.StartTime.UTC().Format(time.RFC3339),
			j.EndTime.UTC().Format(time.RFC3339), j.EndTime.Sub(j.StartTime).Round(time.Second)))
	}
	nothing = j.Status == store.JobSuccess && t.total > 0 && t.unchanged == t.total
	return r, nothing
}

// listed keeps the first MaxListed items in Resource order (equal names in
// the order added, as a stable sort of all of them would have them) and
// counts the rest.
type listed struct {
	items []Item
	more  int
}

func (l *listed) add(it Item) {
	i := sort.Search(len(l.items), func(k int) bool { return l.items[k].Resource > it.Resource })
	if i == MaxListed {
		l.more++
		return
	}
	l.items = slices.Insert(l.items, i, it)
	if len(l.items) > MaxListed {
		l.items = l.items[:MaxListed]
		l.more++
	}
}

func sortItems(items []Item) {
	sort.SliceStable(items, func(a, b int) bool { return items[a].Resource < items[b].Resource })
}

// ExpiryReport describes a certificate entering its last days.
func ExpiryReport(c store.Certificate, threshold int, now time.Time, serving []store.Resource) Report {
	left := c.NotAfter.Sub(now)
	days := int(left.Hours() / 24)
	r := Report{Event: store.EventCertExpiring, ListTitle: "Resources serving it"}
	r.Title = fmt.Sprintf("[certfleet] Certificate %q expires in %s", c.Name, daysText(days, left))
	r.Summary = []string{
		fmt.Sprintf("Certificate %q (ID %d, %s) expires on %s, less than %d days from now.", c.Name, c.ID, strings.Join(c.SANs, ", "),
			c.NotAfter.UTC().Format(time.RFC3339), threshold),
		"Upload its renewal: resources with AutoRenew receive it by themselves; deploy it to the others.",
	}
	for _, res := range serving {
		r.Items = append(r.Items, Item{Resource: resourceName(res, res.ID), Product: res.CloudName + "/" + res.CloudProduct, Status: "serving"})
	}
	sortItems(r.Items)
	return r
}

func daysText(days int, left time.Duration) string {
	switch {
	case days >= 2:
		return fmt.Sprintf("%d days", days)
	case days == 1:
		return "1 day"
	}
	return fmt.Sprintf("%s", left.Round(time.Minute))
}

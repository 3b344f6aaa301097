package notify

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/certfleet/certfleet/internal/store"
)

// EventRenewalFailed: an ACME renewal of a certificate failed (issue 20).
const EventRenewalFailed = "renewal_failed"

// RenewalFailed tells the contacts of the jobs that deployed c that its
// renewal failed, why, and how many days c has left. Each failure is told
// (the driver's backoff spaces them out).
func (d *Dispatcher) RenewalFailed(ctx context.Context, c store.Certificate, reason string, daysLeft int) error {
	jobs, err := d.store.CertificateDeployedBy(ctx, c.AccountID, c.ID)
	if err != nil || len(jobs) == 0 {
		return err
	}
	var contactIDs []int64
	for _, j := range jobs {
		for _, id := range j.ContactIDs {
			if !slices.Contains(contactIDs, id) {
				contactIDs = append(contactIDs, id)
			}
		}
	}
	contacts, err := d.store.ContactGetMany(ctx, c.AccountID, contactIDs)
	if err != nil || len(contacts) == 0 {
		return err
	}
	r := Report{Event: EventRenewalFailed}
	r.Title = fmt.Sprintf("[certfleet] Renewal of %q failed: %d days left", c.Name, daysLeft)
	r.Summary = []string{
		fmt.Sprintf("Certificate %q (ID %d, %s) expires on %s, in %d days. Its renewal failed: %s.",
			c.Name, c.ID, strings.Join(c.SANs, ", "), c.NotAfter.UTC().Format("2006-01-02 15:04 MST"), daysLeft, reason),
		"certfleet tries again by itself; fix the cause (DNS credential, challenge route, CA account) before the certificate expires.",
	}
	rows, err := Rows(r.Render(), r.Event, c.AccountID, 0, c.ID, contacts, d.cfg.Formats)
	if err != nil {
		return err
	}
	if err := d.store.NotificationEmit(ctx, store.NotificationEmitParams{Kind: store.EmitKindOnce, CertID: c.ID, Rows: rows, Now: d.now()}); err != nil {
		return err
	}
	d.Wake()
	return nil
}

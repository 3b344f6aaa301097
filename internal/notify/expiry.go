package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// RunExpiryScan scans for expiring certificates shortly after start (after
// delay) and then every interval, until ctx ends. interval 0 disables it.
func (d *Dispatcher) RunExpiryScan(ctx context.Context, interval, delay time.Duration) {
	if interval <= 0 {
		return
	}
	t := d.cfg.Clock.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		if n, err := d.ScanExpiry(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("notify: expiry scan", "error", err)
		} else if n > 0 {
			d.log.Info("expiry notices queued", "certificates", n)
		}
		d.log.Debug("expiry scan done")
		t.Reset(interval)
	}
}

// ScanExpiry tells, once per threshold, the contacts of the jobs that
// deployed each certificate now within a threshold of its expiry (not yet
// expired). A certificate first seen within several thresholds is told the
// closest one only. It returns how many certificates were told.
func (d *Dispatcher) ScanExpiry(ctx context.Context) (int, error) {
	now := d.now()
	ths := slices.Clone(d.cfg.ExpiryThresholds)
	slices.Sort(ths)
	widest := ths[len(ths)-1]
	told := 0
	var after int64
	for {
		cs, err := d.store.CertificateScan(ctx, store.CertificateScanParams{AfterID: after, NotAfterFrom: now,
			NotAfterTo: now.Add(time.Duration(widest) * 24 * time.Hour), Limit: 500})
		if err != nil {
			return told, err
		}
		for _, c := range cs {
			after = c.ID
			ok, err := d.emitExpiry(ctx, c, ths, now)
			if err != nil {
				return told, err
			}
			if ok {
				told++
			}
		}
		if len(cs) < 500 {
			return told, nil
		}
	}
}

func (d *Dispatcher) emitExpiry(ctx context.Context, c store.Certificate, ths []int, now time.Time) (bool, error) {
	left := c.NotAfter.Sub(now)
	th := -1
	var also []int
	for _, t := range ths { // ascending: the closest threshold first
		if left <= time.Duration(t)*24*time.Hour {
			if th < 0 {
				th = t
			} else {
				also = append(also, t)
			}
		}
	}
	if th < 0 {
		return false, nil
	}
	jobs, err := d.store.CertificateDeployedBy(ctx, c.AccountID, c.ID)
	if err != nil {
		return false, err
	}
	if len(jobs) == 0 {
		// Not deployed (yet): nobody to tell, and the threshold stays
		// untold until a job deploys it.
		return false, nil
	}
	var contactIDs []int64
	var jobID int64
	for _, j := range jobs {
		jobID = j.ID // the latest
		for _, id := range j.ContactIDs {
			if !slices.Contains(contactIDs, id) {
				contactIDs = append(contactIDs, id)
			}
		}
	}
	contacts, err := d.store.ContactGetMany(ctx, c.AccountID, contactIDs)
	if err != nil {
		return false, err
	}
	serving, _, err := d.store.ResourceList(ctx, store.ResourceListParams{AccountID: c.AccountID, CertIDs: []int64{c.ID}})
	if err != nil {
		return false, err
	}
	report := ExpiryReport(c, th, now, serving)
	rows, err := Rows(report.Render(), report.Event, c.AccountID, jobID, c.ID, contacts, d.cfg.Formats)
	if err != nil {
		return false, err
	}
	err = d.store.NotificationEmit(ctx, store.NotificationEmitParams{Kind: store.EmitKindExpiry, CertID: c.ID, ThresholdDays: th,
		AlsoThresholds: also, Rows: rows, Now: now})
	if errors.Is(err, store.ErrConflict) {
		return false, nil // told before
	}
	if err != nil {
		return false, err
	}
	if len(rows) > 0 {
		d.Wake()
	}
	return len(rows) > 0, nil
}

// RenewalRefused tells contactIDs that the uploaded renewal c was not
// deployed by itself to the resources resourceIDs, and why (reason, one
// line). The upload stands; the message says so.
func (d *Dispatcher) RenewalRefused(ctx context.Context, c store.Certificate, contactIDs, resourceIDs []int64, reason string) error {
	contacts, err := d.store.ContactGetMany(ctx, c.AccountID, contactIDs)
	if err != nil || len(contacts) == 0 {
		return err
	}
	r := Report{Event: store.EventRenewalRefused, ListTitle: "Resources left on the older certificate"}
	r.Title = fmt.Sprintf("[certfleet] Renewal %q not deployed", c.Name)
	r.Summary = []string{
		fmt.Sprintf("Certificate %q (ID %d, %s) renews certificates that AutoRenew resources serve, but was not deployed by itself: %s.",
			c.Name, c.ID, strings.Join(c.SANs, ", "), reason),
		"The certificate stays uploaded. If it is right, deploy it with a job.",
	}
	resources, err := d.store.ResourceGetMany(ctx, c.AccountID, resourceIDs)
	if err != nil {
		return err
	}
	for _, res := range resources {
		r.Items = append(r.Items, Item{Resource: resourceName(res, res.ID), Product: res.CloudName + "/" + res.CloudProduct, Status: "not renewed"})
	}
	sortItems(r.Items)
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

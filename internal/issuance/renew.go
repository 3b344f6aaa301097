package issuance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-acme/lego/v5/acme/api"

	"github.com/certfleet/certfleet/internal/certs"
	"github.com/certfleet/certfleet/internal/rollout"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

// renewDue starts a renewal order for every issued certificate whose
// renewal time has come (two thirds of its lifetime, or the start of the
// CA's ACME Renewal Information window when earlier).
func (d *Driver) renewDue(ctx context.Context) {
	d.checkARI(ctx)
	now := d.opts.Clock()
	orders, err := d.st.OrderRenewDue(ctx, now, 100)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("acme: renewals due", "error", err)
		}
		return
	}
	for _, o := range orders {
		if _, err := d.st.CertificateGet(ctx, o.AccountID, o.CertID); errors.Is(err, store.ErrNotFound) {
			// The certificate was deleted: nothing to renew any more.
			o.RenewAt = time.Time{}
			if err := d.st.OrderUpdate(ctx, &o); err != nil && !errors.Is(err, store.ErrConflict) {
				d.log.Warn("acme: retire order of a deleted certificate", "order_id", o.ID, "error", err)
			}
			continue
		}
		if err := d.startRenewal(ctx, o); err != nil && !errors.Is(err, store.ErrConflict) {
			d.log.Warn("acme: start renewal", "order_id", o.ID, "cert_id", o.CertID, "error", err)
		}
	}
	d.log.Debug("acme: renewal check done", "due", len(orders))
}

// checkARI asks the CA's ACME Renewal Information (RFC 9773), where its
// directory offers it, when the soonest issued certificates should be
// renewed, and moves their renewal time earlier when the CA's suggested
// window starts before it (a CA revoking certificates moves it to the past).
func (d *Driver) checkARI(ctx context.Context) {
	far := d.opts.Clock().Add(100 * 365 * 24 * time.Hour)
	orders, err := d.st.OrderRenewDue(ctx, far, 500)
	if err != nil {
		return
	}
	now := d.opts.Clock()
	for _, o := range orders {
		if ctx.Err() != nil || !o.RenewAt.After(now) {
			continue
		}
		at, ok := d.ariStart(ctx, o)
		if !ok || !at.Before(o.RenewAt) {
			continue
		}
		o.RenewAt = at
		if err := d.st.OrderUpdate(ctx, &o); err == nil {
			d.log.Info("acme: the CA's renewal information moves a renewal earlier", "cert_id", o.CertID, "renew_at", at)
		}
	}
}

// ariStart is when, within the CA's suggested renewal window for o's
// certificate, to renew it; false when the CA offers none or cannot be asked.
func (d *Driver) ariStart(ctx context.Context, o store.Order) (time.Time, bool) {
	iss, err := d.st.IssuerGetByID(ctx, o.IssuerID)
	if err != nil {
		return time.Time{}, false
	}
	c, err := d.core(ctx, iss)
	if err != nil || c.core.GetDirectory().RenewalInfo == "" || o.CertPEM == "" {
		return time.Time{}, false
	}
	leaf, _, err := certs.ParseChain(o.CertPEM)
	if err != nil {
		return time.Time{}, false
	}
	id, err := api.MakeARICertID(leaf)
	if err != nil {
		return time.Time{}, false
	}
	info, err := c.core.Certificates.GetRenewalInfo(ctx, id)
	if err != nil {
		d.log.Debug("acme: renewal information", "cert_id", o.CertID, "error", err)
		return time.Time{}, false
	}
	// RFC 9773 §4.2: a time chosen uniformly within the window, here a
	// stable one per order (a fresh draw at every check would drift to the
	// window's start).
	w := info.SuggestedWindow
	frac := float64(uint64(o.ID)*2654435761%1000) / 1000
	return w.Start.Add(time.Duration(frac * float64(w.End.Sub(w.Start)))), true
}

// startRenewal places a renewal order for o's certificate: same issuer,
// names and validation, a new key of the issuer's type.
func (d *Driver) startRenewal(ctx context.Context, o store.Order) error {
	iss, err := d.st.IssuerGetByID(ctx, o.IssuerID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			o.RenewAt = time.Time{} // nothing to renew with: stop looking
			return d.st.OrderUpdate(ctx, &o)
		}
		return err
	}
	key, err := GenerateKey(iss.KeyType)
	if err != nil {
		return err
	}
	csr, err := CreateCSR(key, o.Domains, Subject{})
	if err != nil {
		return err
	}
	keyPEM, err := EncodeKey(key)
	if err != nil {
		return err
	}
	automatic, err := d.Automatic(ctx, o.AccountID, o.ValidateType, o.Domains)
	if err != nil {
		return err
	}
	r := store.Order{AccountID: o.AccountID, IssuerID: o.IssuerID, ProductCode: o.ProductCode, Domains: o.Domains,
		ValidateType: o.ValidateType, Manual: !automatic, CsrPEM: csr, KeyEnc: d.box.Seal([]byte(keyPEM), secret.PurposeCertKey),
		Contact: o.Contact, Status: store.OrderPending, RenewOf: o.CertID, NextRun: d.opts.Clock()}
	if err := d.st.OrderCreate(ctx, &r); err != nil {
		return err
	}
	o.RenewalID = r.ID
	if err := d.st.OrderUpdate(ctx, &o); err != nil {
		// Someone else changed o: drop the renewal we just made.
		_ = d.st.OrderDelete(context.WithoutCancel(ctx), r.AccountID, r.ID)
		return err
	}
	d.log.Info("acme: renewal started", "order_id", r.ID, "renews_cert_id", o.CertID, "domains", o.Domains)
	return nil
}

// predecessor is the issued order of the certificate a renewal renews.
func (d *Driver) predecessor(ctx context.Context, r *store.Order) (store.Order, error) {
	list, err := d.st.OrderByCerts(ctx, r.AccountID, []int64{r.RenewOf})
	if err != nil {
		return store.Order{}, err
	}
	for _, o := range list {
		if o.RenewalID == r.ID {
			return o, nil
		}
	}
	return store.Order{}, store.ErrNotFound
}

// renewed hands an issued renewal to the trustee path (the resources
// serving the older certificate get a job deploying and verifying the new
// one) and retires the older order from the renewal scan.
func (d *Driver) renewed(ctx context.Context, r *store.Order) {
	ctx = context.WithoutCancel(ctx)
	if old, err := d.predecessor(ctx, r); err == nil {
		old.RenewAt, old.RenewAttempts = time.Time{}, 0
		if err := d.st.OrderUpdate(ctx, &old); err != nil {
			d.log.Warn("acme: retire renewed order", "order_id", old.ID, "error", err)
		}
	}
	rec, err := d.st.CertificateGet(ctx, r.AccountID, r.CertID)
	if err != nil {
		d.log.Warn("acme: renewal certificate", "cert_id", r.CertID, "error", err)
		return
	}
	j, workers, ok, err := rollout.PlanRenewal(ctx, d.st, rec, d.opts.AutoRenew, d.opts.Clock())
	if err != nil || !ok {
		if err != nil {
			d.log.Warn("acme: plan renewal", "cert_id", rec.ID, "error", err)
		}
		return
	}
	ids := make([]int64, len(workers))
	for i, w := range workers {
		ids[i] = w.ResourceID
	}
	resources, err := d.st.ResourceGetMany(ctx, rec.AccountID, ids)
	if err != nil {
		d.log.Warn("acme: plan renewal", "cert_id", rec.ID, "error", err)
		return
	}
	for _, res := range resources {
		if res.CurrentCertID == 0 {
			continue
		}
		old, err := d.st.CertificateGet(ctx, rec.AccountID, res.CurrentCertID)
		if err != nil {
			continue
		}
		if reason := rollout.TrustedSuccessor(rec, old, d.opts.RenewTrust); reason != "" {
			d.log.Warn("acme: renewal not deployed", "cert_id", rec.ID, "reason", reason)
			return
		}
	}
	if err := d.st.JobCreate(ctx, &j, store.WorkersOf(workers)); err != nil {
		d.log.Warn("acme: renewal job", "cert_id", rec.ID, "error", err)
		return
	}
	d.log.Info("acme: renewal job created", "cert_id", rec.ID, "job_id", j.ID, "resources", len(workers))
	if d.opts.OnJob != nil {
		d.opts.OnJob(j.ID)
	}
}

// renewalFailed schedules the next renewal of the certificate a failed
// renewal r was for, with backoff (at least the CA's rate-limit wait, so a
// rateLimited CA sees no storm), and tells the contacts with the days left.
func (d *Driver) renewalFailed(ctx context.Context, r *store.Order, msg string) {
	ctx = context.WithoutCancel(ctx)
	old, err := d.predecessor(ctx, r)
	if err != nil {
		return
	}
	old.RenewAttempts++
	delay := min(d.opts.RetryBase<<min(old.RenewAttempts-1, 20), d.opts.RetryMax)
	if r.NextRun.After(d.opts.Clock().Add(delay)) {
		delay = r.NextRun.Sub(d.opts.Clock())
	}
	old.RenewalID, old.RenewAt = 0, d.opts.Clock().Add(delay)
	if err := d.st.OrderUpdate(ctx, &old); err != nil {
		d.log.Warn("acme: reschedule renewal", "order_id", old.ID, "error", err)
		return
	}
	cert, err := d.st.CertificateGet(ctx, old.AccountID, old.CertID)
	if err != nil {
		return
	}
	days := int(cert.NotAfter.Sub(d.opts.Clock()).Hours() / 24)
	d.log.Warn("acme: renewal failed", "cert_id", cert.ID, "days_left", days, "next_attempt", old.RenewAt, "message", msg)
	if d.opts.Notifier != nil {
		reason := fmt.Sprintf("%s (attempt %d; next attempt %s)", msg, old.RenewAttempts, old.RenewAt.UTC().Format(time.RFC3339))
		if err := d.opts.Notifier.RenewalFailed(ctx, cert, reason, days); err != nil {
			d.log.Warn("acme: tell renewal failure", "cert_id", cert.ID, "error", err)
		}
	}
}

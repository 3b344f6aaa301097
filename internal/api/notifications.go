package api

import (
	"context"

	"github.com/certfleet/certfleet/internal/audit"
	"github.com/certfleet/certfleet/internal/store"
)

// listNotification (certfleet's own) pages the messages told to contacts:
// JobId and Status (pending, sent, failed) filter; newest first.
func (a *API) listNotification(ctx context.Context, c *call) (any, error) {
	page, size, err := c.params.page(50)
	if err != nil {
		return nil, err
	}
	jobID, err := c.params.optID("JobId")
	if err != nil {
		return nil, err
	}
	status := store.NotificationStatus(c.params.str("Status"))
	switch status {
	case "", store.NotificationPending, store.NotificationSent, store.NotificationFailed:
	default:
		return nil, errInvalid("Status", "%q is not one of pending, sent, failed", status)
	}
	list, total, err := a.store.NotificationList(ctx, store.NotificationListParams{AccountID: c.accountID, JobID: jobID, Status: status,
		Offset: (page - 1) * size, Limit: size})
	if err != nil {
		return nil, err
	}
	type item struct {
		Id        int64
		JobId     int64
		CertId    int64
		Event     string
		Channel   string
		Target    string
		Subject   string
		Status    string
		Attempts  int
		LastError string
		GmtCreate string
		GmtSent   string
	}
	items := make([]item, 0, len(list))
	for _, n := range list {
		items = append(items, item{Id: n.ID, JobId: n.JobID, CertId: n.CertID, Event: n.Event, Channel: n.Channel, Target: audit.RedactURLs(n.Target),
			Subject: n.Subject, Status: string(n.Status), Attempts: n.Attempts, LastError: audit.RedactURLs(n.LastError), GmtCreate: msString(n.Created),
			GmtSent: msString(n.Sent)})
	}
	return struct {
		NotificationList []item
		TotalCount       int64
		CurrentPage      int64
		ShowSize         int64
	}{items, total, int64(page), int64(size)}, nil
}

package storetest

import (
	"fmt"
	"testing"

	"github.com/certfleet/certfleet/internal/store"
)

// BenchmarkWorkerPages times one page of 50 workers of an n-worker job, as
// ListWorkerResource asks for it (the first, the second and the last page),
// through WorkerList (skips Offset rows) and WorkerPage (seeks when the IDs
// are consecutive). s must be a fresh, migrated store; the job is created
// once, before the timers.
func BenchmarkWorkerPages(b *testing.B, s store.Store, n int) {
	ctx := b.Context()
	acct, err := s.AccountEnsure(ctx, "acme")
	if err != nil {
		b.Fatalf("AccountEnsure: %v", err)
	}
	j := store.Job{AccountID: acct, Name: "big", JobType: "deploy", Config: `{}`}
	// Workers need no resource rows; the store checks none.
	chunks := func(emit func([]store.Worker) error) error {
		ws := make([]store.Worker, 0, 1000)
		for i := range n {
			ws = append(ws, store.Worker{ResourceID: int64(i + 1), CertID: 1, CloudName: "webhook", CloudProduct: "WEBHOOK"})
			if len(ws) == cap(ws) || i == n-1 {
				if err := emit(ws); err != nil {
					return err
				}
				ws = ws[:0]
			}
		}
		return nil
	}
	if err := s.JobCreate(ctx, &j, chunks); err != nil {
		b.Fatalf("JobCreate(%d workers): %v", n, err)
	}
	const size = 50
	last := (n - 1) / size
	for _, m := range []struct {
		name string
		list func(store.WorkerListParams) ([]store.Worker, int64, error)
	}{
		{"WorkerList", func(p store.WorkerListParams) ([]store.Worker, int64, error) { return s.WorkerList(ctx, p) }},
		{"WorkerPage", func(p store.WorkerListParams) ([]store.Worker, int64, error) { return s.WorkerPage(ctx, p) }},
	} {
		for _, page := range []int{0, 1, last} {
			b.Run(fmt.Sprintf("%s/workers=%d/page=%d", m.name, n, page+1), func(b *testing.B) {
				for b.Loop() {
					ws, total, err := m.list(store.WorkerListParams{AccountID: acct, JobID: j.ID, Offset: page * size, Limit: size})
					if err != nil || total != int64(n) || len(ws) == 0 {
						b.Fatalf("page %d: %d workers, total %d, %v", page+1, len(ws), total, err)
					}
				}
			})
		}
	}
}

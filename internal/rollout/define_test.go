package rollout

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/sqlite"
)

// TestDefineInChunks runs Define on a real store with chunks of 2
// resources: the workers of every chunk are written, in order and in their
// waves; Plan's errors keep Plan's order across chunks; and a resource
// deleted between Define and the write fails the write, leaving no job.
// It sets DefineChunk, so it does not run in parallel.
func TestDefineInChunks(t *testing.T) {
	defer func(n int) { DefineChunk = n }(DefineChunk)
	DefineChunk = 2

	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "certfleet.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	defer st.Close()
	acct, err := st.AccountEnsure(ctx, "acme")
	if err != nil {
		t.Fatalf("AccountEnsure: %v", err)
	}
	now := time.Now()
	cert := store.Certificate{AccountID: acct, Name: "wild", CertPEM: "x", KeyEnc: []byte("k"), CommonName: "*.example.test",
		SANs: []string{"*.example.test"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour)}
	if err := st.CertificateCreate(ctx, &cert); err != nil {
		t.Fatalf("CertificateCreate: %v", err)
	}
	contact := store.Contact{AccountID: acct, Name: "ops", Email: "ops@example.test"}
	if err := st.ContactCreate(ctx, &contact); err != nil {
		t.Fatalf("ContactCreate: %v", err)
	}
	var ids []int64
	for _, domain := range []string{"a.example.test", "b.example.test", "c.example.test", "d.example.test", "e.example.test", "other.test"} {
		r := store.Resource{AccountID: acct, CloudName: "webhook", CloudProduct: "WEBHOOK", Domain: domain, Config: `{}`}
		if err := st.ResourceCreate(ctx, &r); err != nil {
			t.Fatalf("ResourceCreate(%s): %v", domain, err)
		}
		ids = append(ids, r.ID)
	}
	good, uncovered := ids[:5], ids[5]
	job := func(resources []int64, contacts ...int64) *store.Job {
		return &store.Job{AccountID: acct, Name: "j", JobType: "user", CertIDs: []int64{cert.ID}, ResourceIDs: resources, ContactIDs: contacts}
	}

	t.Run("every chunk written, in order and in its wave", func(t *testing.T) {
		j := job(good, contact.ID)
		chunks, err := Define(ctx, st, j, StrategyChange{Set: true, Raw: `{"Waves":[2,"100%"]}`}, false)
		if err != nil {
			t.Fatalf("Define: %v", err)
		}
		if err := st.JobCreate(ctx, j, chunks); err != nil {
			t.Fatalf("JobCreate: %v", err)
		}
		ws, _, err := st.WorkerList(ctx, store.WorkerListParams{AccountID: acct, JobID: j.ID})
		if err != nil {
			t.Fatalf("WorkerList: %v", err)
		}
		var got []int64
		var waves []int
		for _, w := range ws {
			got, waves = append(got, w.ResourceID), append(waves, w.Wave)
		}
		if !slices.Equal(got, good) || !slices.Equal(waves, []int{0, 0, 1, 1, 1}) || j.LastWave != 1 {
			t.Errorf("workers for resources %v in waves %v (last %d), want %v in [0 0 1 1 1] (last 1)", got, waves, j.LastWave, good)
		}
	})

	for _, tc := range []struct {
		desc string
		job  *store.Job
		want error
	}{
		{desc: "a missing resource in a later chunk wins over an uncovered one in an earlier chunk",
			job: job([]int64{good[0], uncovered, good[1], good[2], 999999}), want: &NotFoundError{Kind: "CloudResource", ID: 999999}},
		{desc: "a missing contact wins over an uncovered resource",
			job: job([]int64{uncovered, good[0]}, 888888), want: &NotFoundError{Kind: "Contact", ID: 888888}},
		{desc: "the first uncovered resource, in a later chunk",
			job: job([]int64{good[0], good[1], good[2], uncovered}), want: &MatchError{ResourceID: uncovered, Domain: "other.test"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Define(ctx, st, tc.job, StrategyChange{}, false)
			var nf *NotFoundError
			var inv *InvalidError
			var me *MatchError
			switch want := tc.want.(type) {
			case *NotFoundError:
				if !errors.As(err, &nf) || *nf != *want {
					t.Errorf("Define = %v, want %v", err, want)
				}
			case *MatchError:
				if !errors.As(err, &inv) || inv.Field != "ResourceIds" || !errors.As(err, &me) || *me != *want {
					t.Errorf("Define = %v, want ResourceIds: %v", err, want)
				}
			}
		})
	}

	t.Run("a resource deleted before the write leaves no job", func(t *testing.T) {
		r := store.Resource{AccountID: acct, CloudName: "webhook", CloudProduct: "WEBHOOK", Domain: "gone.example.test", Config: `{}`}
		if err := st.ResourceCreate(ctx, &r); err != nil {
			t.Fatalf("ResourceCreate: %v", err)
		}
		j := job(append(slices.Clone(good), r.ID))
		chunks, err := Define(ctx, st, j, StrategyChange{}, false)
		if err != nil {
			t.Fatalf("Define: %v", err)
		}
		if err := st.ResourceDelete(ctx, acct, r.ID); err != nil {
			t.Fatalf("ResourceDelete: %v", err)
		}
		var nf *NotFoundError
		if err := st.JobCreate(ctx, j, chunks); !errors.As(err, &nf) || nf.ID != r.ID {
			t.Fatalf("JobCreate = %v, want CloudResource %d does not exist", err, r.ID)
		}
		jobs, total, err := st.JobList(ctx, store.JobListParams{AccountID: acct, Limit: 10})
		if err != nil || total != 1 || len(jobs) != 1 {
			t.Errorf("JobList = %d jobs (total %d, %v), want only the first test's", len(jobs), total, err)
		}
	})
}

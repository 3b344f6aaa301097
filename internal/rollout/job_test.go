package rollout

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func TestPlan(t *testing.T) {
	t.Parallel()
	now := time.Now()
	www := store.Certificate{ID: 1, SANs: []string{"www.example.test"}, NotAfter: now.Add(30 * 24 * time.Hour)}
	wild := store.Certificate{ID: 2, SANs: []string{"*.example.test"}, NotAfter: now.Add(60 * 24 * time.Hour)}
	res := func(id int64, domain string) store.Resource {
		return store.Resource{ID: id, AccountID: 7, Domain: domain, CloudName: "webhook", CloudProduct: "WEBHOOK"}
	}
	refs := Refs{
		Certificates: []store.Certificate{www, wild},
		Resources:    []store.Resource{res(10, "www.example.test"), res(11, "api.example.test"), res(12, "other.test"), res(13, "")},
		Contacts:     []store.Contact{{ID: 20}},
	}
	staged := `{"Waves":[1],"MaxFailPercent":0,"BakeSeconds":0,"RollbackOnHalt":false}`
	for _, tc := range []struct {
		desc       string
		job        store.Job // AccountID 7 is added
		sc         StrategyChange
		update     bool
		wantCerts  []int64 // certificate per worker
		wantWaves  []int   // nil: all 0
		wantJob    store.Job
		wantConfig string
		wantErr    error // compared by type and fields
		wantErrMsg string
	}{
		{desc: "one resource", job: store.Job{CertIDs: []int64{1}, ResourceIDs: []int64{10}, ContactIDs: []int64{20}},
			wantCerts: []int64{1}, wantConfig: `{"certIds":[1],"shareCertIds":[]}`},
		{desc: "resources in the order given", job: store.Job{CertIDs: []int64{1, 2}, ResourceIDs: []int64{11, 10}},
			wantCerts: []int64{2, 2}, wantConfig: `{"certIds":[1,2],"shareCertIds":[]}`},
		{desc: "staged", job: store.Job{CertIDs: []int64{2}, ResourceIDs: []int64{10, 11}},
			sc: StrategyChange{Set: true, Raw: `{"Waves":[1]}`}, wantCerts: []int64{2, 2}, wantWaves: []int{0, 1},
			wantJob:    store.Job{Strategy: `{"Waves":[1,"100%"],"MaxFailPercent":0,"BakeSeconds":0,"RollbackOnHalt":false}`, LastWave: 1},
			wantConfig: `{"certIds":[2],"shareCertIds":[],"strategy":{"Waves":[1,"100%"],"MaxFailPercent":0,"BakeSeconds":0,"RollbackOnHalt":false}}`},
		{desc: "update keeps the strategy", job: store.Job{CertIDs: []int64{2}, ResourceIDs: []int64{10, 11}, Strategy: staged, CurrentWave: 3},
			update: true, wantCerts: []int64{2, 2}, wantWaves: []int{0, 1}, wantJob: store.Job{Strategy: staged, LastWave: 1},
			wantConfig: `{"certIds":[2],"shareCertIds":[],"strategy":` + staged + `}`},
		{desc: "update removes the strategy with null", job: store.Job{CertIDs: []int64{2}, ResourceIDs: []int64{10}, Strategy: staged},
			sc: StrategyChange{Set: true, Raw: "null"}, update: true, wantCerts: []int64{2}, wantConfig: `{"certIds":[2],"shareCertIds":[]}`},
		{desc: "no domain, one certificate", job: store.Job{CertIDs: []int64{1}, ResourceIDs: []int64{13}},
			wantCerts: []int64{1}, wantConfig: `{"certIds":[1],"shareCertIds":[]}`},
		{desc: "unknown certificate", job: store.Job{CertIDs: []int64{1, 99}, ResourceIDs: []int64{98}, ContactIDs: []int64{97}},
			wantErr: &NotFoundError{Kind: "Certificate", ID: 99}},
		{desc: "unknown resource", job: store.Job{CertIDs: []int64{1}, ResourceIDs: []int64{10, 98}, ContactIDs: []int64{97}},
			wantErr: &NotFoundError{Kind: "CloudResource", ID: 98}},
		{desc: "unknown contact", job: store.Job{CertIDs: []int64{1}, ResourceIDs: []int64{12}, ContactIDs: []int64{20, 97}},
			wantErr: &NotFoundError{Kind: "Contact", ID: 97}},
		{desc: "resource not covered", job: store.Job{CertIDs: []int64{1}, ResourceIDs: []int64{12}},
			sc: StrategyChange{Set: true, Raw: `bad`}, wantErr: &InvalidError{Field: "ResourceIds"},
			wantErrMsg: "resource 12 (domain other.test) is not covered by any certificate of the job"},
		{desc: "no domain, several certificates", job: store.Job{CertIDs: []int64{1, 2}, ResourceIDs: []int64{13}},
			wantErr: &InvalidError{Field: "ResourceIds"}, wantErrMsg: "resource 13 has no Domain"},
		{desc: "bad strategy", job: store.Job{CertIDs: []int64{2}, ResourceIDs: []int64{10}},
			sc: StrategyChange{Set: true, Raw: `{"Waves":[0]}`}, wantErr: &InvalidError{Field: "Strategy"}, wantErrMsg: "wave 1: 0 is not a positive"},
		{desc: "null strategy at creation", job: store.Job{CertIDs: []int64{2}, ResourceIDs: []int64{10}},
			sc: StrategyChange{Set: true, Raw: "null"}, wantErr: &InvalidError{Field: "Strategy"}, wantErrMsg: "Waves is empty"},
		{desc: "strategy that shrinks for this job", job: store.Job{CertIDs: []int64{2}, ResourceIDs: []int64{10, 11}},
			sc: StrategyChange{Set: true, Raw: `{"Waves":["100%",3]}`}, wantErr: &InvalidError{Field: "Strategy"}, wantErrMsg: "is not more than"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			j := tc.job
			j.AccountID = 7
			ws, err := Plan(&j, refs, tc.sc, tc.update)
			if tc.wantErr != nil {
				var nf *NotFoundError
				var inv *InvalidError
				switch want := tc.wantErr.(type) {
				case *NotFoundError:
					if !errors.As(err, &nf) || *nf != *want {
						t.Fatalf("err = %v, want %v", err, want)
					}
				case *InvalidError:
					if !errors.As(err, &inv) || inv.Field != want.Field || !strings.Contains(inv.Err.Error(), tc.wantErrMsg) {
						t.Fatalf("err = %v, want %s: …%s…", err, want.Field, tc.wantErrMsg)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ws) != len(tc.wantCerts) {
				t.Fatalf("%d workers, want %d", len(ws), len(tc.wantCerts))
			}
			for i, w := range ws {
				wave := 0
				if tc.wantWaves != nil {
					wave = tc.wantWaves[i]
				}
				if w.CertID != tc.wantCerts[i] || w.ResourceID != j.ResourceIDs[i] || w.AccountID != 7 || w.Wave != wave {
					t.Errorf("worker %d = %+v, want certificate %d for resource %d in wave %d", i, w, tc.wantCerts[i], j.ResourceIDs[i], wave)
				}
			}
			if j.Strategy != tc.wantJob.Strategy || j.LastWave != tc.wantJob.LastWave || j.CurrentWave != 0 {
				t.Errorf("job strategy %q, waves %d/%d; want %q, last %d, current 0", j.Strategy, j.CurrentWave, j.LastWave,
					tc.wantJob.Strategy, tc.wantJob.LastWave)
			}
			if j.Config != tc.wantConfig {
				t.Errorf("Config %s, want %s", j.Config, tc.wantConfig)
			}
		})
	}
}

package rollout

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func TestWorkerNext(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		from store.WorkerStatus
		ev   WorkerEvent
		want store.WorkerStatus // "" when not allowed
	}{
		{desc: "submitted job", from: store.WorkerEditing, ev: WorkerSubmitted, want: store.WorkerPending},
		{desc: "back to editing", from: store.WorkerPending, ev: WorkerEdited, want: store.WorkerEditing},
		{desc: "scheduled back to editing", from: store.WorkerScheduling, ev: WorkerEdited, want: store.WorkerEditing},
		{desc: "running job cannot be edited", from: store.WorkerProcessing, ev: WorkerEdited},
		{desc: "job started", from: store.WorkerPending, ev: WorkerStarted, want: store.WorkerScheduling},
		{desc: "claimed", from: store.WorkerScheduling, ev: WorkerClaimed, want: store.WorkerProcessing},
		{desc: "claimed again after a retry", from: store.WorkerProcessing, ev: WorkerClaimed, want: store.WorkerProcessing},
		{desc: "rollback claimed", from: store.WorkerRollback, ev: WorkerClaimed, want: store.WorkerRollback},
		{desc: "editing worker cannot be claimed", from: store.WorkerEditing, ev: WorkerClaimed},
		{desc: "deployed", from: store.WorkerProcessing, ev: WorkerSucceeded, want: store.WorkerSuccess},
		{desc: "retry", from: store.WorkerProcessing, ev: WorkerRetried, want: store.WorkerProcessing},
		{desc: "retry before the claim was seen", from: store.WorkerScheduling, ev: WorkerRetried, want: store.WorkerProcessing},
		{desc: "failed", from: store.WorkerProcessing, ev: WorkerFailed, want: store.WorkerError},
		{desc: "rolled back", from: store.WorkerRollback, ev: WorkerSucceeded, want: store.WorkerRollbackSuccess},
		{desc: "rollback retried", from: store.WorkerRollback, ev: WorkerRetried, want: store.WorkerRollback},
		{desc: "rollback failed", from: store.WorkerRollback, ev: WorkerFailed, want: store.WorkerRollbackError},
		{desc: "rollback of a success", from: store.WorkerSuccess, ev: WorkerRollbackRequested, want: store.WorkerRollback},
		{desc: "rollback of an error", from: store.WorkerError, ev: WorkerRollbackRequested, want: store.WorkerRollback},
		{desc: "no rollback while running", from: store.WorkerProcessing, ev: WorkerRollbackRequested},
		{desc: "no second rollback", from: store.WorkerRollbackSuccess, ev: WorkerRollbackRequested},
		{desc: "no rollback of a failed rollback", from: store.WorkerRollbackError, ev: WorkerRollbackRequested},
		{desc: "halt ends a waiting worker", from: store.WorkerScheduling, ev: WorkerHalted, want: store.WorkerError},
		{desc: "halt leaves a success", from: store.WorkerSuccess, ev: WorkerHalted},
		{desc: "cancel ends a waiting worker", from: store.WorkerScheduling, ev: WorkerCancelled, want: store.WorkerError},
		{desc: "cancel ends a retrying worker", from: store.WorkerProcessing, ev: WorkerCancelled, want: store.WorkerError},
		{desc: "cancel leaves a success", from: store.WorkerSuccess, ev: WorkerCancelled},
		{desc: "cancel leaves a rollback", from: store.WorkerRollback, ev: WorkerCancelled},
		{desc: "retry of an error", from: store.WorkerError, ev: WorkerRetryRequested, want: store.WorkerScheduling},
		{desc: "no retry of a success", from: store.WorkerSuccess, ev: WorkerRetryRequested},
		{desc: "a success does not succeed again", from: store.WorkerSuccess, ev: WorkerSucceeded},
		{desc: "unknown status", from: "done", ev: WorkerSucceeded},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, ok := WorkerNext(tc.from, tc.ev)
			if ok != (tc.want != "") || got != tc.want {
				t.Fatalf("WorkerNext(%s, %s) = %q, %v; want %q", tc.from, tc.ev, got, ok, tc.want)
			}
		})
	}
}

func TestWorkerTransitionsCoverEveryStatus(t *testing.T) {
	t.Parallel()
	for _, s := range workerStatuses {
		if _, ok := workerTransitions[s]; !ok {
			t.Errorf("status %s has no row", s)
		}
	}
	for from, evs := range workerTransitions {
		if !slices.Contains(workerStatuses, from) {
			t.Errorf("row %s is not a status", from)
		}
		for ev, to := range evs {
			if !slices.Contains(workerStatuses, to) {
				t.Errorf("%s on %s goes to %s, not a status", from, ev, to)
			}
		}
	}
	if got := WorkerFrom(WorkerRollbackRequested); !slices.Equal(got, []string{string(store.WorkerSuccess), string(store.WorkerError)}) {
		t.Errorf("rollback from %v", got)
	}
}

func TestJobMove(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	later := now.Add(time.Hour)
	for _, tc := range []struct {
		desc         string
		schedule     time.Time
		to           store.JobStatus
		wantFrom     []store.JobStatus
		wantSchedule time.Time // zero: kept
		wantErr      bool
	}{
		{desc: "pending, due now", to: store.JobPending, wantFrom: []store.JobStatus{store.JobEditing}, wantSchedule: now},
		{desc: "pending, past schedule", schedule: now.Add(-time.Hour), to: store.JobPending, wantFrom: []store.JobStatus{store.JobEditing}, wantSchedule: now},
		{desc: "pending keeps a future schedule", schedule: later, to: store.JobPending, wantFrom: []store.JobStatus{store.JobEditing}},
		{desc: "scheduling is now", schedule: later, to: store.JobScheduling, wantFrom: []store.JobStatus{store.JobEditing, store.JobPending}, wantSchedule: now},
		{desc: "back to editing", to: store.JobEditing, wantFrom: []store.JobStatus{store.JobPending, store.JobScheduling}},
		{desc: "processing is the engine's", to: store.JobProcessing, wantErr: true},
		{desc: "success is the engine's", to: store.JobSuccess, wantErr: true},
		{desc: "unknown", to: "paused", wantErr: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p, err := JobMove(store.Job{ID: 3, AccountID: 7, ScheduleTime: tc.schedule}, tc.to, now)
			if tc.wantErr {
				var se *StatusError
				if !errors.As(err, &se) || se.Error() != `"`+string(tc.to)+`" is not one of pending, scheduling, editing` {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.AccountID != 7 || p.JobID != 3 || p.To != tc.to || !p.Now.Equal(now) || !slices.Equal(p.From, tc.wantFrom) ||
				!p.ScheduleTime.Equal(tc.wantSchedule) {
				t.Fatalf("got %+v; want from %v, schedule %v", p, tc.wantFrom, tc.wantSchedule)
			}
		})
	}
}

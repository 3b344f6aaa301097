package notify

import (
	"fmt"
	"strings"

	"github.com/certfleet/certfleet/internal/store"
)

// HaltReport describes a staged rollout halted after a wave: which wave,
// how many of the workers that ran failed, and the failures. It is a
// JobTally of a halt event given all of workers at once.
func HaltReport(j store.Job, workers []store.Worker, resources map[int64]store.Resource) Report {
	r, _ := JobReport(store.JobEvent{Job: j, Kind: store.JobEventKindHalt}, workers, resources)
	return r
}

// addHalted counts one worker of a halted job.
func (t *JobTally) addHalted(w store.Worker, item func(store.Worker) Item) {
	switch {
	case w.Status == store.WorkerError && strings.HasPrefix(w.LastError, "not started:"):
		t.skipped++
		return
	case w.Status == store.WorkerError:
		t.failed++
		t.items.add(item(w))
	case w.Status == store.WorkerRollback || w.Status == store.WorkerRollbackSuccess || w.Status == store.WorkerRollbackError:
		t.rolling++
	}
	t.ran++
}

func (t *JobTally) haltReport() Report {
	j := t.ev.Job
	name := fmt.Sprintf("%q (job %d, %s)", j.Name, j.ID, j.JobType)
	r := Report{Event: store.EventWaveHalted, ListTitle: "Failed resources", Items: t.items.items, More: t.items.more,
		Title: fmt.Sprintf("[certfleet] Rollout halted after wave %d of %d: %s", j.HaltedWave, j.LastWave+1, name)}
	r.Summary = []string{fmt.Sprintf("Job %s halted after wave %d: %d of the %d workers that ran failed.", name, j.HaltedWave, t.failed, t.ran),
		fmt.Sprintf("%d workers of later waves were not started.", t.skipped)}
	if t.rolling > 0 {
		r.Summary = append(r.Summary, fmt.Sprintf("%d successful workers are being rolled back.", t.rolling))
	}
	return r
}

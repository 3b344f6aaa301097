package notify

import (
	"fmt"
	"strings"

	"github.com/certfleet/certfleet/internal/store"
)

// HaltReport describes a staged rollout halted after a wave: which wave,
// how many of the workers that ran failed, and the failures.
func HaltReport(j store.Job, workers []store.Worker, resources map[int64]store.Resource) Report {
	var ran, failed, skipped, rolling int
	var failures []Item
	for _, w := range workers {
		switch {
		case w.Status == store.WorkerError && strings.HasPrefix(w.LastError, "not started:"):
			skipped++
			continue
		case w.Status == store.WorkerError:
			failed++
			res := resources[w.ResourceID]
			failures = append(failures, Item{Resource: resourceName(res, w.ResourceID), Product: w.CloudName + "/" + w.CloudProduct,
				Status: string(w.Status), Error: clip(w.LastError, maxErrorLen)})
		case w.Status == store.WorkerRollback || w.Status == store.WorkerRollbackSuccess || w.Status == store.WorkerRollbackError:
			rolling++
		}
		ran++
	}
	name := fmt.Sprintf("%q (job %d, %s)", j.Name, j.ID, j.JobType)
	r := Report{Event: store.EventWaveHalted, ListTitle: "Failed resources", Items: failures,
		Title: fmt.Sprintf("[certfleet] Rollout halted after wave %d of %d: %s", j.HaltedWave, j.LastWave+1, name)}
	r.Summary = []string{fmt.Sprintf("Job %s halted after wave %d: %d of the %d workers that ran failed.", name, j.HaltedWave, failed, ran),
		fmt.Sprintf("%d workers of later waves were not started.", skipped)}
	if rolling > 0 {
		r.Summary = append(r.Summary, fmt.Sprintf("%d successful workers are being rolled back.", rolling))
	}
	sortItems(r.Items)
	return r
}

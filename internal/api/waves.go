package api

import (
	"encoding/json"

	"github.com/certfleet/certfleet/internal/engine"
	"github.com/certfleet/certfleet/internal/store"
)

// jobStrategy reads the optional Strategy parameter of Create and
// UpdateDeploymentJob into j (an update without it keeps the job's
// strategy; "null" removes it) and numbers the workers' waves, in worker
// order. Without a strategy every worker is in wave 0, as Alibaba's API has it.
func jobStrategy(c *call, j *store.Job, workers []store.Worker, update bool) error {
	if c.params.has("Strategy") {
		raw := c.params.str("Strategy")
		if raw == "null" && update {
			j.Strategy = ""
		} else {
			s, err := engine.ParseStrategy(raw)
			if err != nil {
				return errInvalid("Strategy", "%v", err)
			}
			j.Strategy = s.String()
		}
	}
	j.LastWave, j.CurrentWave = 0, 0
	if j.Strategy == "" {
		for i := range workers {
			workers[i].Wave = 0
		}
		return nil
	}
	s, err := engine.ParseStrategy(j.Strategy)
	if err != nil {
		return errInvalid("Strategy", "%v", err)
	}
	waves, last, err := s.Assign(len(workers))
	if err != nil {
		return errInvalid("Strategy", "%v", err)
	}
	for i := range workers {
		workers[i].Wave = waves[i]
	}
	j.LastWave = last
	return nil
}

// shownConfig is the job's Config as DescribeDeploymentJob shows it: with a
// staged job's progress (currentWave, 1-based; waves; haltedWave).
func shownConfig(j store.Job) string {
	if j.Strategy == "" {
		return j.Config
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(j.Config), &m); err != nil || m == nil {
		return j.Config
	}
	m["strategy"] = json.RawMessage(j.Strategy)
	m["currentWave"] = j.CurrentWave + 1
	m["waves"] = j.LastWave + 1
	if j.HaltedWave > 0 {
		m["haltedWave"] = j.HaltedWave
	}
	b, err := json.Marshal(m)
	if err != nil {
		return j.Config
	}
	return string(b)
}

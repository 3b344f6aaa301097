package api

import (
	"encoding/json"

	"github.com/certfleet/certfleet/internal/store"
)

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

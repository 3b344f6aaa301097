package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Strategy is a job's staged rollout: its workers run wave by wave, and
// after each wave the job halts if too many of the workers that ran failed.
//
// JSON: {"Waves":[1,"10%","100%"],"MaxFailPercent":20,"BakeSeconds":30,"RollbackOnHalt":true}.
type Strategy struct {
	// Waves are cumulative sizes: an integer is that many workers in all by
	// the end of the wave, "N%" that share of the job's workers (rounded
	// up). The last wave reaches 100% (ParseStrategy adds it if missing).
	Waves []WaveSize
	// MaxFailPercent is the largest share (0–100) of failed workers, among
	// all that ran so far, that lets the next wave start. Defaults to 0:
	// any failure halts.
	MaxFailPercent float64
	// BakeSeconds is how long after a wave's last worker finished the next
	// wave waits (0–86400). Defaults to 0.
	BakeSeconds int
	// RollbackOnHalt rolls back the successful workers of a halted job.
	RollbackOnHalt bool
}

// WaveSize is one cumulative wave size: Count workers, or Percent of them.
type WaveSize struct {
	Count   int
	Percent float64 // > 0 when the size is a share
}

func (w WaveSize) String() string {
	if w.Percent > 0 {
		return strconv.FormatFloat(w.Percent, 'f', -1, 64) + "%"
	}
	return strconv.Itoa(w.Count)
}

// MarshalJSON writes a count as a number and a share as "N%".
func (w WaveSize) MarshalJSON() ([]byte, error) {
	if w.Percent > 0 {
		return json.Marshal(w.String())
	}
	return json.Marshal(w.Count)
}

// MaxWaves bounds the waves of a strategy.
const MaxWaves = 100

// ParseStrategy reads and validates a Strategy. Its errors name the
// problem, not the parameter.
func ParseStrategy(raw string) (Strategy, error) {
	var in struct {
		Waves          []json.RawMessage
		MaxFailPercent *json.Number
		BakeSeconds    *json.Number
		RollbackOnHalt *bool
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Strategy{}, fmt.Errorf("%s must be a %s, not a JSON %s", te.Field, map[string]string{
				"Waves": "array", "MaxFailPercent": "number", "BakeSeconds": "number", "RollbackOnHalt": "boolean"}[te.Field], te.Value)
		}
		if strings.Contains(err.Error(), "unknown field") {
			return Strategy{}, fmt.Errorf("%s (allowed: Waves, MaxFailPercent, BakeSeconds, RollbackOnHalt)", strings.TrimPrefix(err.Error(), "json: "))
		}
		return Strategy{}, fmt.Errorf("not a JSON object: %v", err)
	}
	if dec.More() {
		return Strategy{}, errors.New("not a single JSON object")
	}
	var s Strategy
	if len(in.Waves) == 0 {
		return s, errors.New(`Waves is empty; give cumulative sizes such as [1, "10%", "100%"]`)
	}
	if len(in.Waves) > MaxWaves {
		return s, fmt.Errorf("Waves has %d waves; at most %d", len(in.Waves), MaxWaves)
	}
	lastCount, lastPercent := 0, 0.0
	for i, rw := range in.Waves {
		var w WaveSize
		var str string
		var num json.Number
		switch {
		case json.Unmarshal(rw, &str) == nil:
			p, ok := strings.CutSuffix(strings.TrimSpace(str), "%")
			v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if !ok || err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return s, fmt.Errorf("wave %d: %q is not a percentage such as \"50%%\"", i+1, str)
			}
			if v <= 0 || v > 100 {
				return s, fmt.Errorf("wave %d: %q is outside (0%%, 100%%]", i+1, str)
			}
			if v <= lastPercent {
				return s, fmt.Errorf("wave %d: %q is not more than an earlier wave (%s%%); waves are cumulative and increasing", i+1, str,
					strconv.FormatFloat(lastPercent, 'f', -1, 64))
			}
			w.Percent, lastPercent = v, v
		case json.Unmarshal(rw, &num) == nil:
			n, err := strconv.Atoi(num.String())
			if err != nil || n < 1 {
				return s, fmt.Errorf("wave %d: %s is not a positive whole number of workers", i+1, num)
			}
			if n <= lastCount {
				return s, fmt.Errorf("wave %d: %d is not more than an earlier wave (%d); waves are cumulative and increasing", i+1, n, lastCount)
			}
			w.Count, lastCount = n, n
		default:
			return s, fmt.Errorf("wave %d: %s is neither a number of workers nor a percentage string", i+1, rw)
		}
		s.Waves = append(s.Waves, w)
	}
	if last := s.Waves[len(s.Waves)-1]; last.Percent != 100 {
		s.Waves = append(s.Waves, WaveSize{Percent: 100})
	}
	if in.MaxFailPercent != nil {
		v, err := in.MaxFailPercent.Float64()
		if err != nil || v < 0 || v > 100 {
			return s, fmt.Errorf("MaxFailPercent %s is outside 0–100", in.MaxFailPercent)
		}
		s.MaxFailPercent = v
	}
	if in.BakeSeconds != nil {
		v, err := strconv.Atoi(in.BakeSeconds.String())
		if err != nil || v < 0 || v > 86400 {
			return s, fmt.Errorf("BakeSeconds %s is not a whole number in 0–86400", in.BakeSeconds)
		}
		s.BakeSeconds = v
	}
	if in.RollbackOnHalt != nil {
		s.RollbackOnHalt = *in.RollbackOnHalt
	}
	return s, nil
}

// String is the normalised JSON of s (what jobs store and show).
func (s Strategy) String() string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Halts reports whether a wave after which failed of the finished workers
// (all waves so far) failed halts the job: their share is above
// MaxFailPercent.
func (s Strategy) Halts(failed, finished int64) bool {
	return float64(failed)*100 > s.MaxFailPercent*float64(finished)
}

// BakeUntil is when the next wave may start after a wave whose last worker
// finished at lastFinished.
func (s Strategy) BakeUntil(lastFinished time.Time) time.Time {
	return lastFinished.Add(time.Duration(s.BakeSeconds) * time.Second)
}

// Assign gives each of n workers (in worker ID order) its wave, 0-based,
// and returns the last wave. Waves that add no worker for this n are
// merged with the previous one. An error says which waves shrink for n (an
// integer after a larger percentage).
func (s Strategy) Assign(n int) (waves []int, last int, err error) {
	ends, err := s.Ends(n)
	if err != nil {
		return nil, 0, err
	}
	waves = make([]int, n)
	if n == 0 {
		return waves, 0, nil
	}
	at := WaveCursor(ends)
	for i := range waves {
		waves[i] = at(i)
	}
	return waves, len(ends) - 1, nil
}

// Ends is Assign without a slice of n: wave k holds the workers at
// positions ends[k-1] (0 for the first) up to ends[k], exclusive. A job of
// any size is numbered from it chunk by chunk (WaveCursor).
func (s Strategy) Ends(n int) (ends []int, err error) {
	if n == 0 {
		return nil, nil
	}
	done := 0
	for i, w := range s.Waves {
		size := w.Count
		if w.Percent > 0 {
			size = int(math.Ceil(w.Percent * float64(n) / 100))
		}
		size = min(size, n)
		if size < done {
			return nil, fmt.Errorf("wave %d (%s = %d of this job's %d workers) is smaller than an earlier wave (%d); waves are cumulative",
				i+1, w, size, n, done)
		}
		if size == done {
			continue
		}
		ends = append(ends, size)
		done = size
	}
	return ends, nil
}

// WaveCursor returns the wave of worker position i under ends (Ends), for
// positions asked in increasing order; a position past the last wave, or
// any position when ends is empty, is in wave 0, as Assign has always had it.
func WaveCursor(ends []int) func(i int) int {
	k := 0
	return func(i int) int {
		for k < len(ends) && i >= ends[k] {
			k++
		}
		if k == len(ends) {
			return 0
		}
		return k
	}
}

package rollout

import (
	"slices"
	"strings"
	"testing"
)

func TestParseStrategy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc    string
		raw     string
		want    string // normalised JSON
		wantErr string // a part of the error
	}{
		{desc: "counts and shares", raw: `{"Waves":[1,"10%","100%"],"MaxFailPercent":20,"BakeSeconds":30,"RollbackOnHalt":true}`,
			want: `{"Waves":[1,"10%","100%"],"MaxFailPercent":20,"BakeSeconds":30,"RollbackOnHalt":true}`},
		{desc: "100% added when missing", raw: `{"Waves":[2,"50%"]}`,
			want: `{"Waves":[2,"50%","100%"],"MaxFailPercent":0,"BakeSeconds":0,"RollbackOnHalt":false}`},
		{desc: "counts only", raw: `{"Waves":[1,5]}`,
			want: `{"Waves":[1,5,"100%"],"MaxFailPercent":0,"BakeSeconds":0,"RollbackOnHalt":false}`},
		{desc: "share with spaces and a fraction", raw: `{"Waves":[" 12.5 %"]}`,
			want: `{"Waves":["12.5%","100%"],"MaxFailPercent":0,"BakeSeconds":0,"RollbackOnHalt":false}`},
		{desc: "fractional MaxFailPercent", raw: `{"Waves":["100%"],"MaxFailPercent":2.5}`,
			want: `{"Waves":["100%"],"MaxFailPercent":2.5,"BakeSeconds":0,"RollbackOnHalt":false}`},
		{desc: "not JSON", raw: `waves`, wantErr: "not a JSON object"},
		{desc: "two objects", raw: `{"Waves":[1]} {}`, wantErr: "not a single JSON object"},
		{desc: "unknown field", raw: `{"Waves":[1],"Wave":2}`, wantErr: `unknown field "Wave" (allowed: Waves`},
		{desc: "Waves not an array", raw: `{"Waves":3}`, wantErr: "Waves must be a array, not a JSON number"},
		{desc: "RollbackOnHalt not a boolean", raw: `{"Waves":[1],"RollbackOnHalt":"yes"}`, wantErr: "RollbackOnHalt must be a boolean"},
		{desc: "no waves", raw: `{"Waves":[]}`, wantErr: "Waves is empty"},
		{desc: "missing waves", raw: `{}`, wantErr: "Waves is empty"},
		{desc: "too many waves", raw: `{"Waves":[` + strings.Repeat("1,", MaxWaves) + `1]}`, wantErr: "at most 100"},
		{desc: "zero workers", raw: `{"Waves":[0]}`, wantErr: "wave 1: 0 is not a positive whole number"},
		{desc: "fractional workers", raw: `{"Waves":[1.5]}`, wantErr: "wave 1: 1.5 is not a positive whole number"},
		{desc: "decreasing counts", raw: `{"Waves":[5,3]}`, wantErr: "wave 2: 3 is not more than an earlier wave (5)"},
		{desc: "repeated share", raw: `{"Waves":["50%","50%"]}`, wantErr: `wave 2: "50%" is not more than an earlier wave (50%)`},
		{desc: "share without %", raw: `{"Waves":["50"]}`, wantErr: `wave 1: "50" is not a percentage`},
		{desc: "share over 100%", raw: `{"Waves":["150%"]}`, wantErr: `wave 1: "150%" is outside (0%, 100%]`},
		{desc: "zero share", raw: `{"Waves":["0%"]}`, wantErr: `outside (0%, 100%]`},
		{desc: "NaN share", raw: `{"Waves":["NaN%"]}`, wantErr: `is not a percentage`},
		{desc: "neither number nor string", raw: `{"Waves":[true]}`, wantErr: "wave 1: true is neither"},
		{desc: "MaxFailPercent over 100", raw: `{"Waves":[1],"MaxFailPercent":101}`, wantErr: "MaxFailPercent 101 is outside 0–100"},
		{desc: "negative MaxFailPercent", raw: `{"Waves":[1],"MaxFailPercent":-1}`, wantErr: "MaxFailPercent -1 is outside"},
		{desc: "BakeSeconds over a day", raw: `{"Waves":[1],"BakeSeconds":86401}`, wantErr: "BakeSeconds 86401 is not a whole number in 0–86400"},
		{desc: "fractional BakeSeconds", raw: `{"Waves":[1],"BakeSeconds":1.5}`, wantErr: "BakeSeconds 1.5 is not a whole number"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			s, err := ParseStrategy(tc.raw)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.String(); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			// The normalised form reads back to itself.
			again, err := ParseStrategy(s.String())
			if err != nil || again.String() != tc.want {
				t.Fatalf("normalised form reads back as %s, %v", again, err)
			}
		})
	}
}

func TestStrategyAssign(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc     string
		raw      string
		n        int
		want     []int
		wantLast int
		wantErr  string
	}{
		{desc: "no workers", raw: `{"Waves":[1]}`, n: 0, want: []int{}},
		{desc: "canary then the rest", raw: `{"Waves":[1]}`, n: 4, want: []int{0, 1, 1, 1}, wantLast: 1},
		{desc: "shares round up", raw: `{"Waves":["10%","50%"]}`, n: 5, want: []int{0, 1, 1, 2, 2}, wantLast: 2},
		{desc: "waves adding no worker merge", raw: `{"Waves":[1,"10%","20%"]}`, n: 3, want: []int{0, 1, 1}, wantLast: 1},
		{desc: "count above the workers", raw: `{"Waves":[10]}`, n: 3, want: []int{0, 0, 0}},
		{desc: "a count after a larger share", raw: `{"Waves":["50%",3]}`, n: 10, wantErr: "wave 2 (3 = 3 of this job's 10 workers) is smaller than an earlier wave (5)"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			s, err := ParseStrategy(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			waves, last, err := s.Assign(tc.n)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(waves, tc.want) || last != tc.wantLast {
				t.Fatalf("waves %v, last %d; want %v, last %d", waves, last, tc.want, tc.wantLast)
			}
		})
	}
}

func TestStrategyHalts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc             string
		maxFail          float64
		failed, finished int64
		want             bool
	}{
		{desc: "no failure", maxFail: 0, failed: 0, finished: 10},
		{desc: "any failure halts by default", maxFail: 0, failed: 1, finished: 10, want: true},
		{desc: "at the limit goes on", maxFail: 20, failed: 2, finished: 10},
		{desc: "above the limit halts", maxFail: 20, failed: 3, finished: 10, want: true},
		{desc: "100% never halts", maxFail: 100, failed: 10, finished: 10},
		{desc: "nothing finished", maxFail: 0, failed: 0, finished: 0},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if got := (Strategy{MaxFailPercent: tc.maxFail}).Halts(tc.failed, tc.finished); got != tc.want {
				t.Fatalf("Halts(%d, %d) at %g%% = %v, want %v", tc.failed, tc.finished, tc.maxFail, got, tc.want)
			}
		})
	}
}

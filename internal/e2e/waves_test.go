package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

// waveReceiver is a webhook target that records when each delivery arrived
// and answers 404 (a permanent failure) for the domains told to fail.
type waveReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []waveDelivery
	fail map[string]bool
}

type waveDelivery struct {
	Action, Domain string
	At             time.Time
}

func newWaveReceiver(t *testing.T, failing ...string) *waveReceiver {
	t.Helper()
	r := &waveReceiver{fail: map[string]bool{}}
	for _, d := range failing {
		r.fail[d] = true
	}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var p struct{ Action, Domain string }
		json.Unmarshal(body, &p)
		r.mu.Lock()
		r.got = append(r.got, waveDelivery{p.Action, p.Domain, time.Now()})
		fail := r.fail[p.Domain] && p.Action == "deploy"
		r.mu.Unlock()
		if fail {
			http.Error(w, "no such site", http.StatusNotFound)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

// deliveries returns what reached domain with action, in arrival order.
func (r *waveReceiver) deliveries(action, domain string) []waveDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []waveDelivery
	for _, d := range r.got {
		if d.Action == action && d.Domain == domain {
			out = append(out, d)
		}
	}
	return out
}

// stagedRig is a job rig with n webhook resources wNN.<zone> (in ID order)
// on one receiver and a certificate covering them.
type stagedRig struct {
	*jobRig
	rcv       *waveReceiver
	cert      int64
	domains   []string
	resources []int64
}

func newStagedRig(t *testing.T, engine, zone string, n int, failing ...int) *stagedRig {
	t.Helper()
	s := &stagedRig{jobRig: newJobRig(t, engine, "--retry-attempts", "1")}
	for i := range n {
		s.domains = append(s.domains, fmt.Sprintf("w%02d.%s", i, zone))
	}
	var bad []string
	for _, i := range failing {
		bad = append(bad, s.domains[i])
	}
	s.rcv = newWaveReceiver(t, bad...)
	s.cert, _ = s.upload(zone, certstest.Options{DNSNames: []string{"*." + zone}})
	for _, d := range s.domains {
		s.resources = append(s.resources, s.webhook(s.rcv.URL, d))
	}
	return s
}

// create creates an editing job over every resource with strategy (none if "").
func (s *stagedRig) create(strategy string, contacts ...int64) (int64, error) {
	if len(contacts) == 0 {
		contacts = []int64{s.contact}
	}
	q := map[string]string{"Name": "staged", "JobType": "user", "CertIds": joinIDs(s.cert), "ResourceIds": joinIDs(s.resources...),
		"ContactIds": joinIDs(contacts...)}
	if strategy != "" {
		q["Strategy"] = strategy
	}
	body, err := s.srv.callOwn("CreateDeploymentJob", q)
	if err != nil {
		return 0, err
	}
	return idOf(s.t, body, "JobId"), nil
}

func (s *stagedRig) mustCreate(strategy string, contacts ...int64) int64 {
	s.t.Helper()
	id, err := s.create(strategy, contacts...)
	if err != nil {
		s.t.Fatalf("create staged job: %v", err)
	}
	return id
}

// config decodes DescribeDeploymentJob's Config.
func (s *stagedRig) config(jobID int64) map[string]any {
	s.t.Helper()
	raw := s.describe(jobID).Config
	var m map[string]any
	if raw == nil || json.Unmarshal([]byte(*raw), &m) != nil {
		s.t.Fatalf("job %d Config %v is not a JSON object", jobID, raw)
	}
	return m
}

// TestWavesHaltAfterFirstWave: the first wave's only resource fails, so the
// job halts after it: the other nine receivers get nothing, their workers
// say they were not started, and a wave_halted notification is queued once.
func TestWavesHaltAfterFirstWave(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		s := newStagedRig(t, engine, "halt.test", 10, 0)
		chat := newChatReceiver(t)
		contact := s.contactWith("", chat.URL+"/hook")
		job := s.mustCreate(`{"Waves":[1,"50%","100%"],"MaxFailPercent":0,"BakeSeconds":1}`, contact)
		cfg := s.config(job)
		if cfg["waves"] != float64(3) || cfg["currentWave"] != float64(1) || cfg["strategy"] == nil {
			t.Fatalf("Config before the run = %v; want the strategy, 3 waves, current wave 1", cfg)
		}
		s.run(job, "error")

		if got := s.rcv.deliveries("deploy", s.domains[0]); len(got) != 1 {
			t.Fatalf("first wave's receiver got %d deliveries, want 1", len(got))
		}
		for _, d := range s.domains[1:] {
			if got := s.rcv.deliveries("deploy", d); len(got) != 0 {
				t.Errorf("%s got %d deliveries after the halt, want none", d, len(got))
			}
		}
		for _, w := range s.workers(job) {
			switch {
			case w.ResourceID == s.resources[0]:
				if w.Status != "error" || !strings.Contains(w.ErrorMessage, "404") {
					t.Errorf("first worker = %s %q, want error with the 404", w.Status, w.ErrorMessage)
				}
			case w.Status == "success" || !strings.HasPrefix(w.ErrorMessage, "not started: wave 1 halted"):
				t.Errorf("worker of %s = %s %q, want error, not started: wave 1 halted…", w.ResourceDomain, w.Status, w.ErrorMessage)
			}
		}
		if cfg := s.config(job); cfg["haltedWave"] != float64(1) || cfg["currentWave"] != float64(1) {
			t.Errorf("Config after the halt = %v; want haltedWave 1, currentWave 1", cfg)
		}

		var halts []notificationInfo
		waitFor(t, 30*time.Second, "the wave_halted and job_error notifications", func() (bool, error) {
			halts = halts[:0]
			var ends int
			for _, n := range s.notifications(job) {
				switch n.Event {
				case "wave_halted":
					halts = append(halts, n)
				case "job_error":
					ends++
				}
			}
			return len(halts) >= 1 && ends >= 1, nil
		})
		notifyPassed(t, s.srv, contact) // a duplicate would have been emitted by now
		halts = halts[:0]
		for _, n := range s.notifications(job) {
			if n.Event == "wave_halted" {
				halts = append(halts, n)
			}
		}
		if len(halts) != 1 || halts[0].Channel != "webhook" {
			t.Fatalf("wave_halted notifications = %+v, want exactly one webhook message", halts)
		}
		var told bool
		for _, m := range chat.wait(t, 2) {
			told = told || strings.Contains(m, "halted after wave 1 of 3")
		}
		if !told {
			t.Errorf("chat messages %q do not tell the halt", chat.texts())
		}
	})
}

// TestWavesAdvanceInOrder: a staged rollout where everything succeeds runs
// its waves one after the other, each after the previous one baked.
func TestWavesAdvanceInOrder(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		s := newStagedRig(t, engine, "order.test", 6)
		job := s.mustCreate(`{"Waves":[1,"50%","100%"],"BakeSeconds":1}`)
		s.run(job, "success")
		waveOf := []int{0, 1, 1, 2, 2, 2} // 1, then 50% of 6 = 3, then 6
		first := make([]time.Time, 3)
		last := make([]time.Time, 3)
		for i, d := range s.domains {
			got := s.rcv.deliveries("deploy", d)
			if len(got) != 1 {
				t.Fatalf("%s got %d deliveries, want 1", d, len(got))
			}
			w := waveOf[i]
			if first[w].IsZero() || got[0].At.Before(first[w]) {
				first[w] = got[0].At
			}
			if got[0].At.After(last[w]) {
				last[w] = got[0].At
			}
		}
		for w := 1; w < 3; w++ {
			if !last[w-1].Before(first[w]) {
				t.Errorf("wave %d started (%v) before wave %d's last delivery (%v)", w+1, first[w], w, last[w-1])
			}
			if gap := first[w].Sub(last[w-1]); gap < 990*time.Millisecond {
				t.Errorf("wave %d started %v after wave %d, want at least its 1 s bake", w+1, gap, w)
			}
		}
		if cfg := s.config(job); cfg["currentWave"] != float64(3) || cfg["haltedWave"] != nil {
			t.Errorf("Config after the run = %v; want currentWave 3, no haltedWave", cfg)
		}
	})
}

// TestWavesRollbackOnHalt: the second wave fails on one of two resources,
// more than MaxFailPercent of all that ran, so the job halts before the
// third wave and rolls back the three successful deployments.
func TestWavesRollbackOnHalt(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		s := newStagedRig(t, engine, "rb.test", 6, 3)
		job := s.mustCreate(`{"Waves":[2,4,"100%"],"MaxFailPercent":20,"RollbackOnHalt":true}`)
		s.run(job, "error")
		waitFor(t, 30*time.Second, "the rollbacks to end", func() (bool, error) {
			for _, w := range s.workers(job) {
				if w.Status == "rollback" || w.Status == "success" {
					return false, nil
				}
			}
			return true, nil
		})
		for i, d := range s.domains {
			w := s.worker(job, s.resources[i])
			deploys, rollbacks := len(s.rcv.deliveries("deploy", d)), len(s.rcv.deliveries("rollback", d))
			switch {
			case i < 3:
				if w.Status != "rollback_success" || deploys != 1 || rollbacks != 1 {
					t.Errorf("%s: %s (%q), %d deploys, %d rollbacks; want rolled back", d, w.Status, w.ErrorMessage, deploys, rollbacks)
				}
			case i == 3:
				if w.Status != "error" || rollbacks != 0 {
					t.Errorf("%s: %s, %d rollbacks; want the failure, not rolled back", d, w.Status, rollbacks)
				}
			default:
				if w.Status != "error" || deploys != 0 || !strings.HasPrefix(w.ErrorMessage, "not started: wave 2 halted") {
					t.Errorf("%s: %s %q, %d deploys; want not started", d, w.Status, w.ErrorMessage, deploys)
				}
			}
		}
		if rb := s.describe(job).Rollback; rb == nil || *rb != 1 {
			t.Errorf("job Rollback = %v, want 1", rb)
		}
	})
}

// TestWavesStrategyValidation: a bad Strategy is refused, naming the parameter and the problem.
func TestWavesStrategyValidation(t *testing.T) {
	t.Parallel()
	s := newStagedRig(t, "sqlite", "val.test", 3)
	cases := []struct {
		desc, strategy, want string
	}{
		{desc: "not JSON", strategy: `waves`, want: "not a JSON object"},
		{desc: "no waves", strategy: `{"MaxFailPercent":10}`, want: "Waves is empty"},
		{desc: "empty waves", strategy: `{"Waves":[]}`, want: "Waves is empty"},
		{desc: "decreasing counts", strategy: `{"Waves":[5,2]}`, want: "not more than an earlier wave"},
		{desc: "repeated percentage", strategy: `{"Waves":["50%","50%"]}`, want: "not more than an earlier wave"},
		{desc: "above 100%", strategy: `{"Waves":["150%"]}`, want: "outside"},
		{desc: "zero workers", strategy: `{"Waves":[0,"100%"]}`, want: "not a positive whole number"},
		{desc: "fraction of a worker", strategy: `{"Waves":[1.5]}`, want: "not a positive whole number"},
		{desc: "bad percentage", strategy: `{"Waves":["half"]}`, want: "not a percentage"},
		{desc: "bad type", strategy: `{"Waves":[true]}`, want: "neither a number of workers nor a percentage"},
		{desc: "waves not an array", strategy: `{"Waves":"10%"}`, want: "Waves must be a array"},
		{desc: "unknown key", strategy: `{"Waves":[1],"Bake":3}`, want: "unknown field"},
		{desc: "MaxFailPercent above 100", strategy: `{"Waves":[1],"MaxFailPercent":101}`, want: "outside 0–100"},
		{desc: "MaxFailPercent negative", strategy: `{"Waves":[1],"MaxFailPercent":-1}`, want: "outside 0–100"},
		{desc: "BakeSeconds negative", strategy: `{"Waves":[1],"BakeSeconds":-1}`, want: "BakeSeconds"},
		{desc: "BakeSeconds above a day", strategy: `{"Waves":[1],"BakeSeconds":86401}`, want: "0–86400"},
		{desc: "count after a larger share", strategy: `{"Waves":["50%",1]}`, want: "smaller than an earlier wave"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := s.create(tc.strategy)
			wantAPIError(t, err, "InvalidParameter", "Strategy", tc.want)
		})
	}
}

// TestWavesUpdateStrategy: UpdateDeploymentJob sets, changes and removes a
// job's Strategy while it is editing; a bad one is refused and changes nothing.
func TestWavesUpdateStrategy(t *testing.T) {
	t.Parallel()
	s := newStagedRig(t, "sqlite", "upd.test", 4)
	job := s.mustCreate("")
	if cfg := s.config(job); cfg["strategy"] != nil {
		t.Fatalf("Config of a plain job = %v, want no strategy", cfg)
	}
	update := func(strategy string) error {
		_, err := s.srv.callOwn("UpdateDeploymentJob", map[string]string{"JobId": strconv.FormatInt(job, 10), "Strategy": strategy})
		return err
	}
	if err := update(`{"Waves":[1,"100%"],"BakeSeconds":0}`); err != nil {
		t.Fatalf("set strategy: %v", err)
	}
	if cfg := s.config(job); cfg["waves"] != float64(2) {
		t.Fatalf("Config after setting the strategy = %v, want 2 waves", cfg)
	}
	if err := update(`{"Waves":[1,2,3]}`); err != nil {
		t.Fatalf("change strategy: %v", err)
	}
	cfg := s.config(job)
	st, _ := json.Marshal(cfg["strategy"])
	if cfg["waves"] != float64(4) || !strings.Contains(string(st), `[1,2,3,"100%"]`) {
		t.Fatalf("Config after changing the strategy = %v, want 4 waves (an implicit final 100%%)", cfg)
	}
	wantAPIError(t, update(`{"Waves":[3,2]}`), "InvalidParameter", "Strategy")
	if cfg := s.config(job); cfg["waves"] != float64(4) {
		t.Fatalf("Config after a refused update = %v, want it unchanged", cfg)
	}
	s.run(job, "success")
	for i, d := range s.domains {
		if len(s.rcv.deliveries("deploy", d)) != 1 {
			t.Errorf("resource %d (%s) not deployed once", i, d)
		}
	}
	job2 := s.mustCreate(`{"Waves":[1]}`)
	if err := update2(s, job2, "null"); err != nil {
		t.Fatalf("remove strategy: %v", err)
	}
	if cfg := s.config(job2); cfg["strategy"] != nil {
		t.Fatalf("Config after removing the strategy = %v", cfg)
	}
}

func update2(s *stagedRig, job int64, strategy string) error {
	_, err := s.srv.callOwn("UpdateDeploymentJob", map[string]string{"JobId": strconv.FormatInt(job, 10), "Strategy": strategy})
	return err
}

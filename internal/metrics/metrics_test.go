package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/metrics"
	"github.com/certfleet/certfleet/internal/store/sqlite"
)

func scrape(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(metrics.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestMetrics(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	metrics.RegisterStore(st)
	metrics.KnownActions("ListCloudResources", "DescribeDeploymentJob")
	metrics.APIRequest("ListCloudResources", "OK")
	metrics.APIRequest("ListCloudResources", "OK")
	metrics.APIRequest("DescribeDeploymentJob", "NotFound")
	for i := range 300 { // client-chosen actions must not grow the label set without bound
		metrics.APIRequest(fmt.Sprintf("Bogus%d", i), "InvalidAction")
	}
	metrics.DeployTimer("WEBHOOK")()
	metrics.LeaderChanged(true, 3)
	out := scrape(t)
	for _, want := range []string{
		`certfleet_api_requests_total{action="ListCloudResources",code="OK"} 2`,
		`certfleet_api_requests_total{action="DescribeDeploymentJob",code="NotFound"} 1`,
		`certfleet_api_requests_total{action="unknown",code="InvalidAction"} 300`,
		`certfleet_deploy_attempt_seconds_count{product="WEBHOOK"} 1`,
		`certfleet_leader 1`,
		`certfleet_leader_changes_total 1`,
		`certfleet_notifications_pending 0`,
		`certfleet_worker_leases_lapsed 0`,
		`certfleet_metrics_database_error 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if n := strings.Count(out, `code="InvalidAction"`); n != 1 {
		t.Errorf("%d series for bogus actions", n)
	}
}

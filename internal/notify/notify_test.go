package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/notify/notifytest"
	"github.com/certfleet/certfleet/internal/store"
)

func sampleMessage() Message {
	r := Report{Title: "[certfleet] Deployment failed on 1 of 2 resources: \"www\" (job 7, user)", Summary: []string{"Job ended error."},
		ListTitle: "Failed resources", Items: []Item{{Resource: "www.example.test (#3)", Product: "webhook/WEBHOOK", Status: "error",
			Error: "webhook: answered 500 <boom>"}}}
	return r.Render()
}

func TestPayloadFormats(t *testing.T) {
	t.Parallel()
	m := sampleMessage()
	for _, tc := range []struct {
		desc   string
		url    string
		format string
		check  func(t *testing.T, v map[string]any)
	}{
		{"dingtalk markdown", "https://oapi.dingtalk.com/robot/send?access_token=x", FormatDingTalk, func(t *testing.T, v map[string]any) {
			md, _ := v["markdown"].(map[string]any)
			if v["msgtype"] != "markdown" || md["title"] != m.Subject || !strings.Contains(md["text"].(string), "www.example.test") {
				t.Fatalf("dingtalk payload %v", v)
			}
		}},
		{"feishu text", "https://open.feishu.cn/open-apis/bot/v2/hook/abc", FormatFeishu, func(t *testing.T, v map[string]any) {
			c, _ := v["content"].(map[string]any)
			if v["msg_type"] != "text" || !strings.Contains(c["text"].(string), "webhook: answered 500 <boom>") {
				t.Fatalf("feishu payload %v", v)
			}
		}},
		{"lark text", "https://open.larksuite.com/open-apis/bot/v2/hook/abc", FormatFeishu, func(t *testing.T, v map[string]any) {
			if v["msg_type"] != "text" {
				t.Fatalf("lark payload %v", v)
			}
		}},
		{"wecom markdown", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", FormatWeCom, func(t *testing.T, v map[string]any) {
			md, _ := v["markdown"].(map[string]any)
			if v["msgtype"] != "markdown" || !strings.Contains(md["content"].(string), "Failed resources") {
				t.Fatalf("wecom payload %v", v)
			}
		}},
		{"slack for any other host", "https://hooks.slack.com/services/T/B/X", FormatSlack, func(t *testing.T, v map[string]any) {
			if s, _ := v["text"].(string); !strings.Contains(s, "Deployment failed") || len(v) != 1 {
				t.Fatalf("slack payload %v", v)
			}
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if f := FormatFor(tc.url, nil); f != tc.format {
				t.Fatalf("FormatFor(%s) = %s, want %s", tc.url, f, tc.format)
			}
			b, err := Payload(tc.format, m)
			if err != nil {
				t.Fatal(err)
			}
			var v map[string]any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			tc.check(t, v)
		})
	}
}

func TestFormatForConfiguredHost(t *testing.T) {
	t.Parallel()
	formats := map[string]string{"127.0.0.1:9999": FormatDingTalk, "chat.internal": FormatWeCom}
	for _, tc := range []struct{ desc, url, want string }{
		{"host and port", "http://127.0.0.1:9999/robot", FormatDingTalk},
		{"other port", "http://127.0.0.1:9998/robot", FormatSlack},
		{"host only", "https://chat.internal/hook", FormatWeCom},
		{"default still applies", "https://oapi.dingtalk.com/robot/send", FormatDingTalk},
		{"bad URL", "://", FormatSlack},
	} {
		if got := FormatFor(tc.url, formats); got != tc.want {
			t.Errorf("%s: FormatFor(%s) = %s, want %s", tc.desc, tc.url, got, tc.want)
		}
	}
}

func TestRenderListsAtMostMaxListed(t *testing.T) {
	t.Parallel()
	var items []Item
	for i := range 45 {
		items = append(items, Item{Resource: fmt.Sprintf("r%02d.example.test", i), Product: "local/FILE", Status: "error", Error: "disk full"})
	}
	m := Report{Title: "t", ListTitle: "Failed resources", Items: items}.Render()
	for _, part := range []struct{ desc, body string }{{"text", m.Text}, {"markdown", m.Markdown}, {"html", m.HTML}} {
		if !strings.Contains(part.body, "r19.example.test") || strings.Contains(part.body, "r20.example.test") {
			t.Errorf("%s lists the wrong resources:\n%s", part.desc, part.body)
		}
		if !strings.Contains(part.body, "and 25 more") {
			t.Errorf("%s does not say how many more:\n%s", part.desc, part.body)
		}
	}
	if strings.Contains(Report{Title: "<b>", Items: []Item{{Error: "<script>"}}, ListTitle: "x"}.Render().HTML, "<script>") {
		t.Error("HTML is not escaped")
	}
}

func TestJobReport(t *testing.T) {
	t.Parallel()
	res := map[int64]store.Resource{1: {ID: 1, Name: "a", Domain: "a.test"}, 2: {ID: 2, Name: "b", Domain: "b.test"}}
	job := store.Job{ID: 9, Name: "j", JobType: "user", Status: store.JobError}
	ws := []store.Worker{{ResourceID: 1, Status: store.WorkerSuccess, CloudName: "local", CloudProduct: "FILE"},
		{ResourceID: 2, Status: store.WorkerError, LastError: "permission denied", CloudName: "local", CloudProduct: "FILE"}}
	r, nothing := JobReport(store.JobEvent{Job: job, Kind: store.JobEventKindEnd}, ws, res)
	if nothing || r.Event != store.EventJobError || len(r.Items) != 1 || r.Items[0].Error != "permission denied" ||
		!strings.Contains(r.Title, "failed on 1 of 2") {
		t.Fatalf("error report: %+v nothing=%v", r, nothing)
	}
	job.Status = store.JobSuccess
	ws = []store.Worker{{ResourceID: 1, Status: store.WorkerSuccess, Unchanged: true}, {ResourceID: 2, Status: store.WorkerSuccess, Unchanged: true}}
	if _, nothing := JobReport(store.JobEvent{Job: job, Kind: store.JobEventKindEnd}, ws, res); !nothing {
		t.Fatal("a job where every certificate was already in place should report nothing")
	}
	since := time.Now()
	ws = []store.Worker{{ResourceID: 1, Status: store.WorkerRollbackSuccess, Modified: since.Add(time.Second)},
		{ResourceID: 2, Status: store.WorkerRollbackSuccess, Modified: since.Add(-time.Second)}}
	r, _ = JobReport(store.JobEvent{Job: job, Kind: store.JobEventKindRollback, Since: since}, ws, res)
	if r.Event != store.EventRollbackEnd || len(r.Items) != 1 || !strings.Contains(r.Items[0].Resource, "a.test") {
		t.Fatalf("rollback report lists %+v", r.Items)
	}
}

func TestSendMail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		srv  notifytest.Options
		cfg  SMTPConfig
	}{
		{"no TLS, no auth", notifytest.Options{}, SMTPConfig{TLS: TLSNone}},
		{"STARTTLS with PLAIN auth", notifytest.Options{STARTTLS: true, User: "certfleet", Password: "s3cret"},
			SMTPConfig{TLS: TLSStartTLS, User: "certfleet", Password: "s3cret", InsecureSkipVerify: true}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			srv := notifytest.Start(t, tc.srv)
			tc.cfg.Addr, tc.cfg.From = srv.Addr, "certfleet@example.test"
			m := sampleMessage()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := sendMail(ctx, nil, tc.cfg, "ops@example.test", m); err != nil {
				t.Fatal(err)
			}
			got := srv.Wait(t, 1, 5*time.Second)[0]
			if got.Subject != m.Subject || len(got.To) != 1 || got.To[0] != "ops@example.test" || got.From != "certfleet@example.test" {
				t.Fatalf("received %+v", got)
			}
			if got.ContentType != "multipart/alternative" || !strings.Contains(got.Text, "webhook: answered 500 <boom>") ||
				!strings.Contains(got.HTML, "webhook: answered 500 &lt;boom&gt;") {
				t.Fatalf("parts: %s\ntext:\n%s\nhtml:\n%s", got.ContentType, got.Text, got.HTML)
			}
			if got.TLS != tc.srv.STARTTLS || got.AuthUser != tc.srv.User {
				t.Fatalf("TLS %v auth %q", got.TLS, got.AuthUser)
			}
		})
	}
	t.Run("wrong password fails without showing it", func(t *testing.T) {
		t.Parallel()
		srv := notifytest.Start(t, notifytest.Options{STARTTLS: true, User: "u", Password: "p"})
		err := sendMail(context.Background(), nil, SMTPConfig{Addr: srv.Addr, User: "u", Password: "wrong", InsecureSkipVerify: true}, "a@example.test", sampleMessage())
		if err == nil || !strings.Contains(err.Error(), "authenticate as u") || strings.Contains(err.Error(), "wrong") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("STARTTLS required but not offered", func(t *testing.T) {
		t.Parallel()
		srv := notifytest.Start(t, notifytest.Options{})
		err := sendMail(context.Background(), nil, SMTPConfig{Addr: srv.Addr}, "a@example.test", sampleMessage())
		if err == nil || !isPermanent(err) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestJobTallyPages: a job told a page at a time gives the message the
// whole job at once gives, listing the first MaxListed failures by name
// (equal names in worker order) and counting the rest.
func TestJobTallyPages(t *testing.T) {
	t.Parallel()
	res := map[int64]store.Resource{}
	var ws []store.Worker
	for i := range 95 {
		id := int64(i + 1)
		// Names repeat and arrive out of order; every third worker fails.
		res[id] = store.Resource{ID: id, Name: fmt.Sprintf("r%02d", (i*37)%30), Domain: fmt.Sprintf("r%d.example.test", id)}
		w := store.Worker{ID: id, ResourceID: id, Status: store.WorkerSuccess, CloudName: "webhook", CloudProduct: "WEBHOOK"}
		if i%3 == 0 {
			w.Status, w.LastError = store.WorkerError, fmt.Sprintf("refused %d", id)
		}
		ws = append(ws, w)
	}
	job := store.Job{ID: 9, Name: "big", JobType: "user", Status: store.JobError}
	ev := store.JobEvent{Job: job, Kind: store.JobEventKindEnd}

	var failures []Item
	for _, w := range ws {
		if w.Status == store.WorkerError {
			r := res[w.ResourceID]
			failures = append(failures, Item{Resource: resourceName(r, r.ID), Product: "webhook/WEBHOOK", Status: "error", Error: w.LastError})
		}
	}
	sort.SliceStable(failures, func(a, b int) bool { return failures[a].Resource < failures[b].Resource })

	for _, size := range []int{1, 7, 100} {
		tally := NewJobTally(ev)
		for page := range slices.Chunk(ws, size) {
			listedRes := map[int64]store.Resource{}
			for _, w := range page {
				if tally.Listed(w) {
					listedRes[w.ResourceID] = res[w.ResourceID]
				}
			}
			tally.Add(page, listedRes)
		}
		r, _ := tally.Report()
		if !slices.Equal(r.Items, failures[:MaxListed]) || r.More != len(failures)-MaxListed {
			t.Errorf("pages of %d: items %v and %d more, want %v and %d more", size, r.Items, r.More, failures[:MaxListed], len(failures)-MaxListed)
		}
		whole, _ := JobReport(ev, ws, res)
		if got, want := r.Render(), whole.Render(); got != want {
			t.Errorf("pages of %d render\n%s\nthe whole job renders\n%s", size, got.Text, want.Text)
		}
		if !strings.Contains(r.Render().Text, fmt.Sprintf("and %d more", len(failures)-MaxListed)) || !strings.Contains(r.Title, "failed on 32 of 95") {
			t.Errorf("pages of %d: %s\n%s", size, r.Title, r.Render().Text)
		}
	}
}

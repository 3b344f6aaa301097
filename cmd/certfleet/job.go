package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/spf13/cobra"

	"github.com/certfleet/certfleet/internal/store"
)

func newJobCmd() *cobra.Command {
	conn := &connFlags{}
	cmd := nounCmd("job", "Create, start, watch, cancel, retry and roll back deployment jobs", conn)
	cmd.AddCommand(newJobCreateCmd(conn), newJobStartCmd(conn), newJobListCmd(conn), newJobShowCmd(conn),
		newJobWatchCmd(conn), newJobPreviewCmd(conn), newJobCancelCmd(conn), newJobRetryCmd(conn), newJobRollbackCmd(conn),
		newJobDeleteCmd(conn))
	return cmd
}

// parseAt reads a job's start time: RFC 3339, or local "2006-01-02 15:04[:05]",
// or local "15:04[:05]" (the next such time, today or tomorrow).
func parseAt(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"15:04:05", "15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			y, m, d := now.In(time.Local).Date()
			at := time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, time.Local)
			if !at.After(now) {
				at = at.AddDate(0, 0, 1)
			}
			return at, nil
		}
	}
	return time.Time{}, usageErrorf(`--at %q: want RFC 3339 (2026-11-27T15:04:00+01:00), "2026-11-27 15:04" or "15:04" (local time)`, s)
}

func newJobCreateCmd(conn *connFlags) *cobra.Command {
	var name, jobType, at, out, strategy string
	var certNames, resourceNames, contactNames []string // IDs or names
	var start bool
	cmd := &cobra.Command{
		Use:   "create --name N --cert ID|NAME[,…] --resource ID|NAME[,…] --contact ID|NAME [--start] [--at TIME]",
		Short: "Create a deployment job (in editing; --start queues it)",
		Long: `Create a deployment job: each resource gets the certificate whose names cover
its domain. The job starts in "editing"; --start moves it to "pending", so it
runs at --at, or now. --at takes RFC 3339, or local time as "2026-11-27 15:04"
or "15:04" (the next 15:04).`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, "text", "json"); err != nil {
				return err
			}
			req := &cas.CreateDeploymentJobRequest{Name: tea.String(name), JobType: tea.String(jobType)}
			var when time.Time
			if at != "" {
				t, err := parseAt(at, time.Now())
				if err != nil {
					return err
				}
				when = t
				req.ScheduleTime = tea.Int64(t.UnixMilli())
			}
			c, err := conn.dial()
			if err != nil {
				return err
			}
			certs, err := c.resolveAll(nounCert, certNames)
			if err != nil {
				return err
			}
			resources, err := c.resolveAll(nounResource, resourceNames)
			if err != nil {
				return err
			}
			contacts, err := c.resolveAll(nounContact, contactNames)
			if err != nil {
				return err
			}
			req.CertIds, req.ResourceIds, req.ContactIds = tea.String(joinInt64(certs)), tea.String(joinInt64(resources)), tea.String(joinInt64(contacts))
			var id int64
			if strategy != "" {
				// The SDK's request has no Strategy (a certfleet addition).
				q := map[string]string{"Name": name, "JobType": jobType, "CertIds": joinInt64(certs), "ResourceIds": joinInt64(resources),
					"ContactIds": joinInt64(contacts), "Strategy": strategy}
				if req.ScheduleTime != nil {
					q["ScheduleTime"] = fmt.Sprint(*req.ScheduleTime)
				}
				var r struct{ JobId int64 }
				if err := c.call("CreateDeploymentJob", q, &r); err != nil {
					return err
				}
				id = r.JobId
			} else {
				r, err := c.cas.CreateDeploymentJob(req)
				if err != nil {
					return err
				}
				id = tea.Int64Value(r.Body.JobId)
			}
			status := store.JobEditing
			if start {
				if _, err := c.cas.UpdateDeploymentJobStatus(&cas.UpdateDeploymentJobStatusRequest{JobId: tea.Int64(id), Status: tea.String(string(store.JobPending))}); err != nil {
					return fmt.Errorf("job %d created but not started: %s", id, errorLine(err))
				}
				status = store.JobPending
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), map[string]any{"JobId": id, "Status": status})
			}
			w := cmd.OutOrStdout()
			switch {
			case !start:
				fmt.Fprintf(w, "Created job %d (editing). Start it with: certfleet job start %d\n", id, id)
			case !when.IsZero() && when.After(time.Now()):
				fmt.Fprintf(w, "Created job %d; it runs at %s. Watch it with: certfleet job watch %d\n", id, when.Local().Format("2006-01-02 15:04:05 MST"), id)
			default:
				fmt.Fprintf(w, "Created and started job %d. Watch it with: certfleet job watch %d\n", id, id)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "job name")
	f.StringSliceVar(&certNames, "cert", nil, "certificate IDs or names (comma-separated or repeated)")
	f.StringSliceVar(&resourceNames, "resource", nil, "resource IDs or names (comma-separated or repeated)")
	f.StringSliceVar(&contactNames, "contact", nil, "contact IDs or names (comma-separated or repeated)")
	f.StringVar(&jobType, "type", "user", "job type: user (resources certfleet reaches itself) or cloud")
	f.BoolVar(&start, "start", false, "start the job (pending) right after creating it")
	f.StringVar(&at, "at", "", "when the job runs once started (default: now)")
	f.StringVar(&strategy, "strategy", "", `staged rollout, JSON: {"Waves":[1,"10%","100%"],"MaxFailPercent":0,"BakeSeconds":30,"RollbackOnHalt":true}`)
	outputFlag(cmd, &out, "text")
	for _, n := range []string{"name", "cert", "resource", "contact"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newJobStartCmd(conn *connFlags) *cobra.Command {
	var now bool
	cmd := &cobra.Command{
		Use:   "start ID",
		Short: "Start an editing job: it runs at its schedule time, or now",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, c, err := dialJob(conn, args[0])
			if err != nil {
				return err
			}
			status := store.JobPending
			if now {
				status = store.JobScheduling
			}
			if _, err := c.cas.UpdateDeploymentJobStatus(&cas.UpdateDeploymentJobStatusRequest{JobId: tea.Int64(id), Status: tea.String(string(status))}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Started job %d (%s). Watch it with: certfleet job watch %d\n", id, status, id)
			return nil
		},
	}
	cmd.Flags().BoolVar(&now, "now", false, "run now, ignoring the job's schedule time")
	return cmd
}

func newJobListCmd(conn *connFlags) *cobra.Command {
	var status, jobType string
	cmd := listCmd(conn, "list [--status STATUS]", "List deployment jobs", func(cmd *cobra.Command, c *client, out string) error {
		items, err := listAll(func(page int) ([]*cas.ListDeploymentJobResponseBodyData, int64, error) {
			req := &cas.ListDeploymentJobRequest{CurrentPage: tea.Int32(int32(page)), ShowSize: tea.Int32(pageSize),
				Status: optional(status), JobType: optional(jobType)}
			r, err := c.cas.ListDeploymentJob(req)
			if err != nil {
				return nil, 0, err
			}
			return r.Body.Data, tea.Int64Value(r.Body.Total), nil
		})
		if err != nil {
			return err
		}
		return printList(cmd.OutOrStdout(), out, items, []string{"ID", "NAME", "STATUS", "PRODUCTS", "DOMAINS", "SCHEDULED", "ENDED"},
			func(it *cas.ListDeploymentJobResponseBodyData) []string {
				return []string{i64(tea.Int64Value(it.Id)), tea.StringValue(it.Name), tea.StringValue(it.Status),
					tea.StringValue(it.ProductName), truncate(tea.StringValue(it.CertDomain), 40), msTime(tea.StringValue(it.ScheduleTime)),
					msTime(tea.StringValue(it.EndTime))}
			})
	})
	cmd.Flags().StringVar(&status, "status", "", "editing, pending, scheduling, processing, success or error")
	cmd.Flags().StringVar(&jobType, "type", "", "user or cloud")
	return cmd
}

// worker is one ListWorkerResource item, with certfleet's ErrorMessage,
// Attempts, NextRunAt and Running (the SDK struct lacks them, so workers are
// read with the generic client).
type worker struct {
	Id             int64
	JobId          int64
	ResourceId     int64
	ResourceDomain string
	CloudName      string
	CloudProduct   string
	CertId         int64
	CertName       string
	ResourceCertId int64
	Status         string
	ErrorMessage   string
	Attempts       int
	NextRunAt      int64 // epoch ms; 0 = not waiting for a retry
	Running        bool
	GmtModified    string
}

// workers lists a job's workers, optionally only those in status.
func (c *client) workers(jobID int64, status store.WorkerStatus) ([]json.RawMessage, []worker, error) {
	raw, err := listAll(func(page int) ([]json.RawMessage, int64, error) {
		var r struct {
			Data  []json.RawMessage
			Total int64
		}
		err := c.call("ListWorkerResource", map[string]string{"JobId": i64(jobID), "Status": string(status),
			"CurrentPage": fmt.Sprint(page), "ShowSize": "1000"}, &r)
		return r.Data, r.Total, err
	})
	if err != nil {
		return nil, nil, err
	}
	ws := make([]worker, len(raw))
	for i, m := range raw {
		if err := json.Unmarshal(m, &ws[i]); err != nil {
			return nil, nil, fmt.Errorf("ListWorkerResource: %w", err)
		}
	}
	return raw, ws, nil
}

// workerCount is how many of a job's workers are in status (and product, when set).
func (c *client) workerCount(jobID int64, status store.WorkerStatus, product string) (int64, error) {
	var r struct{ Total int64 }
	err := c.call("ListWorkerResource", map[string]string{"JobId": i64(jobID), "Status": string(status), "CloudProduct": product, "ShowSize": "1"}, &r)
	return r.Total, err
}

func newJobShowCmd(conn *connFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a job: status, counts and its workers",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, "text", "json"); err != nil {
				return err
			}
			id, c, err := dialJob(conn, args[0])
			if err != nil {
				return err
			}
			d, err := c.cas.DescribeDeploymentJob(&cas.DescribeDeploymentJobRequest{JobId: tea.Int64(id)})
			if err != nil {
				return err
			}
			st, err := c.cas.DescribeDeploymentJobStatus(&cas.DescribeDeploymentJobStatusRequest{JobId: tea.Int64(id)})
			if err != nil {
				return err
			}
			raw, ws, err := c.workers(id, "")
			if err != nil {
				return err
			}
			// Warnings (certfleet's addition, not in the SDK's struct): contacts no message would reach.
			var extra struct{ Warnings []string }
			if err := c.call("DescribeDeploymentJob", map[string]string{"JobId": i64(id)}, &extra); err != nil {
				return err
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), map[string]any{"Job": d.Body, "Counts": st.Body, "Workers": nonNil(raw), "Warnings": nonNil(extra.Warnings)})
			}
			printWarnings(cmd, extra.Warnings)
			j, s := d.Body, st.Body
			w := cmd.OutOrStdout()
			var contacts []string
			for _, ct := range j.CasContacts {
				contacts = append(contacts, strings.TrimSpace(tea.StringValue(ct.Name)+" "+angle(tea.StringValue(ct.Email))))
			}
			var own struct{ Cancelled int32 } // certfleet's own field
			if err := c.call("DescribeDeploymentJob", map[string]string{"JobId": i64(id)}, &own); err != nil {
				return err
			}
			rolled := ""
			if tea.Int32Value(j.Rollback) == 1 || tea.Int32Value(s.RollbackCount) > 0 {
				rolled = " (" + rollbackSummary(int64(tea.Int32Value(s.RollbackCount)), int64(tea.Int32Value(s.RollbackSuccessCount)),
					int64(tea.Int32Value(s.RollbackFailedCount))) + ")"
			}
			if own.Cancelled == 1 {
				rolled = " (cancelled)" + rolled
			}
			for _, r := range [][2]string{
				{"Job", fmt.Sprintf("%d %s", tea.Int64Value(j.Id), tea.StringValue(j.Name))},
				{"Status", tea.StringValue(j.Status) + rolled},
				{"Type", tea.StringValue(j.JobType)},
				{"Domains", strings.ReplaceAll(tea.StringValue(j.CertDomain), ",", ", ")},
				{"Products", tea.StringValue(j.ProductName)},
				{"Created", msTime(tea.StringValue(j.GmtCreate))},
				{"Scheduled", msTime(tea.StringValue(j.ScheduleTime))},
				{"Started", msTime(tea.StringValue(j.StartTime))},
				{"Ended", msTime(tea.StringValue(j.EndTime))},
				{"Workers", fmt.Sprintf("%d total, %d success, %d failed, %d rollback (%d done, %d failed)",
					tea.Int32Value(s.WorkerCount), tea.Int32Value(s.SuccessCount), tea.Int32Value(s.FailedCount),
					tea.Int32Value(s.RollbackCount), tea.Int32Value(s.RollbackSuccessCount), tea.Int32Value(s.RollbackFailedCount))},
				{"Contacts", strings.Join(contacts, ", ")},
			} {
				if r[1] == "" {
					r[1] = "-"
				}
				fmt.Fprintf(w, "%-10s %s\n", r[0]+":", r[1])
			}
			if len(ws) == 0 {
				return nil
			}
			fmt.Fprintln(w)
			rows := [][]string{}
			for _, wk := range ws {
				rows = append(rows, []string{i64(wk.Id), i64(wk.ResourceId), wk.ResourceDomain, wk.CloudName + "/" + wk.CloudProduct,
					fmt.Sprintf("%d %s", wk.CertId, wk.CertName), wk.Status, fmt.Sprint(wk.Attempts), truncate(wk.ErrorMessage, 80)})
			}
			return printTable(w, []string{"WORKER", "RESOURCE", "DOMAIN", "PRODUCT", "CERT", "STATUS", "ATTEMPTS", "ERROR"}, rows)
		},
	}
	outputFlag(cmd, &out, "text")
	return cmd
}

func angle(email string) string {
	if email == "" {
		return ""
	}
	return "<" + email + ">"
}

func newJobRollbackCmd(conn *connFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback JOBID [WORKERID]",
		Short: "Roll a job back (every worker that changed something), or one worker",
		Long: `Roll a job back: every success worker that changed its resource (not
those that found their certificate already in place) gets back what the
resource served before (RollbackDeploymentJob, one request, told to the
contacts once). With WORKERID, roll back that one worker (a success or
error worker). "certfleet job show JOBID" lists the workers; "certfleet job
watch JOBID" follows the rollback.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return nil
			}
			return exactArgs("JOBID", "WORKERID")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			jobID, err := parseID("job ID", args[0])
			if err != nil {
				return err
			}
			c, err := conn.dial()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				var r struct{ WorkerCount int64 }
				if err := c.call("RollbackDeploymentJob", map[string]string{"JobId": i64(jobID)}, &r); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Rolling back %d worker(s) of job %d. Follow it with: certfleet job watch %d\n", r.WorkerCount, jobID, jobID)
				return nil
			}
			workerID, err := parseID("worker ID", args[1])
			if err != nil {
				return err
			}
			if _, err := c.cas.UpdateWorkerResourceStatus(&cas.UpdateWorkerResourceStatusRequest{JobId: tea.Int64(jobID),
				WorkerId: tea.Int64(workerID), Status: tea.String(string(store.WorkerRollback))}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Rolling back worker %d of job %d. Follow it with: certfleet job watch %d\n", workerID, jobID, jobID)
			return nil
		},
	}
}

func newJobDeleteCmd(conn *connFlags) *cobra.Command {
	return deleteCmd(conn, nounJob, "Delete a job (not while it is processing)", func(c *client, id int64) error {
		_, err := c.cas.DeleteDeploymentJob(&cas.DeleteDeploymentJobRequest{JobId: tea.Int64(id)})
		return err
	})
}

// rollbackSummary says how a job's rollbacks went: "rolled back: 3 of 3
// workers restored", or "rolling back: 1 of 3 workers restored" while some run.
func rollbackSummary(asked, restored, failed int64) string {
	verb := "rolled back"
	if restored+failed < asked {
		verb = "rolling back"
	}
	s := fmt.Sprintf("%s: %d of %d workers restored", verb, restored, asked)
	if failed > 0 {
		s += fmt.Sprintf(", %d failed to roll back", failed)
	}
	return s
}

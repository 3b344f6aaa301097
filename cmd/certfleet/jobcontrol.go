package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// The job-wide commands: cancel, retry, rollback (one worker or every
// worker that changed something), preview. Each is one API call.

func newJobCancelCmd(conn *connFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a job: workers not yet run stop, running ones finish",
		Long: `Cancel a pending, scheduling or processing job (CancelDeploymentJob):
its workers that have not run, or wait for a retry, end "error" with the
message "cancelled"; workers running now finish (a failure of theirs is not
retried). The job ends "error" (or "success" if nothing was left to stop)
and is marked cancelled; its contacts are told once. Retry the stopped
workers with: certfleet job retry ID`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, c, err := dialJob(conn, args[0])
			if err != nil {
				return err
			}
			var r struct{ Status string }
			if err := c.call("CancelDeploymentJob", map[string]string{"JobId": i64(id)}, &r); err != nil {
				return err
			}
			if r.Status == "processing" {
				fmt.Fprintf(cmd.OutOrStdout(), "Cancelled job %d; its running workers finish first. Follow it with: certfleet job watch %d\n", id, id)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "Cancelled job %d (%s).\n", id, r.Status)
			}
			return nil
		},
	}
}

func newJobRetryCmd(conn *connFlags) *cobra.Command {
	var workers []int64
	cmd := &cobra.Command{
		Use:   "retry ID [--worker ID]…",
		Short: "Run a job's failed workers again",
		Long: `Run a job's error workers again (RetryDeploymentJob): they go back to
scheduling with their attempts reset, and the job back to processing. The
job must have ended (success or error), or be processing (its error workers
are retried). --worker limits the retry to those workers.`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, c, err := dialJob(conn, args[0])
			if err != nil {
				return err
			}
			var r struct{ WorkerCount int64 }
			if err := c.call("RetryDeploymentJob", map[string]string{"JobId": i64(id), "WorkerIds": joinInt64(workers)}, &r); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Retrying %d worker(s) of job %d. Watch it with: certfleet job watch %d\n", r.WorkerCount, id, id)
			return nil
		},
	}
	cmd.Flags().Int64SliceVar(&workers, "worker", nil, "retry only these worker IDs (comma-separated or repeated)")
	return cmd
}

func newJobPreviewCmd(conn *connFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "preview ID",
		Short: "Show what running a job would change, touching no target",
		Long: `Show, per worker, whether deploying it would change what its resource
serves (PreviewDeploymentJob): resources with a VerifyAddress are probed now
(nothing is recorded), the others are judged by certfleet's records.`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, "text", "json"); err != nil {
				return err
			}
			id, c, err := dialJob(conn, args[0])
			if err != nil {
				return err
			}
			var r struct {
				Data []struct {
					WorkerId, ResourceId, CertId           int64
					Domain, CertSha2, ObservedSha2, Source string
					ObservedError                          string
					WouldChange                            bool
				}
			}
			if err := c.call("PreviewDeploymentJob", map[string]string{"JobId": i64(id)}, &r); err != nil {
				return err
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), nonNil(r.Data))
			}
			rows := [][]string{}
			changes := 0
			for _, it := range r.Data {
				change, now := "no", short(it.ObservedSha2)
				if it.WouldChange {
					change = "yes"
					changes++
				}
				if it.ObservedError != "" {
					now = truncate(it.ObservedError, 50)
				}
				rows = append(rows, []string{i64(it.WorkerId), i64(it.ResourceId), it.Domain, fmt.Sprintf("%d %s", it.CertId, short(it.CertSha2)),
					now, it.Source, change})
			}
			w := cmd.OutOrStdout()
			if err := printTable(w, []string{"WORKER", "RESOURCE", "DOMAIN", "DEPLOYS", "SERVES NOW", "FROM", "CHANGES"}, rows); err != nil {
				return err
			}
			fmt.Fprintf(w, "%d of %d workers would change what their resource serves.\n", changes, len(r.Data))
			return nil
		},
	}
	outputFlag(cmd, &out, "text")
	return cmd
}

// short is the first 12 hex digits of a SHA-256, or "-".
func short(sha string) string {
	if sha == "" {
		return "-"
	}
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// dialJob parses a job ID argument and dials the server: what every job
// command does first.
func dialJob(conn *connFlags, arg string) (int64, *client, error) {
	id, err := parseID("job ID", arg)
	if err != nil {
		return 0, nil, err
	}
	c, err := conn.dial()
	return id, c, err
}

package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

// newResourceSyncCmd is "resource sync ACCESS_ID|NAME": SyncCloudResources.
func newResourceSyncCmd(conn *connFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "sync ACCESS_ID|NAME",
		Short: "Find the resources a cloud credential reaches and create or update certfleet resources for them",
		Long: "sync lists what the credential's cloud products serve over HTTPS (CDN domains, load balancer listeners\n" +
			"with their default and SNI certificates, TLS Secrets…) and creates a certfleet resource for each new one,\n" +
			"updates those it created before, and marks gone those it no longer finds. Running it again changes nothing\n" +
			"unless the provider changed. The server's leader repeats it every --sync-interval.",
		Args: exactArgs("ACCESS_ID|NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, "text", "json"); err != nil {
				return err
			}
			c, id, err := dialObject(conn, nounAccess, args[0])
			if err != nil {
				return err
			}
			var r struct {
				AccessId                      int64
				Found, Created, Updated, Gone int
				Products                      []struct {
					CloudProduct                  string
					Found, Created, Updated, Gone int
					Error                         string
				}
			}
			if err := c.call("SyncCloudResources", map[string]string{"AccessId": i64(id)}, &r); err != nil {
				return err
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), r)
			}
			w := cmd.OutOrStdout()
			rows := [][]string{}
			for _, p := range r.Products {
				rows = append(rows, []string{p.CloudProduct, strconv.Itoa(p.Found), strconv.Itoa(p.Created), strconv.Itoa(p.Updated),
					strconv.Itoa(p.Gone), p.Error})
			}
			if err := printTable(w, []string{"PRODUCT", "FOUND", "CREATED", "UPDATED", "GONE", "ERROR"}, rows); err != nil {
				return err
			}
			fmt.Fprintf(w, "Credential %d: found %d, created %d, updated %d, gone %d.\n", r.AccessId, r.Found, r.Created, r.Updated, r.Gone)
			return nil
		},
	}
	outputFlag(cmd, &out, "text")
	return cmd
}

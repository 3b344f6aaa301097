package main

import (
	"encoding/json"
	"fmt"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/spf13/cobra"
)

func newResourceCmd() *cobra.Command {
	conn := &connFlags{}
	cmd := nounCmd("resource", "Manage deployment targets (files, webhooks, …)", conn)
	cmd.AddCommand(newResourceAddCmd(conn), newResourceListCmd(conn), newResourceProductsCmd(conn),
		deleteCmd(conn, "resource", "Delete a resource (refused while an unfinished job uses it)", ownDelete("DeleteCloudResource", "Id")))
	return cmd
}

// resourceCommon are the flags every "resource add" form shares.
type resourceCommon struct {
	domain, name, out string
	access            int64
}

func (rc *resourceCommon) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&rc.domain, "domain", "", "the host name this resource serves; picks the job's certificate that covers it")
	f.StringVar(&rc.name, "name", "", "a name for the resource (default: the domain)")
	f.Int64Var(&rc.access, "access", 0, "ID of a stored credential (certfleet access list)")
	outputFlag(cmd, &rc.out, "text")
}

// create calls CreateCloudResource with Config built from config.
func (rc *resourceCommon) create(cmd *cobra.Command, conn *connFlags, cloud, product string, config any, extra map[string]string) error {
	if err := checkOutput(rc.out, "text", "json"); err != nil {
		return err
	}
	var cfg string
	switch v := config.(type) {
	case string:
		cfg = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		cfg = string(b)
	}
	name := rc.name
	if name == "" {
		name = rc.domain
	}
	q := map[string]string{"CloudName": cloud, "CloudProduct": product, "Domain": rc.domain, "Name": name, "Config": cfg}
	if rc.access != 0 {
		q["CloudAccessId"] = i64(rc.access)
	}
	for k, v := range extra {
		q[k] = v
	}
	c, err := conn.dial()
	if err != nil {
		return err
	}
	var r struct{ Id int64 }
	if err := c.call("CreateCloudResource", q, &r); err != nil {
		return err
	}
	if rc.out == "json" {
		return printJSON(cmd.OutOrStdout(), r)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Created resource %d (%s/%s %s).\n", r.Id, cloud, product, rc.domain)
	return nil
}

func newResourceAddCmd(conn *connFlags) *cobra.Command {
	var rc resourceCommon
	var cloud, product, config, region, instance, port string
	cmd := &cobra.Command{
		Use:   "add <cloud> <PRODUCT> --domain D --<key> VALUE … | add --cloud-name C --product P --config JSON",
		Short: "Add a resource: \"add ssh NGINX --host …\" (flags from the product's keys), or any product from JSON",
		Long: `Add a resource. "resource add <cloud> <PRODUCT>" (for example "resource add
ssh NGINX --help") takes one flag per Config key of the product, named after
it (CertPath → --cert-path); "certfleet resource products" lists them.
"resource add file" and "resource add webhook" are short forms of
"local FILE" and "webhook WEBHOOK". Without a subcommand, give the Config
as JSON with --cloud-name, --product and --config.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !json.Valid([]byte(config)) {
				return usageErrorf("--config is not valid JSON")
			}
			return rc.create(cmd, conn, cloud, product, config,
				map[string]string{"RegionId": region, "InstanceId": instance, "ListenerPort": port})
		},
	}
	rc.register(cmd)
	f := cmd.Flags()
	f.StringVar(&cloud, "cloud-name", "", "the product's CloudName (local, webhook, …)")
	f.StringVar(&product, "product", "", "the product's CloudProduct (FILE, WEBHOOK, …)")
	f.StringVar(&config, "config", "{}", "the product's Config, a JSON object")
	f.StringVar(&region, "region", "", "RegionId, for products that have regions")
	f.StringVar(&instance, "instance", "", "InstanceId, for products that have instances")
	f.StringVar(&port, "listener-port", "", "ListenerPort, for products that have listeners")
	cmd.MarkFlagRequired("cloud-name")
	cmd.MarkFlagRequired("product")
	cmd.AddCommand(newResourceAddFileCmd(conn), newResourceAddWebhookCmd(conn))
	addProductCmds(cmd, conn)
	return cmd
}

func newResourceAddFileCmd(conn *connFlags) *cobra.Command {
	var rc resourceCommon
	var cfg struct {
		CertPath, KeyPath, ChainPath, KeyMode, ReloadCommand string
		ReloadTimeout                                        int
	}
	cmd := &cobra.Command{
		Use:   "file --domain D --cert-path P --key-path P",
		Short: "Add PEM files on the server's machine (local/FILE; the server needs --local-root)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := map[string]any{"CertPath": cfg.CertPath, "KeyPath": cfg.KeyPath}
			for k, v := range map[string]string{"ChainPath": cfg.ChainPath, "KeyMode": cfg.KeyMode, "ReloadCommand": cfg.ReloadCommand} {
				if v != "" {
					c[k] = v
				}
			}
			if cfg.ReloadTimeout > 0 {
				c["ReloadTimeoutSeconds"] = cfg.ReloadTimeout
			}
			return rc.create(cmd, conn, "local", "FILE", c, nil)
		},
	}
	rc.register(cmd)
	f := cmd.Flags()
	f.StringVar(&cfg.CertPath, "cert-path", "", "absolute path of the full chain PEM")
	f.StringVar(&cfg.KeyPath, "key-path", "", "absolute path of the private key PEM")
	f.StringVar(&cfg.ChainPath, "chain-path", "", "absolute path of the intermediates alone (optional)")
	f.StringVar(&cfg.KeyMode, "key-mode", "", `the key file's mode, octal (default "0600")`)
	f.StringVar(&cfg.ReloadCommand, "reload-command", "", "run after writing; must be allowed by the server's --local-reload-allow")
	f.IntVar(&cfg.ReloadTimeout, "reload-timeout", 0, "seconds the reload command may run (default: the server's)")
	cmd.MarkFlagRequired("cert-path")
	cmd.MarkFlagRequired("key-path")
	return cmd
}

func newResourceAddWebhookCmd(conn *connFlags) *cobra.Command {
	var rc resourceCommon
	var u string
	var timeout int
	cmd := &cobra.Command{
		Use:   "webhook --domain D --url URL [--timeout SECONDS] [--access ID]",
		Short: "Add a webhook receiver that gets the certificate and key as signed JSON",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := map[string]any{"Url": u}
			if timeout > 0 {
				c["TimeoutSeconds"] = timeout
			}
			return rc.create(cmd, conn, "webhook", "WEBHOOK", c, nil)
		},
	}
	rc.register(cmd)
	cmd.Flags().StringVar(&u, "url", "", "the https:// (or http://) address to POST to")
	cmd.Flags().IntVar(&timeout, "timeout", 0, "seconds one delivery may take, 1 to 300 (default 10)")
	cmd.MarkFlagRequired("url")
	return cmd
}

func newResourceListCmd(conn *connFlags) *cobra.Command {
	var cloud, product, keyword string
	cmd := listCmd(conn, "list", "List resources and the certificate each one serves", func(cmd *cobra.Command, c *client, out string) error {
		items, err := listAll(func(page int) ([]*cas.ListCloudResourcesResponseBodyData, int64, error) {
			req := &cas.ListCloudResourcesRequest{CurrentPage: tea.Int32(int32(page)), ShowSize: tea.Int32(pageSize),
				CloudName: optional(cloud), CloudProduct: optional(product), Keyword: optional(keyword)}
			r, err := c.cas.ListCloudResources(req)
			if err != nil {
				return nil, 0, err
			}
			return r.Body.Data, tea.Int64Value(r.Body.Total), nil
		})
		if err != nil {
			return err
		}
		return printList(cmd.OutOrStdout(), out, items, []string{"ID", "PRODUCT", "DOMAIN", "CERT", "CERT EXPIRES"},
			func(it *cas.ListCloudResourcesResponseBodyData) []string {
				cert := ""
				if id := tea.Int64Value(it.CertId); id != 0 {
					cert = fmt.Sprintf("%d %s", id, tea.StringValue(it.CertName))
				}
				return []string{i64(tea.Int64Value(it.Id)), tea.StringValue(it.CloudName) + "/" + tea.StringValue(it.CloudProduct),
					tea.StringValue(it.Domain), cert, msTime(tea.StringValue(it.CertEndTime))}
			})
	})
	cmd.Flags().StringVar(&cloud, "cloud-name", "", "only this CloudName")
	cmd.Flags().StringVar(&product, "product", "", "only this CloudProduct")
	cmd.Flags().StringVar(&keyword, "keyword", "", "match name or domain")
	return cmd
}

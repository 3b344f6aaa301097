package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/verify"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/spf13/cobra"
)

func newResourceCmd() *cobra.Command {
	conn := &connFlags{}
	cmd := nounCmd("resource", "Manage deployment targets (files, webhooks, …)", conn)
	cmd.AddCommand(newResourceAddCmd(conn), newResourceListCmd(conn), newResourceShowCmd(conn), newResourceUpdateCmd(conn),
		newResourceCheckCmd(conn), newResourceProductsCmd(conn), newResourceSyncCmd(conn),
		deleteCmd(conn, nounResource, "Delete a resource (refused while an unfinished job uses it)", ownDelete("DeleteCloudResource", "Id")))
	return cmd
}

// resourceCommon are the flags every "resource add" form shares.
type resourceCommon struct {
	domain, name, out string
	access            string // ID or name
}

func (rc *resourceCommon) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&rc.domain, "domain", "", "the host name this resource serves; picks the job's certificate that covers it")
	f.StringVar(&rc.name, "name", "", "a name for the resource (default: the domain)")
	f.StringVar(&rc.access, "access", "", "ID or name of a stored credential (certfleet access list)")
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
	for k, v := range extra {
		q[k] = v
	}
	c, err := conn.dial()
	if err != nil {
		return err
	}
	if rc.access != "" {
		id, err := c.resolve(nounAccess, rc.access)
		if err != nil {
			return err
		}
		q["CloudAccessId"] = i64(id)
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
	cmd := listCmd(conn, "list", "List resources, the certificate each one should serve and what it was last seen serving", func(cmd *cobra.Command, c *client, out string) error {
		items, err := listResources(c, &cas.ListCloudResourcesRequest{CloudName: optional(cloud), CloudProduct: optional(product), Keyword: optional(keyword)})
		if err != nil {
			return err
		}
		return printList(cmd.OutOrStdout(), out, items, []string{"ID", "NAME", "PRODUCT", "DOMAIN", "CERT", "CERT EXPIRES", "OBSERVED", "STALE"},
			func(it resourceItem) []string {
				cert := ""
				if it.CertId != 0 {
					cert = fmt.Sprintf("%d %s", it.CertId, it.CertName)
				}
				return []string{i64(it.Id), it.Name, it.CloudName + "/" + it.CloudProduct, it.Domain, cert, msTime(it.CertEndTime),
					observedCell(it.ObservedSha2, it.ObservedError), staleCell(it)}
			})
	})
	cmd.Flags().StringVar(&cloud, "cloud-name", "", "only this CloudName")
	cmd.Flags().StringVar(&product, "product", "", "only this CloudProduct")
	cmd.Flags().StringVar(&keyword, "keyword", "", "match name or domain")
	return cmd
}

// observedCell is the short form of an observation: the certificate's
// SHA-256 prefix, or the probe's error.
func observedCell(sha2, errText string) string {
	switch {
	case errText != "":
		return "error: " + truncate(errText, 40)
	case sha2 != "":
		return "sha256:" + strings.ToLower(truncate(sha2, 13))
	}
	return "-"
}

func staleCell(it resourceItem) string {
	switch {
	case it.Stale:
		return "STALE"
	case it.ObservedAt == "" || it.ObservedAt == "0":
		return "-"
	}
	return "no"
}

func newResourceShowCmd(conn *connFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "show ID|NAME",
		Short: "Show a resource: its Config, its certificate and what it was last seen serving",
		Args:  exactArgs("ID|NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, "text", "json"); err != nil {
				return err
			}
			c, id, err := dialObject(conn, nounResource, args[0])
			if err != nil {
				return err
			}
			it, err := getResource(c, id)
			if err != nil {
				return err
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), it)
			}
			var cfg bytes.Buffer
			if json.Indent(&cfg, it.Config, "              ", "  ") != nil {
				cfg.Reset()
				cfg.Write(it.Config)
			}
			cert := "-"
			if it.CertId != 0 {
				cert = fmt.Sprintf("%d %s (expires %s)", it.CertId, it.CertName, msTime(it.CertEndTime))
			}
			rows := [][2]string{
				{"ID", i64(it.Id)}, {"Name", it.Name}, {"Product", it.CloudName + "/" + it.CloudProduct}, {"Domain", it.Domain},
				{"Access", orDash(it.CloudAccessId)}, {"Certificate", cert},
				{"Observed", observedCell(it.ObservedSha2, it.ObservedError)}, {"Observed at", orDash(msTime(it.ObservedAt))},
				{"Stale", staleCell(it)}, {"Config", cfg.String()},
			}
			if it.ObservedSubject != "" {
				rows = append(rows[:8], append([][2]string{{"Subject", it.ObservedSubject}}, rows[8:]...)...)
			}
			w := cmd.OutOrStdout()
			for _, r := range rows {
				fmt.Fprintf(w, "%-13s %s\n", r[0]+":", r[1])
			}
			return nil
		},
	}
	outputFlag(cmd, &out, "text")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newResourceCheckCmd(conn *connFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "check ID|NAME",
		Short: "Probe a resource's VerifyAddress now: which certificate it serves, and whether it is stale",
		Args:  exactArgs("ID|NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, "text", "json"); err != nil {
				return err
			}
			c, id, err := dialObject(conn, nounResource, args[0])
			if err != nil {
				return err
			}
			var r struct {
				Data struct {
					ResourceId       int64
					Domain           string
					CertId           int64
					CertSha2         string
					ObservedSha2     string
					ObservedSubject  string
					ObservedNotAfter string
					ObservedAt       string
					ObservedError    string
					Stale            bool
					Addresses        []struct{ Address, Sha2, Subject, NotAfter, Error string }
				}
			}
			if err := c.call("CheckCloudResource", map[string]string{"Id": i64(id)}, &r); err != nil {
				return err
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), r.Data)
			}
			d, w := r.Data, cmd.OutOrStdout()
			rows := [][]string{}
			for _, a := range d.Addresses {
				rows = append(rows, []string{a.Address, observedCell(a.Sha2, a.Error), a.Subject, msTime(a.NotAfter)})
			}
			if err := printTable(w, []string{"ADDRESS", "SERVES", "SUBJECT", "EXPIRES"}, rows); err != nil {
				return err
			}
			switch {
			case d.ObservedError != "":
				fmt.Fprintf(w, "Resource %d: the check failed: %s\n", d.ResourceId, d.ObservedError)
			case d.CertId == 0:
				fmt.Fprintf(w, "Resource %d serves sha256:%s; certfleet has deployed nothing to it yet.\n", d.ResourceId, strings.ToLower(d.ObservedSha2))
			case d.Stale:
				fmt.Fprintf(w, "Resource %d is STALE: it serves sha256:%s, not certificate %d (sha256:%s) that certfleet deployed.\n",
					d.ResourceId, strings.ToLower(d.ObservedSha2), d.CertId, strings.ToLower(d.CertSha2))
			default:
				fmt.Fprintf(w, "Resource %d serves certificate %d, as deployed.\n", d.ResourceId, d.CertId)
			}
			return nil
		},
	}
	outputFlag(cmd, &out, "text")
	return cmd
}

// newResourceUpdateCmd is "resource update ID|NAME [--name|--domain|--access|--config JSON|--<key> value …]":
// it reads the resource, changes what the flags say and sends UpdateCloudResource
// (which replaces the Config whole, so the keys not given keep their values).
func newResourceUpdateCmd(conn *connFlags) *cobra.Command {
	var name, domain, access, config, out string
	keyFlags := map[string]func() any{} // flag name → its value
	keyOf := map[string]string{}        // flag name → Config key
	cmd := &cobra.Command{
		Use:   "update ID|NAME [--name N] [--domain D] [--access ID|NAME] [--config JSON] [--<key> VALUE …]",
		Short: "Change a resource: its name, domain, credential or Config keys",
		Long: `Change a resource. --config replaces its whole Config; each --<key> flag
(the same flags as "resource add <cloud> <PRODUCT>", for example --host-key
or --cert-path) sets one Config key and keeps the others. A key the
resource's product does not have is refused.`,
		Args: exactArgs("ID|NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, "text", "json"); err != nil {
				return err
			}
			c, id, err := dialObject(conn, nounResource, args[0])
			if err != nil {
				return err
			}
			cur, err := getResource(c, id)
			if err != nil {
				return err
			}
			q := map[string]string{"Id": i64(id)}
			f := cmd.Flags()
			if f.Changed("name") {
				q["Name"] = name
			}
			if f.Changed("domain") {
				q["Domain"] = domain
			}
			if f.Changed("access") {
				aid, err := c.resolve(nounAccess, access)
				if err != nil {
					return err
				}
				q["CloudAccessId"] = i64(aid)
			}
			cfg := map[string]json.RawMessage{}
			base := []byte(cur.Config)
			if f.Changed("config") {
				base = []byte(config)
			}
			if len(base) > 0 {
				if err := json.Unmarshal(base, &cfg); err != nil {
					return usageErrorf("--config is not a JSON object: %v", err)
				}
			}
			allowed := map[string]bool{}
			for _, d := range products() {
				if d.CloudName == cur.CloudName && d.CloudProduct == cur.CloudProduct {
					for _, fl := range append(append([]deploy.Field{}, d.Config...), verify.Fields...) {
						allowed[fl.Name] = true
					}
				}
			}
			changedKeys := false
			for flag, get := range keyFlags {
				if !f.Changed(flag) {
					continue
				}
				key := keyOf[flag]
				if len(allowed) > 0 && !allowed[key] {
					return usageErrorf("--%s: %s/%s has no Config key %s", flag, cur.CloudName, cur.CloudProduct, key)
				}
				b, err := json.Marshal(get())
				if err != nil {
					return err
				}
				cfg[key] = b
				changedKeys = true
			}
			if f.Changed("config") || changedKeys {
				b, _ := json.Marshal(cfg)
				q["Config"] = string(b)
			}
			if len(q) == 1 {
				return usageErrorf("nothing to change; give --name, --domain, --access, --config or a --<key> flag")
			}
			if err := c.call("UpdateCloudResource", q, nil); err != nil {
				return err
			}
			if out == "json" {
				it, err := getResource(c, id)
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), it)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Updated resource %d.\n", id)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "a new name")
	f.StringVar(&domain, "domain", "", "a new domain")
	f.StringVar(&access, "access", "", "ID or name of a stored credential")
	f.StringVar(&config, "config", "", "the whole Config, a JSON object (the --<key> flags apply on top)")
	outputFlag(cmd, &out, "text")
	// One flag per Config key of any product, typed as the first product
	// that has the key declares it.
	for _, d := range products() {
		for _, field := range append(append([]deploy.Field{}, d.Config...), verify.Fields...) {
			flag := flagName(field.Name)
			if prev, ok := keyOf[flag]; ok || f.Lookup(flag) != nil {
				if prev == field.Name {
					continue
				}
				flag = "config-" + flag
				if _, ok := keyOf[flag]; ok {
					continue
				}
			}
			keyOf[flag] = field.Name
			keyFlags[flag] = addFieldFlag(f, flag, field)
		}
	}
	return cmd
}

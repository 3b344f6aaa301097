package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/registry"
	"github.com/certfleet/certfleet/internal/verify"
)

// products are the descriptions compiled into this binary: they give
// "resource add <cloud> <product>" its flags and help without a server.
// "resource products" asks the server instead (ListCloudProducts), which is
// what it will accept.
func products() []deploy.Description { return registry.New(registry.Options{}).Products() }

// addProductCmds adds "<cloud> <PRODUCT>" commands under add, one per
// product, with a flag per Config key. A cloud command that exists already
// (the friendly "webhook" form) gets the product commands as children.
func addProductCmds(add *cobra.Command, conn *connFlags) {
	byCloud := map[string]*cobra.Command{}
	for _, c := range add.Commands() {
		byCloud[c.Name()] = c
	}
	for _, d := range products() {
		parent := byCloud[d.CloudName]
		if parent == nil {
			parent = &cobra.Command{Use: d.CloudName + " PRODUCT", Short: "Add a " + d.CloudName + " resource; PRODUCT is one of its products",
				Args: cobra.ArbitraryArgs,
				RunE: func(cmd *cobra.Command, args []string) error {
					if len(args) > 0 {
						return usageErrorf("%q is not a product of %s; see certfleet resource products", args[0], cmd.Name())
					}
					return cmd.Help()
				}}
			byCloud[d.CloudName] = parent
			add.AddCommand(parent)
		}
		parent.AddCommand(newProductAddCmd(conn, d))
	}
}

// flagName turns a Config key into a flag: CertPath → cert-path.
func flagName(key string) string {
	var b strings.Builder
	rs := []rune(key)
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
			b.WriteByte('-')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// newProductAddCmd is "resource add <cloud> <PRODUCT> --<key> value …".
func newProductAddCmd(conn *connFlags, d deploy.Description) *cobra.Command {
	var rc resourceCommon
	var region, instance, listenerPort string
	values := map[string]func() any{} // key → the flag's value, when set
	cmd := &cobra.Command{
		Use:     d.CloudProduct + " --domain D [--<key> VALUE …]",
		Aliases: []string{strings.ToLower(d.CloudProduct)},
		Short:   d.Summary,
		Long: d.Summary + "\n\nEach flag sets the Config key it is named after (" +
			strings.Join(keyNames(d.Config), ", ") + "); docs/deployers.md and\n`certfleet resource products` describe them." + accessHelp(d),
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			config := map[string]any{}
			for key, get := range values {
				if cmd.Flags().Changed(flagName(key)) || cmd.Flags().Changed("config-"+flagName(key)) {
					config[key] = get()
				}
			}
			if d.Access.Need == deploy.AccessRequired && rc.access == "" {
				return usageErrorf("%s needs a credential: --access ID|NAME (certfleet access list)", d.Name())
			}
			return rc.create(cmd, conn, d.CloudName, d.CloudProduct, config,
				map[string]string{"RegionId": region, "InstanceId": instance, "ListenerPort": listenerPort})
		},
	}
	rc.register(cmd)
	f := cmd.Flags()
	for _, field := range append(append([]deploy.Field{}, d.Config...), verify.Fields...) {
		name := flagName(field.Name)
		if f.Lookup(name) != nil {
			name = "config-" + name // never shadow a common flag
		}
		values[field.Name] = addFieldFlag(f, name, field)
		if field.Required {
			cmd.MarkFlagRequired(name)
		}
	}
	f.StringVar(&region, "region", "", "RegionId, for products that have regions")
	f.StringVar(&instance, "instance", "", "InstanceId, for products that have instances")
	f.StringVar(&listenerPort, "listener-port", "", "ListenerPort, for products that have listeners")
	return cmd
}

// addFieldFlag declares a typed flag for a Config key and returns how to
// read its value.
func addFieldFlag(f *pflag.FlagSet, name string, field deploy.Field) func() any {
	usage := field.Help
	if field.Default != "" {
		usage += " (default " + field.Default + ")"
	}
	if len(field.Allowed) > 0 {
		usage += " (one of " + strings.Join(field.Allowed, ", ") + ")"
	}
	switch field.Type {
	case deploy.TypeInteger:
		v := f.Int64(name, 0, usage)
		return func() any { return *v }
	case deploy.TypeBoolean:
		v := f.Bool(name, false, usage)
		return func() any { return *v }
	case deploy.TypeStringList:
		v := f.StringArray(name, nil, usage+" (repeatable)")
		return func() any { return *v }
	case deploy.TypeObject:
		v := f.String(name, "", usage+" (a JSON object)")
		return func() any { return json.RawMessage(*v) }
	}
	v := f.String(name, "", usage)
	return func() any { return *v }
}

func keyNames(fields []deploy.Field) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.Name
	}
	return out
}

func accessHelp(d deploy.Description) string {
	switch d.Access.Need {
	case deploy.AccessRequired:
		return fmt.Sprintf("\n\nIt needs --access ID: a credential with CloudName %s (certfleet access list).", d.CloudName)
	case deploy.AccessOptional:
		return "\n\n--access names an optional credential."
	}
	return ""
}

// newResourceProductsCmd lists the products the server knows, with their
// Config keys (ListCloudProducts).
func newResourceProductsCmd(conn *connFlags) *cobra.Command {
	var out, cloud string
	cmd := &cobra.Command{
		Use:   "products [--cloud-name C]",
		Short: "List the products the server deploys to, with their Config keys",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, "text", "json"); err != nil {
				return err
			}
			c, err := conn.dial()
			if err != nil {
				return err
			}
			q := map[string]string{}
			if cloud != "" {
				q["CloudName"] = cloud
			}
			var r struct {
				Products     []deploy.Description
				CommonConfig []deploy.Field
			}
			if err := c.call("ListCloudProducts", q, &r); err != nil {
				return err
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), r)
			}
			w := cmd.OutOrStdout()
			sort.SliceStable(r.Products, func(i, j int) bool { return r.Products[i].Name() < r.Products[j].Name() })
			for _, d := range r.Products {
				fmt.Fprintf(w, "%s %s — %s\n", d.CloudName, d.CloudProduct, d.Summary)
				fmt.Fprintf(w, "  credential: %s\n", d.Access.Need)
				if err := printFields(w, d.Config); err != nil {
					return err
				}
				fmt.Fprintln(w)
			}
			fmt.Fprintln(w, "every product also takes:")
			return printFields(w, r.CommonConfig)
		},
	}
	cmd.Flags().StringVar(&cloud, "cloud-name", "", "only this CloudName")
	outputFlag(cmd, &out, "text")
	return cmd
}

func printFields(w interface{ Write([]byte) (int, error) }, fields []deploy.Field) error {
	rows := [][]string{}
	for _, f := range fields {
		req := ""
		if f.Required {
			req = "required"
		}
		rows = append(rows, []string{"  " + f.Name, "--" + flagName(f.Name), string(f.Type), req, f.Default, f.Help})
	}
	return printTable(w, []string{"  KEY", "FLAG", "TYPE", "", "DEFAULT", "MEANING"}, rows)
}

package main

import (
	"encoding/json"
	"fmt"
	"strings"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/spf13/cobra"
)

func newContactCmd() *cobra.Command {
	conn := &connFlags{}
	cmd := nounCmd("contact", "Manage who is told about deployment jobs", conn)
	cmd.AddCommand(newContactAddCmd(conn), newContactListCmd(conn),
		deleteCmd(conn, "contact", "Delete a contact (refused while an unfinished job uses it)", ownDelete("DeleteContact", "ContactId")))
	return cmd
}

func newContactAddCmd(conn *connFlags) *cobra.Command {
	var name, email, mobile, out string
	var webhooks []string
	cmd := &cobra.Command{
		Use:   "add --name NAME [--email ADDR] [--webhook URL]...",
		Short: "Add a contact",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, "text", "json"); err != nil {
				return err
			}
			q := map[string]string{"Name": name, "Email": email, "Mobile": mobile}
			if len(webhooks) > 0 {
				b, _ := json.Marshal(webhooks)
				q["Webhooks"] = string(b)
			}
			c, err := conn.dial()
			if err != nil {
				return err
			}
			var r struct{ ContactId int64 }
			if err := c.call("CreateContact", q, &r); err != nil {
				return err
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), r)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created contact %d (%s).\n", r.ContactId, name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "the contact's name")
	f.StringVar(&email, "email", "", "email address")
	f.StringVar(&mobile, "mobile", "", "mobile number")
	f.StringArrayVar(&webhooks, "webhook", nil, "notification webhook URL (repeatable)")
	outputFlag(cmd, &out, "text")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newContactListCmd(conn *connFlags) *cobra.Command {
	var keyword, out string
	cmd := &cobra.Command{
		Use:   "list [--keyword WORD]",
		Short: "List contacts",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, "table", "json"); err != nil {
				return err
			}
			c, err := conn.dial()
			if err != nil {
				return err
			}
			var items []*cas.ListContactResponseBodyContactList
			for page := int32(1); ; page++ {
				req := &cas.ListContactRequest{CurrentPage: tea.Int32(page), ShowSize: tea.Int32(500)}
				if keyword != "" {
					req.Keyword = tea.String(keyword)
				}
				r, err := c.cas.ListContact(req)
				if err != nil {
					return err
				}
				items = append(items, r.Body.ContactList...)
				if len(r.Body.ContactList) == 0 || int64(len(items)) >= tea.Int64Value(r.Body.TotalCount) {
					break
				}
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), nonNil(items))
			}
			rows := [][]string{}
			for _, it := range items {
				var hooks []string
				json.Unmarshal([]byte(tea.StringValue(it.Webhooks)), &hooks)
				rows = append(rows, []string{i64(tea.Int64Value(it.ContactId)), tea.StringValue(it.Name), tea.StringValue(it.Email),
					tea.StringValue(it.Mobile), strings.Join(hooks, " ")})
			}
			return printTable(cmd.OutOrStdout(), []string{"ID", "NAME", "EMAIL", "MOBILE", "WEBHOOKS"}, rows)
		},
	}
	cmd.Flags().StringVar(&keyword, "keyword", "", "match name, email or mobile")
	outputFlag(cmd, &out, "table")
	return cmd
}

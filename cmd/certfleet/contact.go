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
		deleteCmd(conn, nounContact, "Delete a contact (refused while an unfinished job uses it)", ownDelete("DeleteContact", "ContactId")))
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
			var r struct {
				ContactId int64
				Warnings  []string
			}
			if err := c.call("CreateContact", q, &r); err != nil {
				return err
			}
			printWarnings(cmd, r.Warnings)
			if out == "json" {
				r.Warnings = nonNil(r.Warnings)
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
	var keyword string
	cmd := listCmd(conn, "list [--keyword WORD]", "List contacts", func(cmd *cobra.Command, c *client, out string) error {
		items, err := listAll(func(page int) ([]*cas.ListContactResponseBodyContactList, int64, error) {
			req := &cas.ListContactRequest{CurrentPage: tea.Int32(int32(page)), ShowSize: tea.Int32(pageSize),
				Keyword: optional(keyword)}
			r, err := c.cas.ListContact(req)
			if err != nil {
				return nil, 0, err
			}
			return r.Body.ContactList, tea.Int64Value(r.Body.TotalCount), nil
		})
		if err != nil {
			return err
		}
		return printList(cmd.OutOrStdout(), out, items, []string{"ID", "NAME", "EMAIL", "MOBILE", "WEBHOOKS"},
			func(it *cas.ListContactResponseBodyContactList) []string {
				var hooks []string
				json.Unmarshal([]byte(tea.StringValue(it.Webhooks)), &hooks)
				return []string{i64(tea.Int64Value(it.ContactId)), tea.StringValue(it.Name), tea.StringValue(it.Email),
					tea.StringValue(it.Mobile), strings.Join(hooks, " ")}
			})
	})
	cmd.Flags().StringVar(&keyword, "keyword", "", "match name, email or mobile")
	return cmd
}

package main

import (
	"io"

	"github.com/alibabacloud-go/tea/tea"
	"github.com/spf13/cobra"
)

// pageSize is how many items a list command asks for on each page.
const pageSize = 500

// listAll pages through a List operation from page 1 and returns every item.
// fetch asks for one page and returns its items and the total the server
// reports; paging stops at an empty page or once total items have come, so a
// list that shrinks while it is read still ends.
func listAll[T any](fetch func(page int) (items []T, total int64, err error)) ([]T, error) {
	var all []T
	for page := 1; ; page++ {
		items, total, err := fetch(page)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if len(items) == 0 || int64(len(all)) >= total {
			return all, nil
		}
	}
}

// printList writes a list command's items: as a JSON array for -o json
// ([] when there are none), else as a table of header and one row per item.
func printList[T any](w io.Writer, out string, items []T, header []string, row func(T) []string) error {
	if out == "json" {
		return printJSON(w, nonNil(items))
	}
	rows := make([][]string, 0, len(items))
	for _, it := range items {
		rows = append(rows, row(it))
	}
	return printTable(w, header, rows)
}

// optional is an SDK request field for a flag: nil (not sent) when empty.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return tea.String(s)
}

// nonNil makes a nil slice print as [] in JSON.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// listCmd builds a noun's list command: it checks -o (table or json), dials
// the server and hands the client to list, which pages with listAll and
// prints with printList.
func listCmd(conn *connFlags, use, short string, list func(cmd *cobra.Command, c *client, out string) error) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, "table", "json"); err != nil {
				return err
			}
			c, err := conn.dial()
			if err != nil {
				return err
			}
			return list(cmd, c, out)
		},
	}
	outputFlag(cmd, &out, "table")
	return cmd
}

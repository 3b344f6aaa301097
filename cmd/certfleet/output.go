package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// outputFlag adds -o/--output to cmd: "table" (or "text") or "json".
func outputFlag(cmd *cobra.Command, dst *string, human string) {
	cmd.Flags().StringVarP(dst, "output", "o", human, "output format: "+human+" or json")
}

// checkOutput validates an -o value.
func checkOutput(v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return usageErrorf("-o must be one of %s, not %q", strings.Join(allowed, ", "), v)
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printTable writes an aligned table with a header row.
func printTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			r[i] = oneLine(r[i])
			if r[i] == "" {
				r[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// msTime renders epoch milliseconds (as the API sends them) in local time.
func msTime(v string) string {
	ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || ms <= 0 {
		return ""
	}
	return time.UnixMilli(ms).Local().Format("2006-01-02 15:04")
}

func msTimeInt(ms int64) string { return msTime(strconv.FormatInt(ms, 10)) }

func i64(v int64) string { return strconv.FormatInt(v, 10) }

// parseID reads a positional ID argument.
func parseID(what, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, usageErrorf("%s must be a positive number, not %q", what, s)
	}
	return id, nil
}

func joinInt64(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = i64(id)
	}
	return strings.Join(s, ",")
}

// truncate shortens s to n runes.
func truncate(s string, n int) string {
	r := []rune(s)
	if n <= 1 || len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// printWarnings writes the server's warnings to standard error, one line
// each, so that they reach a person even when standard output is piped.
func printWarnings(cmd *cobra.Command, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "certfleet: warning:", oneLine(w))
	}
}

// renameKey re-encodes v (an object or an array of objects) with the
// top-level key from renamed to, so that the CLI's JSON names one concept
// one way whatever the API operation called it.
func renameKey(v any, from, to string) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	rename := func(m map[string]json.RawMessage) {
		if x, ok := m[from]; ok {
			delete(m, from)
			m[to] = x
		}
	}
	var list []map[string]json.RawMessage
	if json.Unmarshal(b, &list) == nil {
		for _, m := range list {
			rename(m)
		}
		return list
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(b, &obj) == nil {
		rename(obj)
		return obj
	}
	return v
}

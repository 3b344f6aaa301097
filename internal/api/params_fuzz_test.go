package api

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzParams decodes arbitrary query strings through the RPC parameter
// helpers: none panics, every error is an API error naming the parameter, and
// what they return round-trips (IDs re-encoded decode to themselves, a JSON
// object is compacted once and for all).
func FuzzParams(f *testing.F) {
	f.Add("CertIds=1,2,3&ShowSize=50&CurrentPage=2&Config=%7B%22a%22%3A1%7D&Enable=true&Time=1700000000000")
	f.Add("CertIds=[1,%202,null]&ShowSize=0&Config=[]&Enable=yes")
	f.Add("CertIds=,,-1,9223372036854775808&CurrentPage=1e9&Config=%7B%22a%22:%7B%7D%7D%20x")
	f.Add("CertIds=%5B%221%22%5D&Time=-5&Config=null")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		v, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		p := params{v}
		apiErr := func(err error, name string) {
			t.Helper()
			e, ok := err.(*Error)
			if !ok || e.Code == "" || e.Status != 400 || !strings.Contains(e.Message, name) {
				t.Fatalf("%s: error %#v is not a 400 API error naming the parameter", name, err)
			}
		}
		if ids, err := p.ids("CertIds", false); err != nil {
			apiErr(err, "CertIds")
		} else if len(ids) > 0 {
			s := make([]string, len(ids))
			for i, id := range ids {
				if id <= 0 {
					t.Fatalf("ids returned %d", id)
				}
				s[i] = strconv.FormatInt(id, 10)
			}
			for _, enc := range []string{strings.Join(s, ","), "[" + strings.Join(s, ",") + "]"} {
				again, err := params{url.Values{"CertIds": {enc}}}.ids("CertIds", true)
				if err != nil || !slices.Equal(again, ids) {
					t.Fatalf("ids(%q) = %v, %v; want %v", enc, again, err, ids)
				}
			}
		}
		if page, size, err := p.page(50); err != nil {
			if e, ok := err.(*Error); !ok || e.Status != 400 {
				t.Fatalf("page: %#v", err)
			}
		} else if page < 1 || size < 1 || size > 1000 {
			t.Fatalf("page %d size %d out of range", page, size)
		}
		if s, err := p.jsonObject("Config"); err != nil {
			apiErr(err, "Config")
		} else {
			var m map[string]json.RawMessage
			if json.Unmarshal([]byte(s), &m) != nil || m == nil {
				t.Fatalf("jsonObject returned %q, not a JSON object", s)
			}
			again, err := params{url.Values{"Config": {s}}}.jsonObject("Config")
			if err != nil || again != s {
				t.Fatalf("jsonObject(%q) = %q, %v: not stable", s, again, err)
			}
		}
		if _, err := p.bool("Enable"); err != nil {
			apiErr(err, "Enable")
		}
		if _, err := p.epochMS("Time"); err != nil {
			apiErr(err, "Time")
		}
		if _, err := p.text("Name", 64); err != nil {
			apiErr(err, "Name")
		}
	})
}

package main

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestListAll(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		desc      string
		pages     [][]int // what the server answers for pages 1, 2, …
		total     int64
		failAt    int // page that fails; 0 = none
		want      []int
		wantPages int
		wantErr   error
	}{
		{desc: "one page holds the total", pages: [][]int{{1, 2}}, total: 2, want: []int{1, 2}, wantPages: 1},
		{desc: "pages until the total", pages: [][]int{{1, 2}, {3, 4}, {5}}, total: 5, want: []int{1, 2, 3, 4, 5}, wantPages: 3},
		{desc: "nothing", pages: [][]int{{}}, total: 0, want: nil, wantPages: 1},
		{desc: "an empty page ends a list that shrank", pages: [][]int{{1, 2}, {}}, total: 9, want: []int{1, 2}, wantPages: 2},
		{desc: "an error ends it", pages: [][]int{{1, 2}, {3}}, total: 9, failAt: 2, wantPages: 2, wantErr: boom},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			asked := 0
			got, err := listAll(func(page int) ([]int, int64, error) {
				asked++
				if page != asked {
					t.Fatalf("asked for page %d after %d pages", page, asked-1)
				}
				if page == tt.failAt {
					return nil, 0, boom
				}
				if page > len(tt.pages) {
					t.Fatalf("asked for page %d past the end", page)
				}
				return tt.pages[page-1], tt.total, nil
			})
			if !errors.Is(err, tt.wantErr) || !reflect.DeepEqual(got, tt.want) || asked != tt.wantPages {
				t.Errorf("listAll = %v, %v after %d pages; want %v, %v after %d", got, err, asked, tt.want, tt.wantErr, tt.wantPages)
			}
		})
	}
}

func TestPrintList(t *testing.T) {
	t.Parallel()
	row := func(s string) []string { return []string{s, ""} }
	tests := []struct {
		desc  string
		out   string
		items []string
		want  string
	}{
		{desc: "json", out: "json", items: []string{"a"}, want: "[\n  \"a\"\n]\n"},
		{desc: "json of nothing is []", out: "json", items: nil, want: "[]\n"},
		{desc: "table, empty cells as -", out: "table", items: []string{"a", "bb"}, want: "NAME  NOTE\na     -\nbb    -\n"},
		{desc: "table of nothing is its header", out: "table", items: nil, want: "NAME  NOTE\n"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			if err := printList(&b, tt.out, tt.items, []string{"NAME", "NOTE"}, row); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tt.want {
				t.Errorf("printed %q, want %q", got, tt.want)
			}
		})
	}
}

package sqlstore

import (
	"slices"
	"testing"
)

func TestIDsFromJSON(t *testing.T) {
	for _, ids := range [][]int64{{}, {7}, {1, 22, 333, 9007199254740993}} {
		got := idsFromJSON(jsonText(ids))
		if !slices.Equal(got, ids) || got == nil {
			t.Errorf("idsFromJSON(%s) = %v, want %v", jsonText(ids), got, ids)
		}
	}
	for in, want := range map[string][]int64{"": nil, "null": nil, "[ 1, 2 ]": {1, 2}, "[-3]": {-3}} {
		if got := idsFromJSON(in); !slices.Equal(got, want) {
			t.Errorf("idsFromJSON(%q) = %v, want %v", in, got, want)
		}
	}
}

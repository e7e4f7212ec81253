package routing

// Tests for mutants of suggest.go that lived in the 859f522 run
// (docs/mutation-routing-bcd.md).

import "testing"

// Of candidates equally close to a typo, the first is suggested (the
// first in sorted order for UnknownName).
func TestMutSuggestFirstOfEquals(t *testing.T) {
	if got := Suggest("pusj", []string{"push", "pusk"}); got != "push" {
		t.Errorf("Suggest = %q, want push, the first of two at one edit", got)
	}
	if got := UnknownName("trigger", "bulid", []string{"buils", "build"}); got != `no trigger "bulid" (did you mean "build"?); known: build, buils` {
		t.Errorf("UnknownName = %s", got)
	}
}

package routing

import (
	"reflect"
	"testing"
)

// TestTektonExpressionsSplit: expressions are split as Tekton Triggers'
// resolver splits them, at "$(" and up to the first unbalanced ")", so
// balanced parentheses inside one stay in it.
func TestTektonExpressionsSplit(t *testing.T) {
	for in, want := range map[string][]string{
		"$(body.a)":                         {"body.a"},
		"x $(body.f(y)) $(header.z) $(open": {"body.f(y)", "header.z"},
		"$(a(b(c))d)e)":                     {"a(b(c))d"},
		"$(a)b)":                            {"a"},
		"$()":                               {""},
		"$((a)":                             nil,
		"no expression":                     nil,
	} {
		if got := tektonExpressions(in); !reflect.DeepEqual(got, want) {
			t.Errorf("tektonExpressions(%q) = %q, want %q", in, got, want)
		}
	}
}

package routing

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"github.com/tektoncd/triggers/pkg/template"
)

// partBody has what a scanner can trip on: escaped and non-ASCII keys, a
// key given twice, brackets and quotes inside strings, nulls, numbers.
const partBody = ` {"repository" : {"clone_url":"https://x/<a>&b \"]}\\","id":12345678901,"owner":{"login":"o"},"topics":["a","b]"]},
	"head_commit":{"message":"m\u00e9 [skip ci]","added":null,"author":{"name":"x"}},"size":1.5e3,"list":[{"a":1}],"flag":true,"nil":null,
	"re\u0070o":{"x":"escaped key"},"dup":{"a":1},"dup":{"b":2},"k\u00e9y":"é","ké2":"plain utf-8","{":"}"} `

func bodyState(t *testing.T, body string) *routeState {
	return &routeState{in: &Input{Event: pushEvent(t, "dev.switchyard.git.push", nil, body)}}
}

// TestBodyPartResolvesAlike checks that Tekton's resolver gives the same
// params, or fails the same way, on the part of the body the bindings read
// (scanned from the payload, or pruned from a body already parsed) as on
// the whole body.
func TestBodyPartResolvesAlike(t *testing.T) {
	for _, values := range [][]string{
		{"$(body.repository.clone_url)"},
		{"$(body.repository.id)-$(body.size)", "$(body.flag)"},
		{"$(body.repository)", "$(body.repository.owner.login)"},
		{"$(body.repository.owner.login)", "$(body.repository)"},
		{"$(body.repository.topics)"},
		{"$(body.head_commit.added)", "$(body.nil)"},
		{"$(body.missing)"},
		{"$(body.repository.missing.deeper)"},
		{"$(body.list.a)"},
		{"$(body.repository.clone_url.x)"},
		{"$(body.repo.x)", "$(body.dup.b)"},
		{"$(body.dup.a)"},
		{"$(body.dup.b)", "$(body.dup)"},
		{"$(body.ké2)"},
		{"$(header.X-Github-Event) $(body.head_commit.message)", "$(extensions.repository)", "$(context.eventID)"},
		{"literal only"},
	} {
		paths := bodyPathsOf(values...)
		if paths == nil {
			if !slices.ContainsFunc(values, func(v string) bool { return strings.Contains(v, "é") }) {
				t.Fatalf("%q: no paths, want plain paths", values)
			}
			continue
		}
		want, wantErr := resolveForTest(values, []byte(partBody))
		scanned := bodyState(t, partBody)
		// Data ingest has validated (Input.DataIsJSON): scanned unchecked.
		trusted := bodyState(t, partBody)
		trusted.in.DataIsJSON = true
		parsed := bodyState(t, partBody)
		if err := parsed.parseBody(); err != nil {
			t.Fatal(err)
		}
		for name, st := range map[string]*routeState{"scanned": scanned, "trusted": trusted, "parsed": parsed} {
			part := st.bodyFor(paths)
			got, gotErr := resolveForTest(values, part)
			if want != got || errString(wantErr) != errString(gotErr) {
				t.Errorf("%q: %s part %s gives %q, %v; whole body gives %q, %v", values, name, part, got, gotErr, want, wantErr)
			}
		}
	}
}

func resolveForTest(values []string, body []byte) (string, error) {
	params := make([]triggersv1.Param, len(values))
	for i, v := range values {
		params[i] = triggersv1.Param{Name: string(rune('a' + i)), Value: v}
	}
	out, err := template.ResolveParams(template.ResolvedTrigger{BindingParams: params}, body,
		http.Header{"X-Github-Event": {"push"}}, map[string]any{"repository": "acme/web"}, template.NewTriggerContext("id-1"))
	if err != nil {
		return "", err
	}
	// The resolver returns params in map order.
	slices.SortFunc(out, func(a, b triggersv1.Param) int { return strings.Compare(a.Name, b.Name) })
	b, err := json.Marshal(out)
	return string(b), err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestBodyPathsFallBack checks that any binding expression the part might
// answer differently leaves the resolver the whole payload.
func TestBodyPathsFallBack(t *testing.T) {
	for _, v := range []string{
		"$(body)", "$(body.commits[0].id)", "$(body.commits[*].id)", "$({.body.x})", "$(.body.x)",
		"$(body..id)", "$(body.a,body.b)", "$(header.x) $(body.a[?(@.b)])", "$(*)", "$(body.ké)",
	} {
		if p := bodyPathsOf("$(body.ok)", v); p != nil {
			t.Errorf("%q: pruned to %+v, want the whole body", v, p)
		}
	}
}

// TestConditionBodyPartAlike checks that a condition decides the same, or
// fails the same way, on the part of the body it reads as on the whole
// body, and that conditions reading body otherwise get the whole body.
func TestConditionBodyPartAlike(t *testing.T) {
	for _, tc := range []struct {
		expr  string
		whole bool // reads body other than by field selection
	}{
		{expr: "body.repository.owner.login == 'o'"},
		{expr: "!body.head_commit.message.contains('[skip ci]')"},
		{expr: "has(body.head_commit.author) && !has(body.head_commit.committer)"},
		{expr: "has(body.missing.deeper)"},
		{expr: "body.missing == 1"},
		{expr: "body.repository.topics.exists(t, t == 'b]')"},
		{expr: "body.repo.x == 'escaped key' && body.dup.b == 2.0 && !has(body.dup.a)"},
		{expr: "body.list.a == 1"},
		{expr: "body.head_commit.added == null && body.size == 1500.0"},
		{expr: "size(body.repository) == 4 && body.repository.id > 1.0"},
		{expr: "body.nil.x == 1"},
		{expr: "[{'x': 1}].exists(body, body.x == 1) && body.flag"},
		{expr: "size(body) > 3", whole: true},
		{expr: "body['repository'].id > 1.0", whole: true},
		{expr: "'flag' in body", whole: true},
		{expr: "body.exists(k, k == 'flag')", whole: true},
		{expr: "[{'x': 1}].exists(body, size(body) == 1)", whole: true},
	} {
		c, err := compileCondition(tc.expr)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		if (c.bodyPaths == nil) != tc.whole {
			t.Errorf("%s: paths %+v, want whole body %v", tc.expr, c.bodyPaths, tc.whole)
		}
		for _, body := range []string{partBody, `[1]`, `{"a":`, ``, `null`, `"s"`} {
			whole := bodyState(t, body)
			wantOK, wantErr := evalForTest(c, whole, func() (map[string]any, error) {
				err := whole.parseBody()
				return whole.body, err
			})
			for name, st := range map[string]*routeState{"scanned": bodyState(t, body), "parsed": parsedState(t, body)} {
				gotOK, gotErr := evalForTest(c, st, func() (map[string]any, error) { return st.conditionBody(c.bodyPaths) })
				if gotOK != wantOK || errString(gotErr) != errString(wantErr) {
					t.Errorf("%s on %.20q (%s): %v, %v; whole body: %v, %v", tc.expr, body, name, gotOK, gotErr, wantOK, wantErr)
				}
			}
		}
	}
}

func parsedState(t *testing.T, body string) *routeState {
	st := bodyState(t, body)
	_ = st.parseBody() // a body that does not parse is its own case
	return st
}

func evalForTest(c *condition, st *routeState, body func() (map[string]any, error)) (bool, error) {
	b, err := body()
	if err != nil {
		return false, fmt.Errorf("body: %w", err)
	}
	return c.eval(celVars{st: st, body: b})
}

// FuzzBodyPart checks the scanned part of any body against the part
// pruned from the fully decoded body.
func FuzzBodyPart(f *testing.F) {
	for _, s := range []string{partBody, `{}`, `{"a":{"b":"\\\""}}`, `{"a":1,"a":{"b":[1,{"c":"]"}]}}`, `[1]`, `{"a`, ` {"\u0061":{"b":null}} `} {
		f.Add(s)
	}
	paths := bodyPathsOf("$(body.a.b)", "$(body.repository.owner)", "$(body.dup)", "$(body.k.x)")
	f.Fuzz(func(t *testing.T, body string) {
		var whole map[string]any
		wholeErr := json.Unmarshal([]byte(body), &whole)
		st := bodyState(t, body)
		part, ok := st.bodyPart(paths)
		if !ok {
			if wholeErr == nil && whole != nil && body != "" {
				t.Fatalf("no part of %q, which decodes", body)
			}
			return
		}
		if wholeErr != nil {
			t.Fatalf("part %v of %q, which does not decode: %v", part, body, wholeErr)
		}
		want, _ := json.Marshal(paths.prune(whole))
		got, _ := json.Marshal(part)
		if string(got) != string(want) {
			t.Fatalf("%q: scanned part %s, pruned %s", body, got, want)
		}
		// The same body as ingest hands it over, known valid
		// (Input.DataIsJSON): the unchecked scan finds the same part.
		trusted := bodyState(t, body)
		trusted.in.DataIsJSON = true
		tpart, ok := trusted.bodyPart(paths)
		if tgot, _ := json.Marshal(tpart); !ok || string(tgot) != string(want) {
			t.Fatalf("%q known valid: part %s (%v), pruned %s", body, tgot, ok, want)
		}
	})
}

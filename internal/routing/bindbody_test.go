package routing

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"github.com/tektoncd/triggers/pkg/template"
)

// TestPrunedBodyResolvesAlike checks that Tekton's resolver gives the same
// params, or fails the same way, on the part of the body the bindings read
// as on the whole body.
func TestPrunedBodyResolvesAlike(t *testing.T) {
	body := []byte(`{"repository":{"clone_url":"https://x/<a>&b","id":12345678901,"owner":{"login":"o"},"topics":["a","b"]},
		"head_commit":{"message":"m\u00e9","added":null},"size":1.5e3,"list":[{"a":1}],"flag":true,"nil":null}`)
	for _, values := range [][]string{
		{"$(body.repository.clone_url)"},
		{"$(body.repository.id)-$(body.size)", "$(body.flag)"},
		{"$(body.repository)", "$(body.repository.owner.login)"},
		{"$(body.repository.owner.login)", "$(body.repository)"},
		{"$(body.repository.topics)"},
		{"$(body.head_commit.added)"},
		{"$(body.nil)"},
		{"$(body.missing)"},
		{"$(body.repository.missing.deeper)"},
		{"$(body.list.a)"},
		{"$(body.repository.clone_url.x)"},
		{"$(header.X-Github-Event) $(body.head_commit.message)", "$(extensions.repository)", "$(context.eventID)"},
		{"literal only"},
	} {
		paths := bodyPathsOf(values...)
		if paths == nil {
			t.Fatalf("%q: no paths, want plain paths", values)
		}
		var parsed map[string]any
		if err := json.Unmarshal(body, &parsed); err != nil {
			t.Fatal(err)
		}
		part, err := json.Marshal(paths.prune(parsed))
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := resolveForTest(values, body)
		got, gotErr := resolveForTest(values, part)
		if want != got || errString(wantErr) != errString(gotErr) {
			t.Errorf("%q: pruned to %s gives %q, %v; whole body gives %q, %v", values, part, got, gotErr, want, wantErr)
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

// TestBodyPathsFallBack checks that any expression the pruned body might
// answer differently leaves the resolver the whole payload.
func TestBodyPathsFallBack(t *testing.T) {
	for _, v := range []string{
		"$(body)", "$(body.commits[0].id)", "$(body.commits[*].id)", "$({.body.x})", "$(.body.x)",
		"$(body..id)", "$(body.a,body.b)", "$(header.x) $(body.a[?(@.b)])", "$(*)",
	} {
		if p := bodyPathsOf("$(body.ok)", v); p != nil {
			t.Errorf("%q: pruned to %+v, want the whole body", v, p)
		}
	}
}

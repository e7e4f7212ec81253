package routing

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// FuzzLoad feeds arbitrary root, app and Tekton resource files to the
// loader. Load must never panic, must report failure as Problems that name
// a file, and rules it accepts must route an event without panicking.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(testRoot), []byte(appWithTriggers("build")), []byte(shopBinding))
	f.Add([]byte(templateRoot), []byte(`apiVersion: switchyard.dev/v1alpha1
kind: App
name: shop
resources: [tekton.yaml]
triggers:
  - name: build
    match: {paths: ["src/**"], actors: ["!bot"], when: "body.a == 1"}
    run:
      bindings: [{ref: push}, {ref: who, kind: ClusterTriggerBinding}, {name: ns, value: x}]
      template: {ref: build}
`), []byte(shopBinding+"\n---\n"+shopTemplate))
	// Every testdata manifest seeds the corpus.
	_ = filepath.WalkDir("testdata", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return nil
		}
		if data, err := os.ReadFile(path); err == nil {
			f.Add([]byte(testRoot), data, data)
		}
		return nil
	})
	f.Fuzz(func(t *testing.T, root, app, tekton []byte) {
		fsys := fstest.MapFS{
			"root.yaml":             {Data: root},
			"apps/web.yaml":         {Data: app},
			"apps/shop/app.yaml":    {Data: app},
			"apps/shop/tekton.yaml": {Data: tekton},
			"apps/tekton.yaml":      {Data: tekton},
		}
		rules, err := Load(fsys, "rules", Options{})
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Load error %v is not Problems", err)
			}
			for _, p := range ps {
				if p.File == "" || p.Msg == "" {
					t.Fatalf("problem without a file or message: %+v", p)
				}
			}
			return
		}
		if rules == nil {
			t.Fatal("Load returned neither rules nor an error")
		}
		for _, s := range rules.Sources() {
			ev := pushEvent(t, "dev.switchyard.git.push", map[string]string{"repository": "acme/web", "branch": "main", "identity": "source:" + s.Name}, `{"a":1}`)
			in := Input{Source: s.Name, Event: ev, Header: http.Header{"X-A": []string{"b"}}, Changes: &Changes{Files: []string{"src/a.go"}, Complete: true}}
			route := rules.Route(in)
			if d := rules.Explain(in); len(d.Targets) != len(route) {
				t.Fatalf("Explain fired %d targets, Route %d", len(d.Targets), len(route))
			}
		}
	})
}

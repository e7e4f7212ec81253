package routing

import (
	"errors"
	"slices"
	"testing"
	"testing/fstest"
)

// TestTemplateGrantCheckedAtLoad pins the load-time grant check of
// templates with expected messages written here, not in a golden file
// that -update would rewrite: a template that names a namespace or a
// service account outside its app's grant must keep the rules from
// loading.
func TestTemplateGrantCheckedAtLoad(t *testing.T) {
	tests := []struct {
		name     string
		template string // the resource template, indented for the TriggerTemplate
		want     []string
	}{
		{
			name: "within the grant",
			template: `    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      metadata: {namespace: shop-ci}
      spec:
        pipelineRef: {name: build}
        taskRunTemplate: {serviceAccountName: shop-builder}
        taskRunSpecs: [{pipelineTaskName: deploy, serviceAccountName: shop-builder}]
`,
		},
		{
			name: "templated namespace is checked per event instead",
			template: `    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      metadata: {namespace: $(tt.params.revision)}
      spec: {pipelineRef: {name: build}}
`,
		},
		{
			name: "namespace outside",
			template: `    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      metadata: {namespace: kube-system}
      spec: {pipelineRef: {name: build}}
`,
			want: []string{`trigger "t": template "tpl": namespace "kube-system" exceeds the grant of app "shop" (namespaces: shop-ci)`},
		},
		{
			name: "run service account outside",
			template: `    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      spec:
        pipelineRef: {name: build}
        taskRunTemplate: {serviceAccountName: cluster-admin}
`,
			want: []string{`trigger "t": template "tpl": service account "cluster-admin" exceeds the grant of app "shop" (serviceAccounts: shop-builder)`},
		},
		{
			name: "task service account outside",
			template: `    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      spec:
        pipelineRef: {name: build}
        taskRunSpecs: [{pipelineTaskName: deploy, serviceAccountName: root-sa}]
`,
			want: []string{`trigger "t": template "tpl": service account "root-sa" exceeds the grant of app "shop" (serviceAccounts: shop-builder)`},
		},
		{
			name: "v1beta1 service account outside",
			template: `    - apiVersion: tekton.dev/v1beta1
      kind: PipelineRun
      spec:
        pipelineRef: {name: build}
        serviceAccountName: cluster-admin
`,
			want: []string{`trigger "t": template "tpl": service account "cluster-admin" exceeds the grant of app "shop" (serviceAccounts: shop-builder)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(grantManifest(tt.template), "rules", Options{SourceKinds: []string{"github"}})
			var ps Problems
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Load: %v, want the rules to load", err)
				}
				return
			}
			if !errors.As(err, &ps) {
				t.Fatalf("Load error = %v, want Problems", err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.Msg)
			}
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("problems %q do not include %q", got, w)
				}
			}
		})
	}
}

func grantManifest(resourceTemplate string) fstest.MapFS {
	return fstest.MapFS{
		"root.yaml": {Data: []byte(`apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
apps:
  - name: shop
    manifest: apps/shop/app.yaml
    namespaces: [shop-ci]
    serviceAccounts: [shop-builder]
    sources: [github]
`)},
		"apps/shop/app.yaml": {Data: []byte(`apiVersion: switchyard.dev/v1alpha1
kind: App
name: shop
resources: [tekton.yaml]
triggers:
  - name: t
    run:
      bindings: [{name: revision, value: $(body.after)}]
      template: {ref: tpl}
`)},
		"apps/shop/tekton.yaml": {Data: []byte(`apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata:
  name: tpl
spec:
  params: [{name: revision}]
  resourcetemplates:
` + resourceTemplate)},
	}
}

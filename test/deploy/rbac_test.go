package deploy

import (
	"context"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRenderedRBACLeastPrivilege creates the chart's ServiceAccount,
// ClusterRole and RoleBindings for real and asks the API server's RBAC
// authorizer what the router may do: PipelineRuns in the granted namespaces,
// nothing else.
func TestRenderedRBACLeastPrivilege(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := newApplier(t)
	const ns = "sy-rbac"
	objs := render(t, ns, []string{"git-sync.yaml"}) // grants ci and payments-ci
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "RoleBinding":
		default:
			continue
		}
		if o.GetNamespace() != "" {
			a.ensureNamespace(ctx, t, o.GetNamespace())
		}
		gvk := o.GroupVersionKind()
		m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatal(err)
		}
		ri := a.dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		if _, err := ri.Create(ctx, o, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create %s %s: %v", gvk.Kind, o.GetName(), err)
		}
	}
	a.ensureNamespace(ctx, t, "other")

	router := "system:serviceaccount:" + ns + ":switchyard"
	tests := []struct {
		namespace, group, resource, verb string
		allowed                          bool
	}{
		{"ci", "tekton.dev", "pipelineruns", "create", true},
		{"payments-ci", "tekton.dev", "pipelineruns", "create", true},
		{"ci", "tekton.dev", "pipelineruns", "get", true},
		{"ci", "tekton.dev", "pipelineruns", "list", true},
		{"ci", "tekton.dev", "pipelineruns", "watch", true},
		{"ci", "tekton.dev", "pipelineruns", "patch", true},
		{"ci", "tekton.dev", "pipelineruns", "delete", false},
		{"ci", "tekton.dev", "pipelineruns", "update", false},
		{"other", "tekton.dev", "pipelineruns", "create", false},
		{ns, "tekton.dev", "pipelineruns", "create", false},
		{"", "tekton.dev", "pipelineruns", "list", false},
		{"ci", "tekton.dev", "taskruns", "create", true},
		{"ci", "tekton.dev", "taskruns", "list", true},
		{"ci", "tekton.dev", "taskruns", "watch", true},
		{"ci", "tekton.dev", "taskruns", "get", false},
		{"other", "tekton.dev", "taskruns", "watch", false},
		{"", "tekton.dev", "taskruns", "list", false},
		{"other", "tekton.dev", "taskruns", "create", false},
		{"ci", "tekton.dev", "taskruns", "patch", false},
		{"ci", "tekton.dev", "taskruns", "delete", false},
		{"ci", "", "secrets", "get", false},
		{ns, "", "secrets", "get", false},
		{ns, "", "configmaps", "get", false},
		{"ci", "", "pods", "create", false},
	}
	for _, tt := range tests {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   router,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: tt.namespace, Group: tt.group, Resource: tt.resource, Verb: tt.verb,
			},
		}}
		got, err := a.cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Allowed != tt.allowed {
			t.Errorf("%s %s.%s in %q: allowed=%v, want %v (%s)", tt.verb, tt.resource, tt.group, tt.namespace, got.Status.Allowed, tt.allowed, got.Status.Reason)
		}
	}
}

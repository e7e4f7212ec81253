package k8senv

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadRouterRBACIsLeastPrivilege(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	r, err := LoadRouterRBAC(filepath.Join(root, RBACManifest))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Username(); got != "system:serviceaccount:switchyard:switchyard-router" {
		t.Errorf("identity %q", got)
	}
	if len(r.ClusterRoles) != 1 || len(r.ClusterRoles[0].Rules) != 2 {
		t.Fatalf("want one ClusterRole with two rules, got %+v", r.ClusterRoles)
	}
	if tr := r.ClusterRoles[0].Rules[1]; !slices.Equal(tr.APIGroups, []string{"tekton.dev"}) || !slices.Equal(tr.Resources, []string{"taskruns"}) ||
		!slices.Equal(tr.Verbs, []string{"create", "list", "watch"}) || len(tr.ResourceNames) != 0 {
		t.Errorf("taskruns rule %+v, want create, list and watch on tekton.dev taskruns only", tr)
	}
	rule := r.ClusterRoles[0].Rules[0]
	if !slices.Equal(rule.APIGroups, []string{"tekton.dev"}) || !slices.Equal(rule.Resources, []string{"pipelineruns"}) ||
		len(rule.ResourceNames) != 0 || len(rule.NonResourceURLs) != 0 {
		t.Errorf("rule %+v", rule)
	}
	verbs := slices.Sorted(slices.Values(rule.Verbs))
	if want := []string{"create", "get", "list", "patch", "watch"}; !slices.Equal(verbs, want) {
		t.Errorf("verbs %v, want %v", verbs, want)
	}
	for _, rb := range r.RoleBindings {
		if rb.RoleRef.Kind != "ClusterRole" || rb.RoleRef.Name != r.ClusterRoles[0].Name {
			t.Errorf("RoleBinding %s binds %+v", rb.Name, rb.RoleRef)
		}
		if len(rb.Subjects) != 1 || rb.Subjects[0].Kind != "ServiceAccount" ||
			rb.Subjects[0].Name != r.ServiceAccount.Name || rb.Subjects[0].Namespace != r.ServiceAccount.Namespace {
			t.Errorf("RoleBinding %s subjects %+v", rb.Name, rb.Subjects)
		}
	}
}

func TestLoadRouterRBACRejectsClusterRoleBinding(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, RBACManifest))
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, []byte(`---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: everywhere
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: switchyard-router-pipelineruns}
subjects: [{kind: ServiceAccount, name: switchyard-router, namespace: switchyard}]
`)...)
	path := filepath.Join(t.TempDir(), "rbac.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRouterRBAC(path); err == nil || !strings.Contains(err.Error(), "ClusterRoleBinding") {
		t.Fatalf("got %v, want an error about the ClusterRoleBinding", err)
	}
}

// Start must give up when its context ends, and clean up after itself
// (processes included: they are started mid-way through up.sh).
func TestStartRespectsContext(t *testing.T) {
	for _, timeout := range []time.Duration{300 * time.Millisecond, 2 * time.Second} {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		before, _ := filepath.Glob(filepath.Join(os.TempDir(), "switchyard-k8s-*"))
		c, err := Start(ctx)
		cancel()
		switch {
		case err == nil: // a fast machine; nothing to check
			t.Logf("cluster started within %s", timeout)
			if err := c.Stop(); err != nil {
				t.Fatal(err)
			}
		case !strings.Contains(err.Error(), "did not finish within"):
			t.Fatalf("unexpected error: %v", err)
		}
		after, _ := filepath.Glob(filepath.Join(os.TempDir(), "switchyard-k8s-*"))
		for _, dir := range after {
			if slices.Contains(before, dir) {
				continue
			}
			t.Errorf("state dir %s left behind", dir)
			procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range procs {
				if b, _ := os.ReadFile(p); strings.Contains(string(b), dir) {
					t.Errorf("process left behind: %s", strings.ReplaceAll(string(b), "\x00", " "))
				}
			}
		}
	}
}

package k8senv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

// RBACManifest is the shipped RBAC file, relative to the repository root.
const RBACManifest = "deploy/rbac.yaml"

// RouterTokenTTL is the lifetime of the tokens in RouterKubeconfig files.
const RouterTokenTTL = 24 * time.Hour

// RouterRBAC is deploy/rbac.yaml, parsed.
type RouterRBAC struct {
	ServiceAccount *corev1.ServiceAccount
	ClusterRoles   []*rbacv1.ClusterRole
	// RoleBindings are the per-namespace examples; RouterKubeconfig uses them
	// as templates (only their namespace is replaced).
	RoleBindings []*rbacv1.RoleBinding
}

// Username is the Kubernetes user name of the router's ServiceAccount.
func (r *RouterRBAC) Username() string {
	return "system:serviceaccount:" + r.ServiceAccount.Namespace + ":" + r.ServiceAccount.Name
}

// LoadRouterRBAC parses deploy/rbac.yaml. It accepts exactly one
// ServiceAccount, ClusterRoles and RoleBindings; anything else (notably a
// ClusterRoleBinding) is an error, since the router must only ever be granted
// access per namespace.
func LoadRouterRBAC(path string) (*RouterRBAC, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("k8senv: %w", err)
	}
	r := &RouterRBAC{}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("k8senv: %s: %w", path, err)
		}
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return nil, fmt.Errorf("k8senv: %s: %w", path, err)
		}
		if len(probe) == 0 { // only comments
			continue
		}
		obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("k8senv: %s: %w", path, err)
		}
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			if r.ServiceAccount != nil {
				return nil, fmt.Errorf("k8senv: %s: more than one ServiceAccount", path)
			}
			r.ServiceAccount = o
		case *rbacv1.ClusterRole:
			r.ClusterRoles = append(r.ClusterRoles, o)
		case *rbacv1.RoleBinding:
			r.RoleBindings = append(r.RoleBindings, o)
		default:
			return nil, fmt.Errorf("k8senv: %s: unexpected %s %q (only ServiceAccount, ClusterRole, RoleBinding are allowed)",
				path, gvk.Kind, o.(metav1.Object).GetName())
		}
	}
	if r.ServiceAccount == nil || r.ServiceAccount.Namespace == "" {
		return nil, fmt.Errorf("k8senv: %s: no namespaced ServiceAccount", path)
	}
	if len(r.ClusterRoles) == 0 || len(r.RoleBindings) == 0 {
		return nil, fmt.Errorf("k8senv: %s: needs at least one ClusterRole and one RoleBinding", path)
	}
	return r, nil
}

// RouterKubeconfig gives the router's identity access to exactly the given
// namespaces and returns the path of a kubeconfig for that identity:
//
//   - creates the ServiceAccount's namespace and the given namespaces if
//     missing;
//   - applies deploy/rbac.yaml as shipped, except that each RoleBinding in it
//     is created in every given namespace (instead of its example namespace)
//     and removed from every other namespace;
//   - waits until RBAC allows the router in the given namespaces and denies
//     it elsewhere;
//   - obtains a token for the ServiceAccount with the TokenRequest API and
//     writes a kubeconfig using it (valid for RouterTokenTTL).
//
// All kubeconfigs it returns are the same identity, so each call changes the
// grants of the kubeconfigs returned earlier too.
func (c *Cluster) RouterKubeconfig(ctx context.Context, namespaces ...string) (string, error) {
	rbac, err := LoadRouterRBAC(filepath.Join(c.RepoRoot, RBACManifest))
	if err != nil {
		return "", err
	}
	cs, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		return "", err
	}
	sa := rbac.ServiceAccount
	for _, ns := range append([]string{sa.Namespace}, namespaces...) {
		if err := ensureNamespace(ctx, cs, ns); err != nil {
			return "", err
		}
	}
	if err := ensureServiceAccount(ctx, cs, sa.DeepCopy()); err != nil {
		return "", err
	}
	for _, cr := range rbac.ClusterRoles {
		if err := createOrUpdateClusterRole(ctx, cs, cr.DeepCopy()); err != nil {
			return "", err
		}
	}
	var revoked []string
	for _, tmpl := range rbac.RoleBindings {
		for _, ns := range namespaces {
			rb := tmpl.DeepCopy()
			rb.Namespace = ns
			if err := createOrUpdateRoleBinding(ctx, cs, rb); err != nil {
				return "", err
			}
		}
		existing, err := cs.RbacV1().RoleBindings("").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + tmpl.Name})
		if err != nil {
			return "", fmt.Errorf("k8senv: listing RoleBindings: %w", err)
		}
		for _, rb := range existing.Items {
			if !slices.Contains(namespaces, rb.Namespace) {
				err := cs.RbacV1().RoleBindings(rb.Namespace).Delete(ctx, rb.Name, metav1.DeleteOptions{})
				if err != nil && !apierrors.IsNotFound(err) {
					return "", fmt.Errorf("k8senv: deleting RoleBinding %s/%s: %w", rb.Namespace, rb.Name, err)
				}
				revoked = append(revoked, rb.Namespace)
			}
		}
	}
	if err := waitForGrants(ctx, cs, rbac, namespaces, revoked); err != nil {
		return "", err
	}

	ttl := int64(RouterTokenTTL / time.Second)
	tr, err := cs.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}},
		metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("k8senv: TokenRequest for %s: %w", rbac.Username(), err)
	}

	cfg, err := clientcmd.LoadFromFile(c.AdminKubeconfig)
	if err != nil {
		return "", fmt.Errorf("k8senv: %w", err)
	}
	cfg.AuthInfos = map[string]*clientcmdapi.AuthInfo{sa.Name: {Token: tr.Status.Token}}
	for _, kctx := range cfg.Contexts {
		kctx.AuthInfo = sa.Name
	}
	c.mu.Lock()
	c.routerN++
	path := filepath.Join(c.StateDir, fmt.Sprintf("router-%d.kubeconfig", c.routerN))
	c.mu.Unlock()
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("k8senv: %w", err)
	}
	return path, nil
}

// waitForGrants polls SubjectAccessReviews until the authorizer's caches
// reflect the RoleBindings: the first rule of the first ClusterRole is
// allowed in the granted namespaces and denied in the revoked ones (and in
// "default", unless granted).
func waitForGrants(ctx context.Context, cs kubernetes.Interface, rbac *RouterRBAC, granted, revoked []string) error {
	rules := rbac.ClusterRoles[0].Rules
	if len(rules) == 0 || len(rules[0].APIGroups) == 0 || len(rules[0].Resources) == 0 || len(rules[0].Verbs) == 0 {
		return nil
	}
	rule := rules[0]
	check := map[string]bool{"default": false}
	for _, ns := range revoked {
		check[ns] = false
	}
	for _, ns := range granted {
		check[ns] = true
	}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		for ns, want := range check {
			sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
				Spec: authorizationv1.SubjectAccessReviewSpec{
					User: rbac.Username(),
					ResourceAttributes: &authorizationv1.ResourceAttributes{
						Namespace: ns, Verb: rule.Verbs[0], Group: rule.APIGroups[0], Resource: rule.Resources[0],
					},
				},
			}, metav1.CreateOptions{})
			if err != nil {
				return false, err
			}
			if sar.Status.Allowed != want {
				last = fmt.Sprintf("%s %s.%s in %q: allowed=%v, want %v",
					rule.Verbs[0], rule.Resources[0], rule.APIGroups[0], ns, sar.Status.Allowed, want)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("k8senv: RBAC for %s did not take effect (%s): %w", rbac.Username(), last, err)
	}
	return nil
}

func ensureNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("k8senv: creating namespace %s: %w", name, err)
	}
	return nil
}

func ensureServiceAccount(ctx context.Context, cs kubernetes.Interface, sa *corev1.ServiceAccount) error {
	_, err := cs.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("k8senv: creating ServiceAccount %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	return nil
}

func createOrUpdateClusterRole(ctx context.Context, cs kubernetes.Interface, cr *rbacv1.ClusterRole) error {
	api := cs.RbacV1().ClusterRoles()
	_, err := api.Create(ctx, cr, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		var cur *rbacv1.ClusterRole
		if cur, err = api.Get(ctx, cr.Name, metav1.GetOptions{}); err == nil {
			cr.ResourceVersion = cur.ResourceVersion
			_, err = api.Update(ctx, cr, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("k8senv: applying ClusterRole %s: %w", cr.Name, err)
	}
	return nil
}

func createOrUpdateRoleBinding(ctx context.Context, cs kubernetes.Interface, rb *rbacv1.RoleBinding) error {
	api := cs.RbacV1().RoleBindings(rb.Namespace)
	_, err := api.Create(ctx, rb, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		var cur *rbacv1.RoleBinding
		if cur, err = api.Get(ctx, rb.Name, metav1.GetOptions{}); err == nil {
			if cur.RoleRef != rb.RoleRef { // roleRef is immutable
				if err = api.Delete(ctx, rb.Name, metav1.DeleteOptions{}); err == nil {
					_, err = api.Create(ctx, rb, metav1.CreateOptions{})
				}
			} else {
				rb.ResourceVersion = cur.ResourceVersion
				_, err = api.Update(ctx, rb, metav1.UpdateOptions{})
			}
		}
	}
	if err != nil {
		return fmt.Errorf("k8senv: applying RoleBinding %s/%s: %w", rb.Namespace, rb.Name, err)
	}
	return nil
}

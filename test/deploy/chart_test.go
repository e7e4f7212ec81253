package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// valueSets are the configurations every test renders: the defaults and
// each option the chart offers.
var valueSets = []struct {
	name  string
	files []string
}{
	{name: "default"},
	{name: "nats-cluster", files: []string{"nats-cluster.yaml"}},
	{name: "git-sync", files: []string{"git-sync.yaml"}},
	{name: "external-nats", files: []string{"external-nats.yaml"}},
	{name: "report", files: []string{"report.yaml"}},
}

func TestHelmLint(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir}
			for _, f := range vs.files {
				args = append(args, "-f", filepath.Join("test", "deploy", "testdata", f))
			}
			if out, err := helm(t, args...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// TestRenderRefusesUnsafeValues: values that would break a contract fail at
// render time rather than in the cluster.
func TestRenderRefusesUnsafeValues(t *testing.T) {
	tests := []struct {
		name string
		sets []string
		want string
	}{
		{"replicas on embedded NATS", []string{"replicaCount=2"}, "replicaCount > 1 needs a shared NATS"},
		{"credentials in the NATS URL", []string{"nats.mode=external", "nats.external.url=nats://u:p@nats:4222"}, "must not hold credentials"},
		{"external without URL", []string{"nats.mode=external"}, "needs nats.external.url"},
		{"two NATS credentials", []string{"nats.mode=external", "nats.external.url=nats://nats:4222",
			"nats.external.auth.secretName=s", "nats.external.auth.credsKey=a", "nats.external.auth.userFileKey=b"}, "at most one of"},
		{"even NATS cluster", []string{"nats.mode=cluster", "nats.cluster.replicas=4"}, "must be odd"},
		{"configMap rules without root", []string{"rules.source=configMap"}, "needs rules.files with root.yaml"},
		{"git-sync without repo", []string{"rules.source=gitSync"}, "needs rules.gitSync.repo"},
		{"unknown NATS mode", []string{"nats.mode=sidecar"}, "value must be one of"},
		// values.schema.json: a misspelt value is an error, not a silent default.
		{"misspelt value", []string{"nats.mdoe=cluster"}, "additional properties 'mdoe' not allowed"},
		{"negative drain delay", []string{"shutdown.drainDelaySeconds=-1"}, "/shutdown/drainDelaySeconds"},
		{"credentials in the CDEvents sink", []string{"report.cdeventsSink=https://u:p@sink.example.com/"}, "use report.cdeventsSinkSecret"},
		{"token in the CDEvents sink", []string{"report.cdeventsSink=https://sink.example.com/?token=t"}, "use report.cdeventsSinkSecret"},
		{"two CDEvents sinks", []string{"report.cdeventsSink=https://sink.example.com/", "report.cdeventsSinkSecret.name=s", "report.cdeventsSinkSecret.key=url"}, "not both"},
		{"CDEvents sink not a URL", []string{"report.cdeventsSink=sink:80"}, "/report/cdeventsSink"},
		{"report resync not a duration", []string{"report.resync=soon"}, "/report/resync"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := helm(t, renderArgs("switchyard", nil, tt.sets)...)
			if err == nil {
				t.Fatalf("rendered without error:\n%s", out)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error does not say %q: %v", tt.want, err)
			}
		})
	}
}

// TestRenderedRouter checks the router's Deployment in every configuration:
// non-root, read-only root filesystem with a writable data dir, probes,
// resources, and a termination grace that covers the drain and the grace.
func TestRenderedRouter(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			objs := render(t, "switchyard", vs.files)
			for _, o := range objs {
				switch o.GetKind() {
				case "ClusterRoleBinding":
					t.Errorf("ClusterRoleBinding %s rendered: the router must be bound per namespace", o.GetName())
				case "Secret":
					t.Errorf("Secret %s rendered: secrets are referenced, never created from values", o.GetName())
				}
			}
			var d appsv1.Deployment
			fromUnstructured(t, one(t, objs, "Deployment", "switchyard"), &d)
			checkPod(t, d.Spec.Template.Spec)
			router := container(t, d.Spec.Template.Spec.Containers, "router")
			checkRouterContainer(t, router, d.Spec.Template.Spec)
			checkShutdown(t, router, d.Spec.Template.Spec)
		})
	}
}

func checkPod(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("container %s has no securityContext", c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}):
			t.Errorf("container %s does not drop all capabilities", c.Name)
		}
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("container %s has no memory request or limit", c.Name)
		}
	}
}

func checkRouterContainer(t *testing.T, c corev1.Container, pod corev1.PodSpec) {
	t.Helper()
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}, {"startup", c.StartupProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s probe is not an HTTP GET of %s: %+v", p.name, p.path, p.probe)
		}
	}
	// The data dir must be writable although the root filesystem is not.
	dataDir := flagValue(t, c.Args, "--data-dir")
	vol := mountedVolume(t, c, pod, dataDir)
	if vol.EmptyDir == nil && vol.PersistentVolumeClaim == nil {
		t.Errorf("--data-dir %s is not on an emptyDir or a PVC: %+v", dataDir, vol.VolumeSource)
	}
	for _, m := range c.VolumeMounts {
		if m.MountPath == dataDir && m.ReadOnly {
			t.Errorf("--data-dir %s is mounted read-only", dataDir)
		}
	}
	if got := flagValue(t, c.Args, "--dispatch"); got != "kube" {
		t.Errorf("--dispatch=%s, want kube (never silently write YAML files in a cluster)", got)
	}
}

// checkShutdown: Kubernetes must not SIGKILL the router before its drain
// delay and shutdown grace have run.
func checkShutdown(t *testing.T, c corev1.Container, pod corev1.PodSpec) {
	t.Helper()
	drain := seconds(t, flagValue(t, c.Args, "--drain-delay"))
	grace := seconds(t, flagValue(t, c.Args, "--shutdown-grace"))
	var preStop int64
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if c.Lifecycle.PreStop.Sleep == nil {
			t.Fatalf("router preStop is not a sleep: %+v", c.Lifecycle.PreStop)
		}
		preStop = c.Lifecycle.PreStop.Sleep.Seconds
	}
	if pod.TerminationGracePeriodSeconds == nil {
		t.Fatal("no terminationGracePeriodSeconds")
	}
	if got, min := *pod.TerminationGracePeriodSeconds, preStop+drain+grace; got <= min {
		t.Errorf("terminationGracePeriodSeconds %d does not exceed preStop %ds + drain %ds + grace %ds", got, preStop, drain, grace)
	}
}

func TestRenderedDefaults(t *testing.T) {
	objs := render(t, "switchyard", nil)
	var d appsv1.Deployment
	fromUnstructured(t, one(t, objs, "Deployment", "switchyard"), &d)
	c := container(t, d.Spec.Template.Spec.Containers, "router")
	// The router's own defaults (README.md): 5s drain, 20s grace.
	if got := flagValue(t, c.Args, "--drain-delay"); got != "5s" {
		t.Errorf("--drain-delay=%s, want 5s", got)
	}
	if got := flagValue(t, c.Args, "--shutdown-grace"); got != "20s" {
		t.Errorf("--shutdown-grace=%s, want 20s", got)
	}
	if hasFlag(c.Args, "--nats-url") {
		t.Error("default (embedded NATS) passes --nats-url")
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("embedded NATS strategy %q, want Recreate (one store, one pod)", d.Spec.Strategy.Type)
	}
	// Accepted events must survive a rescheduled pod: the embedded store is
	// on the chart's PersistentVolumeClaim.
	data := mountedVolume(t, c, d.Spec.Template.Spec, flagValue(t, c.Args, "--data-dir"))
	if data.PersistentVolumeClaim == nil || data.PersistentVolumeClaim.ClaimName != "switchyard-data" {
		t.Errorf("embedded store not on PVC switchyard-data: %+v", data.VolumeSource)
	}
	one(t, objs, "PersistentVolumeClaim", "switchyard-data")
	one(t, objs, "Service", "switchyard")
	one(t, objs, "ServiceAccount", "switchyard")
	one(t, objs, "PodDisruptionBudget", "switchyard")
	if o := find(objs, "ServiceMonitor", "switchyard"); o != nil {
		t.Error("ServiceMonitor rendered although serviceMonitor.enabled is false")
	}
}

func TestRenderedEmbeddedWithoutPersistence(t *testing.T) {
	objs := render(t, "switchyard", nil, "nats.embedded.persistence.enabled=false")
	if o := find(objs, "PersistentVolumeClaim", "switchyard-data"); o != nil {
		t.Error("PVC rendered although persistence is off")
	}
	var d appsv1.Deployment
	fromUnstructured(t, one(t, objs, "Deployment", "switchyard"), &d)
	c := container(t, d.Spec.Template.Spec.Containers, "router")
	if data := mountedVolume(t, c, d.Spec.Template.Spec, flagValue(t, c.Args, "--data-dir")); data.EmptyDir == nil {
		t.Errorf("data dir without persistence is not an emptyDir: %+v", data.VolumeSource)
	}
}

// TestRenderedRBACMatchesDeployRBAC: the chart grants exactly what
// deploy/rbac.yaml grants, bound per namespace of rbac.namespaces.
func TestRenderedRBACMatchesDeployRBAC(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := decodeObjects(string(data))
	if err != nil {
		t.Fatal(err)
	}
	var want rbacv1.ClusterRole
	fromUnstructured(t, one(t, shipped, "ClusterRole", "switchyard-router-pipelineruns"), &want)

	objs := render(t, "switchyard", []string{"git-sync.yaml"})
	var got rbacv1.ClusterRole
	fromUnstructured(t, one(t, objs, "ClusterRole", "switchyard-pipelineruns"), &got)
	if diff := cmp.Diff(want.Rules, got.Rules); diff != "" {
		t.Errorf("chart ClusterRole rules differ from deploy/rbac.yaml (-rbac.yaml +chart):\n%s", diff)
	}
	var bound []string
	for _, o := range objs {
		if o.GetKind() != "RoleBinding" {
			continue
		}
		var rb rbacv1.RoleBinding
		fromUnstructured(t, o, &rb)
		bound = append(bound, rb.Namespace)
		wantRef := rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "switchyard-pipelineruns"}
		if rb.RoleRef != wantRef {
			t.Errorf("RoleBinding in %s refers to %+v", rb.Namespace, rb.RoleRef)
		}
		wantSubj := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "switchyard", Namespace: "switchyard"}}
		if diff := cmp.Diff(wantSubj, rb.Subjects); diff != "" {
			t.Errorf("RoleBinding in %s subjects (-want +got):\n%s", rb.Namespace, diff)
		}
	}
	if want := []string{"ci", "payments-ci"}; !slices.Equal(bound, want) {
		t.Errorf("RoleBindings in %v, want one in each of %v", bound, want)
	}
}

func TestRenderedNATSCluster(t *testing.T) {
	objs := render(t, "switchyard", []string{"nats-cluster.yaml"})
	var sts appsv1.StatefulSet
	fromUnstructured(t, one(t, objs, "StatefulSet", "switchyard-nats"), &sts)
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
		t.Errorf("NATS replicas %v, want 3", sts.Spec.Replicas)
	}
	if sts.Spec.ServiceName != "switchyard-nats-headless" {
		t.Errorf("serviceName %q", sts.Spec.ServiceName)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 || mountedVolumeName(sts.Spec.Template.Spec.Containers[0], "/data") != sts.Spec.VolumeClaimTemplates[0].Name {
		t.Error("the JetStream store (/data) is not on the volume claim template")
	}
	checkPod(t, sts.Spec.Template.Spec)
	// Writable despite the read-only root: the pid file the preStop signal reads.
	if run := mountedVolume(t, sts.Spec.Template.Spec.Containers[0], sts.Spec.Template.Spec, "/var/run/nats"); run.EmptyDir == nil {
		t.Errorf("/var/run/nats is not an emptyDir: %+v", run.VolumeSource)
	}

	var headless corev1.Service
	fromUnstructured(t, one(t, objs, "Service", "switchyard-nats-headless"), &headless)
	if headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Error("the routes' service is not headless with not-ready addresses published")
	}
	var cm corev1.ConfigMap
	fromUnstructured(t, one(t, objs, "ConfigMap", "switchyard-nats-config"), &cm)
	conf := cm.Data["nats.conf"]
	for i := range 3 {
		route := fmt.Sprintf("nats://switchyard-nats-%d.switchyard-nats-headless.switchyard.svc:6222", i)
		if !strings.Contains(conf, route) {
			t.Errorf("nats.conf has no route %s:\n%s", route, conf)
		}
	}
	for _, want := range []string{"jetstream {", "store_dir: /data", "max_payload: 33554432"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nats.conf lacks %q", want)
		}
	}

	var d appsv1.Deployment
	fromUnstructured(t, one(t, objs, "Deployment", "switchyard"), &d)
	c := container(t, d.Spec.Template.Spec.Containers, "router")
	if got := flagValue(t, c.Args, "--nats-url"); got != "nats://switchyard-nats.switchyard.svc:4222" {
		t.Errorf("--nats-url=%s", got)
	}
	if got := flagValue(t, c.Args, "--stream-replicas"); got != "3" {
		t.Errorf("--stream-replicas=%s, want 3", got)
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		t.Error("a shared NATS does not need Recreate")
	}
	if data := mountedVolume(t, c, d.Spec.Template.Spec, flagValue(t, c.Args, "--data-dir")); data.EmptyDir == nil {
		t.Errorf("with a shared NATS the data dir is not an emptyDir: %+v", data.VolumeSource)
	}
	if o := find(objs, "PersistentVolumeClaim", "switchyard-data"); o != nil {
		t.Error("embedded store PVC rendered with a shared NATS")
	}
	one(t, objs, "ServiceMonitor", "switchyard")
	one(t, objs, "NetworkPolicy", "switchyard-nats")
	one(t, objs, "PodDisruptionBudget", "switchyard-nats")
}

func TestRenderedGitSync(t *testing.T) {
	objs := render(t, "switchyard", []string{"git-sync.yaml"})
	var d appsv1.Deployment
	fromUnstructured(t, one(t, objs, "Deployment", "switchyard"), &d)
	pod := d.Spec.Template.Spec
	initSync := container(t, pod.InitContainers, "git-sync-init")
	sidecar := container(t, pod.Containers, "git-sync")
	if !slices.Contains(initSync.Args, "--one-time") || slices.Contains(sidecar.Args, "--one-time") {
		t.Error("want a one-time init sync and a periodic sidecar")
	}
	router := container(t, pod.Containers, "router")
	rules := flagValue(t, router.Args, "--rules")
	if rules != "/var/run/switchyard/git/current/rules" {
		t.Errorf("--rules=%s", rules)
	}
	// The router reads the checkout git-sync writes, read-only.
	if mountedVolumeName(router, "/var/run/switchyard/git") != "git" || mountedVolumeName(sidecar, "/git") != "git" {
		t.Error("router and git-sync do not share the git volume")
	}
	if got := flagValue(t, sidecar.Args, "--ssh-key-file"); got != "/etc/git-secret/ssh" {
		t.Errorf("--ssh-key-file=%s", got)
	}
}

func TestRenderedExternalNATS(t *testing.T) {
	objs := render(t, "switchyard", []string{"external-nats.yaml"})
	var d appsv1.Deployment
	fromUnstructured(t, one(t, objs, "Deployment", "switchyard"), &d)
	pod := d.Spec.Template.Spec
	c := container(t, pod.Containers, "router")
	for flag, secret := range map[string]string{
		"--nats-creds":    "switchyard-nats-creds",
		"--nats-tls-ca":   "switchyard-nats-tls",
		"--nats-tls-cert": "switchyard-nats-tls",
		"--nats-tls-key":  "switchyard-nats-tls",
	} {
		path := flagValue(t, c.Args, flag)
		vol := mountedVolume(t, c, pod, filepath.Dir(path))
		if vol.Secret == nil || vol.Secret.SecretName != secret {
			t.Errorf("%s=%s is not in Secret %s: %+v", flag, path, secret, vol.VolumeSource)
		}
	}
	if got := flagValue(t, c.Args, "--stream-replicas"); got != "3" {
		t.Errorf("--stream-replicas=%s, want 3", got)
	}
	vol := mountedVolume(t, c, pod, "/etc/switchyard/secrets/github")
	if vol.Secret == nil || vol.Secret.SecretName != "github-webhook" {
		t.Errorf("secret file mount: %+v", vol.VolumeSource)
	}
	// The rules ConfigMap keeps the directory layout through item paths.
	rulesVol := mountedVolume(t, c, pod, flagValue(t, c.Args, "--rules"))
	if rulesVol.ConfigMap == nil {
		t.Fatalf("rules are not a ConfigMap volume: %+v", rulesVol.VolumeSource)
	}
	var cm corev1.ConfigMap
	fromUnstructured(t, one(t, objs, "ConfigMap", rulesVol.ConfigMap.Name), &cm)
	for _, item := range rulesVol.ConfigMap.Items {
		if _, ok := cm.Data[item.Key]; !ok {
			t.Errorf("volume item %s -> %s has no key in the ConfigMap", item.Key, item.Path)
		}
	}
	paths := make([]string, 0, len(rulesVol.ConfigMap.Items))
	for _, item := range rulesVol.ConfigMap.Items {
		paths = append(paths, item.Path)
	}
	if want := []string{"apps/web.yaml", "root.yaml"}; !slices.Equal(paths, want) {
		t.Errorf("rules files %v, want %v", paths, want)
	}
	if _, ok := d.Spec.Template.Annotations["checksum/rules"]; !ok {
		t.Error("no checksum/rules annotation: a rules change would not roll the pods")
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds != 3 {
		t.Errorf("preStop: %+v", c.Lifecycle)
	}
}

func one(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o := find(objs, kind, name)
	if o == nil {
		t.Fatalf("no %s %s rendered", kind, name)
	}
	return o
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func fromUnstructured(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	// Strict: a field the typed API does not know is a template bug.
	data, err := u.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

func container(t *testing.T, cs []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

func hasFlag(args []string, name string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, name+"=") })
}

// flagValue returns the value of --name=value in args (the chart always
// writes flags in that form).
func flagValue(t *testing.T, args []string, name string) string {
	t.Helper()
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	t.Fatalf("no %s in %q", name, args)
	return ""
}

func seconds(t *testing.T, d string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscanf(d, "%ds", &n); err != nil || fmt.Sprintf("%ds", n) != d {
		t.Fatalf("duration %q is not whole seconds", d)
	}
	return n
}

func mountedVolumeName(c corev1.Container, path string) string {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return m.Name
		}
	}
	return ""
}

// mountedVolume returns the volume mounted at path (or at a parent of it).
func mountedVolume(t *testing.T, c corev1.Container, pod corev1.PodSpec, path string) corev1.Volume {
	t.Helper()
	var name string
	for _, m := range c.VolumeMounts {
		if path == m.MountPath || strings.HasPrefix(path, m.MountPath+"/") {
			name = m.Name
		}
	}
	for _, v := range pod.Volumes {
		if name != "" && v.Name == name {
			return v
		}
	}
	t.Fatalf("nothing mounted at %s in container %s", path, c.Name)
	return corev1.Volume{}
}

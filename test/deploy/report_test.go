package deploy

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// TestHelmReportFlags: the report values become serve's flags; a sink from
// a Secret reaches the router through an environment variable Kubernetes
// expands in the args, so the URL (and its token) stays out of the pod
// spec; by default no CDEvents flag is passed at all.
func TestHelmReportFlags(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		sets  []string
		want  []string
		env   bool
	}{
		{name: "default"},
		{name: "sink", sets: []string{"report.cdeventsSink=https://cdevents.example.com/events"},
			want: []string{"--cdevents-sink=https://cdevents.example.com/events", "--cdevents-subject=switchyard.cdevents."}},
		{name: "sink over HTTP only", sets: []string{"report.cdeventsSink=http://sink.ci.svc/", "report.cdeventsSubject="},
			want: []string{"--cdevents-sink=http://sink.ci.svc/", "--cdevents-subject="}},
		{name: "sink from a secret", files: []string{"report.yaml"}, env: true,
			want: []string{"--cdevents-sink=$(SWITCHYARD_CDEVENTS_SINK)", "--cdevents-subject=ci.cdevents.", "--report-resync=30s", "--report-max-attempts=20"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d appsv1.Deployment
			fromUnstructured(t, one(t, render(t, "switchyard", tt.files, tt.sets...), "Deployment", "switchyard"), &d)
			c := container(t, d.Spec.Template.Spec.Containers, "router")
			var got []string
			for _, a := range c.Args {
				if strings.HasPrefix(a, "--cdevents-") || strings.HasPrefix(a, "--report-") {
					got = append(got, a)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("report flags %q, want %q", got, tt.want)
			}
			var env bool
			for _, e := range c.Env {
				if e.Name == "SWITCHYARD_CDEVENTS_SINK" {
					env = e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
						e.ValueFrom.SecretKeyRef.Name == "cdevents-sink" && e.ValueFrom.SecretKeyRef.Key == "url"
				}
			}
			if env != tt.env {
				t.Errorf("SWITCHYARD_CDEVENTS_SINK from the secret: %v, want %v (%+v)", env, tt.env, c.Env)
			}
		})
	}
}

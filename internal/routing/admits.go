package routing

import (
	"errors"
	"fmt"
	"slices"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)

// ErrNotGranted is what Admits' errors match (errors.Is): the rules in
// force no longer allow the target, a permanent refusal.
var ErrNotGranted = errors.New("target no longer granted")

// grantError is an Admits refusal; its message names what is no longer
// granted.
type grantError string

func (e grantError) Error() string        { return string(e) }
func (e grantError) Is(target error) bool { return target == ErrNotGranted }

func notGranted(format string, args ...any) error { return grantError(fmt.Sprintf(format, args...)) }

// Admits reports whether, under these rules, an event from source
// authenticated as identity may still run t, a target routed earlier
// (perhaps by other rules): the app and its trigger exist, the app's grant
// and the trigger's sources and identities admit the caller as Route
// does, and the namespace and service accounts, the rendered run's
// (PipelineRun or TaskRun) included, are granted. Dispatch asks it before creating, so a grant
// withdrawn after routing stops the run. The error matches ErrNotGranted
// and names what is no longer granted.
func (r *Rules) Admits(source, identity string, t Target) error {
	i := slices.IndexFunc(r.apps, func(a *app) bool { return a.name == t.App })
	if i < 0 {
		return notGranted("app %q no longer exists", t.App)
	}
	a := r.apps[i]
	j := slices.IndexFunc(a.triggers, func(tr *trigger) bool { return tr.name == t.Trigger })
	if j < 0 {
		return notGranted("app %q no longer has trigger %q", a.name, t.Trigger)
	}
	if !a.admits(source, identity) {
		return notGranted("app %q no longer grants source %q or identity %q", a.name, source, identity)
	}
	if !a.triggers[j].admits(source, identity) {
		return notGranted("trigger %q of app %q no longer admits source %q or identity %q", t.Trigger, a.name, source, identity)
	}
	namespaces := []string{t.Namespace}
	accounts := []string{t.ServiceAccount}
	if len(t.Resource) > 0 {
		run, err := decodeRun(t.Resource)
		if err != nil {
			return notGranted("app %q: resource: %v", a.name, err)
		}
		if run.kind() != t.RunKind() {
			return notGranted("app %q: resource is a %s, the target says %s", a.name, run.kind(), t.RunKind())
		}
		namespaces = append(namespaces, run.meta().Namespace)
		accounts = append(accounts, run.accounts()...)
	}
	for k, ns := range namespaces {
		if (k == 0 || ns != "") && !slices.Contains(a.namespaces, ns) {
			return notGranted("app %q no longer grants namespace %q", a.name, ns)
		}
	}
	for _, sa := range accounts {
		if sa != "" && !slices.Contains(a.serviceAccounts, sa) {
			return notGranted("app %q no longer grants service account %q", a.name, sa)
		}
	}
	return nil
}

// pipelineRunAccounts lists the service accounts a PipelineRun runs as:
// its taskRunTemplate's and every taskRunSpecs entry's ("" when unset).
func pipelineRunAccounts(pr *pipelinev1.PipelineRun) []string {
	sas := []string{pr.Spec.TaskRunTemplate.ServiceAccountName}
	for _, trs := range pr.Spec.TaskRunSpecs {
		sas = append(sas, trs.ServiceAccountName)
	}
	return sas
}

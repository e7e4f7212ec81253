// Package tektonimport turns a Tekton Triggers configuration (EventListeners,
// Triggers, TriggerGroups, TriggerBindings, ClusterTriggerBindings and
// TriggerTemplates, v1alpha1 or v1beta1) into a Switchyard rules directory:
// a root manifest with one source per interceptor kind and secret, one app
// per EventListener with the grant its triggers need, and the Tekton
// Triggers files copied unchanged as the apps' resources.
//
// The translation is conservative: a trigger whose behaviour depends on
// something Switchyard does not run (a webhook interceptor, a custom
// ClusterInterceptor, compareSecret, githubOwners) is not written, because
// writing it without that check would make it fire more often than it did.
// Each one is reported as a Note with the reason and the manual step.
package tektonimport

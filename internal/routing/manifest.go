package routing

import "go.yaml.in/yaml/v3"

// The YAML shape of the parent manifest. These types are decoded strictly:
// an unknown field is an error with its file and line. They are the input of
// compile(); nothing outside this package sees them. docs/manifest.md
// documents every field.

// APIVersion is the manifest schema version every file must declare.
const APIVersion = "switchyard.dev/v1alpha1"

// RootFileName is the root manifest's file name inside the rules directory.
const RootFileName = "root.yaml"

// rootFile is the root manifest, owned by the platform team. It is the
// security boundary: sources, and what each app is granted.
type rootFile struct {
	APIVersion string       `yaml:"apiVersion"`
	Kind       string       `yaml:"kind"`
	Sources    []sourceSpec `yaml:"sources"`
	Apps       []appGrant   `yaml:"apps"`
	// Endpoints are the scoped event endpoints for bots and agents.
	Endpoints []endpointSpec `yaml:"endpoints"`
	// Auditors are identities that may read any event's status.
	Auditors []string `yaml:"auditors"`
	// StatusURL is the target URL of the statuses reported to Git hosts, a
	// template with placeholders such as {namespace} and {name}.
	StatusURL string `yaml:"statusURL"`
}

// sourceSpec is one named webhook endpoint, /v1/hooks/<name>.
type sourceSpec struct {
	Name   string     `yaml:"name"`
	Kind   string     `yaml:"kind"`
	Secret *secretRef `yaml:"secret"`
	// APIToken, when set, lets ingest ask the provider's API for what a
	// webhook payload leaves out (the changed files of a truncated push).
	APIToken *secretRef `yaml:"apiToken"`
	// APIURL is the provider API's base URL (GitHub Enterprise Server:
	// https://github.example.com/api/v3); empty means the public API.
	APIURL string `yaml:"apiURL"`
	// Header names the request header carrying the shared token, for kinds
	// authenticated by a static header value; empty means the provider's
	// default (Authorization for harbor and distribution).
	Header string `yaml:"header"`
	// AllowSHA1 accepts GitHub's SHA-1 X-Hub-Signature when
	// X-Hub-Signature-256 is absent (old GitHub Enterprise Server). Off.
	AllowSHA1 bool `yaml:"allowSHA1"`
	// OIDC authenticates deliveries by a signed OIDC token in Authorization
	// instead of a secret (Google Pub/Sub push deliveries).
	OIDC *oidcSpec `yaml:"oidc"`
	// MaxBodyBytes caps this source's requests; 0 means the server's
	// default, at most MaxSourceBodyBytes.
	MaxBodyBytes int64 `yaml:"maxBodyBytes"`
	// Recover asks the Git host for the deliveries it failed (recover.go).
	Recover *recoverSpec `yaml:"recover"`
	// Report is how the results of the runs this source's events started
	// go back to the Git host: "status" (commit statuses) or "checks".
	Report string `yaml:"report"`
	// GitHubApp is the GitHub App that posts check runs (report: checks).
	GitHubApp *githubAppSpec `yaml:"githubApp"`
	// Commands grants pull request comment commands to provider logins.
	Commands *commandsSpec `yaml:"commands"`
}

// githubAppSpec names a GitHub App and where its private key is read.
type githubAppSpec struct {
	AppID int64 `yaml:"appID"`
	// InstallationID, when 0, is looked up per repository.
	InstallationID int64      `yaml:"installationID"`
	PrivateKey     *secretRef `yaml:"privateKey"`
}

// oidcSpec says which OIDC tokens a source accepts.
type oidcSpec struct {
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// JWKSURL is where the issuer's keys are fetched; empty means the
	// issuer's discovery document says.
	JWKSURL string `yaml:"jwksURL"`
	// Email, when set, is the only service account email accepted.
	Email string `yaml:"email"`
}

// secretRef names where a secret lives. The manifest never holds the secret
// itself: exactly one of Env or File is set.
type secretRef struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"`
}

// appGrant delegates to an app manifest and bounds it.
type appGrant struct {
	Name string `yaml:"name"`
	// Manifest is the app manifest's path, relative to the rules directory,
	// or a doublestar glob matching several files of the same app.
	Manifest        string   `yaml:"manifest"`
	Namespaces      []string `yaml:"namespaces"`
	ServiceAccounts []string `yaml:"serviceAccounts"`
	// Sources and Identities say who may trigger the app: an event is
	// admitted when its source is listed or its identity extension is.
	Sources    []string `yaml:"sources"`
	Identities []string `yaml:"identities"`
	// EventTypes, when set, bounds the event types the app's triggers may
	// match.
	EventTypes []string `yaml:"eventTypes"`
	// Approval, when set, holds the app's matching runs for an approver.
	Approval *approvalSpec `yaml:"approval"`
}

// appFile is an app manifest, owned by an app team.
type appFile struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Name       string `yaml:"name"`
	// Resources lists Tekton Triggers files (TriggerBinding,
	// ClusterTriggerBinding, TriggerTemplate), paths or globs relative to
	// this file, that triggers refer to by name.
	Resources []string      `yaml:"resources"`
	Triggers  []triggerSpec `yaml:"triggers"`
}

// triggerSpec is one trigger: what to match and what to run.
type triggerSpec struct {
	Name        string           `yaml:"name"`
	Match       matchSpec        `yaml:"match"`
	Run         runSpec          `yaml:"run"`
	Concurrency *concurrencySpec `yaml:"concurrency"`
	// Overlays are CEL overlays whose results bindings read as
	// $(extensions.<key>), as with Tekton's CEL interceptor.
	Overlays []overlaySpec `yaml:"overlays"`
}

// concurrencySpec bounds the PipelineRuns of one group (GitHub Actions'
// concurrency, for Tekton): Group is a template over the event, like a
// param value; its default is the app and trigger.
type concurrencySpec struct {
	Group string `yaml:"group"`
	// CancelInProgress cancels the group's older unfinished PipelineRuns
	// once a new one is created.
	CancelInProgress bool `yaml:"cancelInProgress"`
	// Limit, when above zero, is how many of the group's PipelineRuns may
	// run at once; the others are created pending and started in order.
	Limit int `yaml:"limit"`
}

// matchSpec conditions are combined with AND; an empty list matches
// anything. Globs use doublestar syntax; a leading "!" excludes.
type matchSpec struct {
	Types        []string `yaml:"types"`
	Sources      []string `yaml:"sources"`
	Identities   []string `yaml:"identities"`
	Repositories []string `yaml:"repositories"`
	Branches     []string `yaml:"branches"`
	Tags         []string `yaml:"tags"`
	Paths        []string `yaml:"paths"`
	// Actors are exact names (bot logins contain "[bot]", which a glob
	// would read as a character class); a leading "!" denies.
	Actors []string `yaml:"actors"`
	// When is a CEL expression with the variables of Tekton Triggers' CEL
	// interceptor plus event.
	When string `yaml:"when"`
}

// runSpec says what a matching trigger runs: a pipelineRef with its
// settings, or a Tekton Triggers template with bindings.
type runSpec struct {
	PipelineRef    string        `yaml:"pipelineRef"`
	Namespace      string        `yaml:"namespace"`
	ServiceAccount string        `yaml:"serviceAccount"`
	Timeout        string        `yaml:"timeout"`
	Timeouts       *timeoutsSpec `yaml:"timeouts"`
	Params         []paramSpec   `yaml:"params"`
	// Workspaces are Tekton WorkspaceBindings, decoded by Tekton's type.
	Workspaces []yaml.Node `yaml:"workspaces"`

	Bindings []bindingSpec `yaml:"bindings"`
	Template *templateSpec `yaml:"template"`
}

// timeoutsSpec is a PipelineRun's spec.timeouts, as Go durations.
type timeoutsSpec struct {
	Pipeline string `yaml:"pipeline"`
	Tasks    string `yaml:"tasks"`
	Finally  string `yaml:"finally"`
}

// paramSpec is a PipelineRun parameter. Value may hold Tekton Triggers
// binding expressions: $(body.x), $(header.x), $(extensions.x).
type paramSpec struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// bindingSpec is a Tekton Trigger's spec.bindings entry: an inline
// name/value, or a ref to a TriggerBinding (kind ClusterTriggerBinding for
// one of those) listed in the app's resources.
type bindingSpec struct {
	Name  string  `yaml:"name"`
	Value *string `yaml:"value"`
	Ref   string  `yaml:"ref"`
	Kind  string  `yaml:"kind"`
}

// templateSpec is a Tekton Trigger's spec.template: a ref to a
// TriggerTemplate listed in the app's resources, or an inline spec.
type templateSpec struct {
	Ref  string    `yaml:"ref"`
	Spec yaml.Node `yaml:"spec"`
}

package routing

// The YAML shape of the parent manifest. These types are decoded strictly:
// an unknown field is an error with its file and line. They are the input of
// compile(); nothing outside this package sees them.

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
}

// sourceSpec is one named webhook endpoint, /v1/hooks/<name>.
type sourceSpec struct {
	Name   string     `yaml:"name"`
	Kind   string     `yaml:"kind"`
	Secret *secretRef `yaml:"secret"`
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
	// Manifest is the app manifest's path, relative to the rules directory.
	Manifest        string   `yaml:"manifest"`
	Namespaces      []string `yaml:"namespaces"`
	ServiceAccounts []string `yaml:"serviceAccounts"`
	Sources         []string `yaml:"sources"`
	// EventTypes, when set, bounds the event types the app's triggers may
	// match.
	EventTypes []string `yaml:"eventTypes"`
}

// appFile is an app manifest, owned by an app team.
type appFile struct {
	APIVersion string        `yaml:"apiVersion"`
	Kind       string        `yaml:"kind"`
	Name       string        `yaml:"name"`
	Triggers   []triggerSpec `yaml:"triggers"`
}

// triggerSpec is one trigger: what to match and what to run.
type triggerSpec struct {
	Name  string    `yaml:"name"`
	Match matchSpec `yaml:"match"`
	Run   runSpec   `yaml:"run"`
}

// matchSpec conditions are combined with AND; an empty list matches
// anything. Globs use doublestar syntax; a leading "!" excludes.
type matchSpec struct {
	Types        []string `yaml:"types"`
	Repositories []string `yaml:"repositories"`
	Branches     []string `yaml:"branches"`
	Tags         []string `yaml:"tags"`
}

// runSpec says what a matching trigger runs.
type runSpec struct {
	PipelineRef    string      `yaml:"pipelineRef"`
	Namespace      string      `yaml:"namespace"`
	ServiceAccount string      `yaml:"serviceAccount"`
	Timeout        string      `yaml:"timeout"`
	Params         []paramSpec `yaml:"params"`
}

// paramSpec is a PipelineRun parameter. Value may hold Tekton Triggers
// binding expressions: $(body.x), $(header.x), $(extensions.x).
type paramSpec struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

package tektonimport

import "go.yaml.in/yaml/v3"

// The manifests written, as their YAML. They mirror the fields of
// docs/manifest.md that an import uses; routing reads them back (the
// import checks its output with the same loader as `router validate`).

type root struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Sources    []source `yaml:"sources"`
	Apps       []grant  `yaml:"apps"`
}

type source struct {
	Name   string    `yaml:"name"`
	Kind   string    `yaml:"kind"`
	Secret secretRef `yaml:"secret"`
}

type secretRef struct {
	Env  string `yaml:"env,omitempty"`
	File string `yaml:"file,omitempty"`
}

type grant struct {
	Name            string   `yaml:"name"`
	Manifest        string   `yaml:"manifest"`
	Namespaces      []string `yaml:"namespaces"`
	ServiceAccounts []string `yaml:"serviceAccounts"`
	Sources         []string `yaml:"sources"`
}

type app struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Name       string    `yaml:"name"`
	Resources  []string  `yaml:"resources,omitempty"`
	Triggers   []trigger `yaml:"triggers"`
}

type trigger struct {
	Name     string    `yaml:"name"`
	Match    match     `yaml:"match"`
	Overlays []overlay `yaml:"overlays,omitempty"`
	Run      run       `yaml:"run"`
}

type match struct {
	Sources []string `yaml:"sources"`
	When    string   `yaml:"when,omitempty"`
}

type overlay struct {
	Key        string `yaml:"key"`
	Expression string `yaml:"expression"`
}

type run struct {
	Namespace string    `yaml:"namespace,omitempty"`
	Bindings  []binding `yaml:"bindings,omitempty"`
	Template  template  `yaml:"template"`
}

type binding struct {
	Name  string  `yaml:"name,omitempty"`
	Value *string `yaml:"value,omitempty"`
	Ref   string  `yaml:"ref,omitempty"`
	Kind  string  `yaml:"kind,omitempty"`
}

type template struct {
	Ref  string     `yaml:"ref,omitempty"`
	Spec *yaml.Node `yaml:"spec,omitempty"`
}

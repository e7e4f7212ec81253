package tektonimport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tektoncd/triggers/pkg/apis/triggers/contexts"
	triggersv1alpha1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1alpha1"
	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// File is one input file, kept byte for byte: its bindings and templates
// are copied unchanged into the rules directory.
type File struct {
	Path string
	Data []byte
	// Resources is true when the file holds a TriggerBinding,
	// ClusterTriggerBinding or TriggerTemplate.
	Resources bool
}

// Config is what the input files declare, by kind. Bindings and templates
// are only named: Switchyard reads them itself from the copied files.
type Config struct {
	Files          []*File
	EventListeners []Located[triggersv1.EventListener]
	Triggers       []Located[triggersv1.Trigger]
	// Bindings, ClusterBindings and Templates map a name to the file that
	// declares it.
	Bindings        map[string]*File
	ClusterBindings map[string]*File
	Templates       map[string]*File
	// TemplateSpecs are the templates' specs, by name: the import reads the
	// namespaces and service accounts they run with.
	TemplateSpecs map[string]triggersv1.TriggerTemplateSpec
	// Ignored lists the other objects ("Pipeline/build in ci.yaml").
	Ignored []string
}

// Located is an object with the file that declared it.
type Located[T any] struct {
	Object T
	File   *File
}

const (
	groupV1beta1  = "triggers.tekton.dev/v1beta1"
	groupV1alpha1 = "triggers.tekton.dev/v1alpha1"
)

// ReadFiles reads Tekton Triggers YAML files (several documents each).
func ReadFiles(paths []string) (*Config, error) {
	c := &Config{Bindings: map[string]*File{}, ClusterBindings: map[string]*File{}, Templates: map[string]*File{}, TemplateSpecs: map[string]triggersv1.TriggerTemplateSpec{}}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		if err := c.add(&File{Path: p, Data: data}); err != nil {
			return nil, fmt.Errorf("import: %s: %w", p, err)
		}
	}
	return c, nil
}

// add decodes every document of f.
func (c *Config) add(f *File) error {
	c.Files = append(c.Files, f)
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(f.Data)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if err := c.addDocument(f, doc); err != nil {
			return fmt.Errorf("document %d: %w", i, err)
		}
	}
}

type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

func (c *Config) addDocument(f *File, doc []byte) error {
	var h header
	if err := yaml.Unmarshal(doc, &h); err != nil {
		return err
	}
	if h.Kind == "" {
		return nil // a comment-only document
	}
	if h.APIVersion != groupV1beta1 && h.APIVersion != groupV1alpha1 {
		c.Ignored = append(c.Ignored, fmt.Sprintf("%s/%s in %s", h.Kind, h.Metadata.Name, filepath.Base(f.Path)))
		return nil
	}
	switch h.Kind {
	case "TriggerBinding":
		c.Bindings[h.Metadata.Name], f.Resources = f, true
	case "ClusterTriggerBinding":
		c.ClusterBindings[h.Metadata.Name], f.Resources = f, true
	case "TriggerTemplate":
		// v1alpha1 and v1beta1 templates have the same schema.
		var tt triggersv1.TriggerTemplate
		if err := yaml.Unmarshal(doc, &tt); err != nil {
			return fmt.Errorf("kind TriggerTemplate %s: %w", h.Metadata.Name, err)
		}
		c.Templates[h.Metadata.Name], f.Resources = f, true
		c.TemplateSpecs[h.Metadata.Name] = tt.Spec
	case "EventListener":
		var el triggersv1.EventListener
		if err := decode(doc, h.APIVersion, &el, &triggersv1alpha1.EventListener{}); err != nil {
			return fmt.Errorf("kind EventListener %s: %w", h.Metadata.Name, err)
		}
		c.EventListeners = append(c.EventListeners, Located[triggersv1.EventListener]{el, f})
	case "Trigger":
		var t triggersv1.Trigger
		if err := decode(doc, h.APIVersion, &t, &triggersv1alpha1.Trigger{}); err != nil {
			return fmt.Errorf("kind Trigger %s: %w", h.Metadata.Name, err)
		}
		c.Triggers = append(c.Triggers, Located[triggersv1.Trigger]{t, f})
	default:
		c.Ignored = append(c.Ignored, fmt.Sprintf("%s/%s in %s", h.Kind, h.Metadata.Name, filepath.Base(f.Path)))
	}
	return nil
}

// defaulter is a v1alpha1 object: Tekton Triggers' own defaulting, run in
// upgrade mode, rewrites its deprecated interceptors (github:, cel: ...)
// into the ref + params form v1beta1 has.
type defaulter interface{ SetDefaults(context.Context) }

// decode reads doc into out (a v1beta1 object). A v1alpha1 document is
// decoded into old, upgraded by Tekton Triggers' defaulting, and then
// carried over as JSON: after the upgrade the two schemas are the same.
func decode(doc []byte, apiVersion string, out any, old defaulter) error {
	if apiVersion == groupV1beta1 {
		return yaml.UnmarshalStrict(doc, out)
	}
	if err := yaml.UnmarshalStrict(doc, old); err != nil {
		return err
	}
	old.SetDefaults(contexts.WithUpgradeViaDefaulting(context.Background()))
	data, err := json.Marshal(old)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
}

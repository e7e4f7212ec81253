package tektonimport

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

var notLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// dnsLabel makes a Tekton name a Switchyard name (a DNS label): Tekton
// allows dots and longer names, Switchyard names become NATS subject
// tokens and PipelineRun name parts.
func dnsLabel(name, fallback string) string {
	s := notLabel.ReplaceAllString(strings.ToLower(name), "-")
	if len(s) > 40 {
		s = s[:40]
	}
	s = strings.Trim(s, "-")
	if s == "" {
		return fallback
	}
	return s
}

// uniqueName returns name, or name-2, name-3... when taken, and takes it.
func uniqueName(name string, taken map[string]bool) string {
	n := name
	for i := 2; taken[n]; i++ {
		n = fmt.Sprintf("%s-%d", name, i)
	}
	taken[n] = true
	return n
}

// blockStyle clears the flow style a JSON document decodes with, so the
// written YAML reads like hand-written YAML; scalars are quoted again by
// the encoder only where needed.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

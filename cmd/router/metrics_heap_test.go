package main

import (
	"strings"
	"testing"
)

// TestMetricsServeTheLiveHeap: /metrics serves the heap the last garbage
// collection kept (go_gc_heap_live_bytes, what the bench's soak samples
// and memory is sized by) beside the Go runtime's usual series.
func TestMetricsServeTheLiveHeap(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "live-heap-secret")
	r := startRouter(t, t.TempDir())
	m := httpGet(t, r.url+"/metrics")
	live, found := 0.0, false
	eachSample([]byte(m), func(series string, v float64) {
		if series == "go_gc_heap_live_bytes" {
			live, found = v, true
		}
	})
	if !found || live <= 0 {
		t.Errorf("go_gc_heap_live_bytes = %v (found %v), want the live heap:\n%s", live, found, grepLines(m, "go_gc_heap"))
	}
	if !strings.Contains(m, "\ngo_goroutines ") {
		t.Errorf("the Go runtime's usual series are gone:\n%s", grepLines(m, "go_"))
	}
}

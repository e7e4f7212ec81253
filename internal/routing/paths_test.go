package routing

import "testing"

// TestMatchPaths: dispatch's matcher decides as a trigger's paths condition
// does, exclusions included.
func TestMatchPaths(t *testing.T) {
	tests := []struct {
		name  string
		globs []string
		files []string
		want  bool
	}{
		{name: "a file under an include", globs: []string{"src/**"}, files: []string{"README.md", "src/a/b.go"}, want: true},
		{name: "a literal", globs: []string{"go.mod"}, files: []string{"go.mod"}, want: true},
		{name: "excluded only", globs: []string{"src/**", "!src/**/*_test.go"}, files: []string{"src/a_test.go", "docs/x.md"}},
		{name: "only exclusions match the rest", globs: []string{"!**/*.md"}, files: []string{"docs/a.md", "main.go"}, want: true},
		{name: "only exclusions, all excluded", globs: []string{"!**/*.md"}, files: []string{"docs/a.md"}},
		{name: "no files", globs: []string{"src/**"}, files: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MatchPaths(tt.globs, tt.files)
			if err != nil || got != tt.want {
				t.Errorf("MatchPaths(%q, %q) = %v, %v; want %v", tt.globs, tt.files, got, err, tt.want)
			}
		})
	}
	if _, err := MatchPaths([]string{"src/[a"}, []string{"src/a"}); err == nil {
		t.Error("MatchPaths with an invalid glob: no error")
	}
}

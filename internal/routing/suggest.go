package routing

import (
	"fmt"
	"sort"
	"strings"
)

// Suggest returns the candidate closest to name when it is close enough to
// be a typo (a few edits, relative to the length), else "".
func Suggest(name string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(name), strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist < 0 || bestDist == 0 && best == name {
		return ""
	}
	limit := max(1, min(3, len(name)/4))
	if bestDist > limit {
		return ""
	}
	return best
}

// UnknownName is the message for a name that is not among known: what was
// meant, if it looks like a typo, and the valid names.
func UnknownName(what, name string, known []string) string {
	known = append([]string(nil), known...)
	sort.Strings(known)
	msg := fmt.Sprintf("no %s %q", what, name)
	if s := Suggest(name, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	if len(known) == 0 {
		return msg + "; none is defined"
	}
	return msg + "; known: " + strings.Join(known, ", ")
}

// editDistance is the optimal string alignment distance of a and b (bytes):
// insertions, deletions, substitutions and adjacent transpositions ("psuh").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

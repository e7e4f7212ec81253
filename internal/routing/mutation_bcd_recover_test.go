package routing

// Tests for NOT COVERED mutants of recover.go in the 859f522 run (its
// constants and recoverDuration's bounds), run by hand
// (docs/mutation-routing-bcd.md).

import (
	"testing"
	"time"
)

func recoverTimes(every, since string) string {
	return recoverRoot(`  - name: github
    kind: github
    secret: {env: GH_SECRET}
    apiToken: {env: GH_TOKEN}
    recover: {hooks: [{repository: acme/web, hookID: 9}]` + every + since + `}
`)
}

// every and since default to 15m and 24h; their bounds are inclusive:
// every at least 1m and unbounded above, since at most 7 days.
func TestMutRecoverDurationBounds(t *testing.T) {
	for _, tc := range []struct {
		every, since string
		want         Recover
	}{
		{"", "", Recover{Every: 15 * time.Minute, Since: 24 * time.Hour}},
		{", every: 1m", ", since: 168h", Recover{Every: time.Minute, Since: 7 * 24 * time.Hour}},
		{", every: 10000h", ", since: 1m", Recover{Every: 10000 * time.Hour, Since: time.Minute}},
	} {
		r := mustLoad(t, map[string]string{"root.yaml": recoverTimes(tc.every, tc.since), "apps/web.yaml": recoverApp})
		got := r.Source("github").Recover
		if got == nil || got.Every != tc.want.Every || got.Since != tc.want.Since {
			t.Errorf("%q %q: recover = %+v, want every %s since %s", tc.every, tc.since, got, tc.want.Every, tc.want.Since)
		}
	}
	wantProblems(t, map[string]string{"root.yaml": recoverTimes(", every: 59s", ", since: 168h1s"), "apps/web.yaml": recoverApp}, []string{
		`source "github": recover: every 59s is below the minimum 1m0s`,
		`source "github": recover: since 168h1s is beyond 168h0m0s`,
	})
}

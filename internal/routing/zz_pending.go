package routing

import "net/http"

// PENDING: replaced by the h-routing branch at merge.
func (r *Rules) Admits(source, identity string, t Target) error { return nil }

func (r *Rules) StripCredentials(h http.Header) http.Header { return h.Clone() }

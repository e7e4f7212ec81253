package routing

// SourceIdentity is the identity of the events a webhook source accepted:
// the one place the "source:" form is written (endpoints are
// Endpoint.Identity).
func SourceIdentity(source string) string { return identitySourcePrefix + source }

// RestrictsBranches reports whether the scope lists branches: an event that
// names no branch is then outside it.
func (s *Scope) RestrictsBranches() bool { return !s.Branches.empty() }

// RestrictsRefs reports whether the scope lists refs.
func (s *Scope) RestrictsRefs() bool { return !s.Refs.empty() }

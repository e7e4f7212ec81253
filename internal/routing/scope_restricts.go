package routing

// RestrictsBranches reports whether the scope lists branches: an event that
// names no branch is then outside it.
func (s *Scope) RestrictsBranches() bool { return !s.Branches.empty() }

// RestrictsRefs reports whether the scope lists refs.
func (s *Scope) RestrictsRefs() bool { return !s.Refs.empty() }

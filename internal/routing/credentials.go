package routing

import (
	"fmt"
	"net/http"
	"net/textproto"
	"regexp"
	"slices"
	"strings"
)

// Request headers reach rules through $(header.x) bindings and CEL's header
// variable. The headers a sender authenticates with must never be copied
// into a PipelineRun (where anyone who reads it can replay them), so load
// refuses a rule that names one, and StripCredentials removes them before
// any rule sees the headers. Ingest strips them too at runtime; a rule that
// reaches a header dynamically (header[body.name]) therefore sees nothing.

// credentialHeaders are the headers providers authenticate with (see
// internal/ingest: github, bitbucket, gitea/forgejo/gogs, gitlab, nexus,
// artifactory, cloudevents, generic-hmac, harbor, distribution, acr, gar
// and the agent endpoints), and the usual credential headers.
var credentialHeaders = []string{
	"Authorization",
	"Proxy-Authorization",
	"Cookie",
	"X-Hub-Signature",
	"X-Hub-Signature-256",
	"X-Gitlab-Token",
	"X-Gitea-Signature",
	"X-Gogs-Signature",
	"X-Forgejo-Signature",
	"X-Nexus-Webhook-Signature",
	"X-Jfrog-Event-Auth",
	"X-Signature",
	"X-Switchyard-Signature",
}

// credentialWords are parts of a header name that mark a credential,
// matched without regard to case.
var credentialWords = []string{"token", "signature", "secret", "password", "api-key", "apikey", "credential"}

// IsCredentialHeader reports whether a request header carries a credential
// (a token, a signature, a password): the headers every provider
// authenticates with, and any header whose name contains Token,
// Signature, Secret, Password, Api-Key or Credential, or ends in -Auth.
// The comparison ignores case.
func IsCredentialHeader(name string) bool {
	name = strings.TrimSpace(name)
	if slices.ContainsFunc(credentialHeaders, func(h string) bool { return strings.EqualFold(h, name) }) {
		return true
	}
	lower := strings.ToLower(name)
	if strings.HasSuffix(lower, "-auth") {
		return true
	}
	return slices.ContainsFunc(credentialWords, func(w string) bool { return strings.Contains(lower, w) })
}

// StripCredentials returns a copy of h without the credential headers
// (IsCredentialHeader) and without any header a source of these rules is
// configured to read its token from (`header:`). A nil h gives nil.
func (r *Rules) StripCredentials(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for k, v := range h {
		if r.isCredential(k) {
			continue
		}
		out[k] = slices.Clone(v)
	}
	return out
}

// isCredential is IsCredentialHeader plus the sources' configured headers.
func (r *Rules) isCredential(name string) bool {
	if r == nil {
		return IsCredentialHeader(name)
	}
	return isCredentialIn(r.tokenHeaders, name)
}

func (l *loader) isCredential(name string) bool { return isCredentialIn(l.tokenHeaders, name) }

// isCredentialIn reports whether name is a credential header or one of
// tokenHeaders (canonical).
func isCredentialIn(tokenHeaders []string, name string) bool {
	return IsCredentialHeader(name) || slices.Contains(tokenHeaders, textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name)))
}

// tokenHeaders lists, canonical, the `header:` every source names.
func tokenHeaders(sources map[string]*Source) []string {
	var out []string
	for _, s := range sources {
		if h := strings.TrimSpace(s.Header); h != "" {
			out = append(out, textproto.CanonicalMIMEHeaderKey(h))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// tektonExpressions returns the insides of the $(...) expressions in s,
// split the way Tekton Triggers' resolver splits them (at "$(", up to the
// first unbalanced ")"), so a check sees what the resolver will resolve.
func tektonExpressions(s string) []string {
	var out []string
	parts := strings.Split(s, "$(")
	for _, p := range parts[1:] {
		depth := 0
		for i, ch := range p {
			if ch == '(' {
				depth++
			} else if ch == ')' {
				depth--
				if depth < 0 {
					out = append(out, p[:i])
					break
				}
			}
		}
	}
	return out
}

// headerDotRE and headerIndexRE are the two ways a binding names one header:
// $(header.X-Name) and $(header['X-Name']).
var (
	headerDotRE   = regexp.MustCompile(`^header\.([A-Za-z0-9!#$%&'+^_` + "`" + `|~-]+)$`)
	headerIndexRE = regexp.MustCompile(`^header\[\s*(?:'([^']*)'|"([^"]*)")\s*\]$`)
)

// headerProblem says why a binding expression (the inside of $(...)) may
// not read a header, "" when it may or reads no header. isCredential
// decides which names are refused.
func headerProblem(expr string, isCredential func(string) bool) string {
	if expr != "header" && !strings.HasPrefix(expr, "header.") && !strings.HasPrefix(expr, "header[") {
		return ""
	}
	var name string
	if m := headerDotRE.FindStringSubmatch(expr); m != nil {
		name = m[1]
	} else if m := headerIndexRE.FindStringSubmatch(expr); m != nil {
		name = m[1] + m[2]
	} else {
		return fmt.Sprintf("%q must name one header, $(header.<name>): the whole header map would copy the caller's credentials", "$("+expr+")")
	}
	if isCredential(name) {
		return fmt.Sprintf("%q reads credential header %s: a secret must never be copied into a PipelineRun", "$("+expr+")", textproto.CanonicalMIMEHeaderKey(name))
	}
	return ""
}

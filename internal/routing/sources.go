package routing

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Compiling the root's sources: authentication, secrets, API access.

// compileSource always returns the source, so later checks can refer to
// it; its problems are recorded on the loader.
func (l *loader) compileSource(file string, node *yaml.Node, i int, s sourceSpec) *Source {
	at := func(field string) int { return lineOf(node, "sources", i, field) }
	if !nameRE.MatchString(s.Name) {
		l.addf(file, at("name"), "source name %q must be a DNS label (lowercase letters, digits, '-')", s.Name)
	}
	if s.Kind == "" {
		l.addf(file, at("kind"), "source %q: kind is required", s.Name)
	} else if l.opts.SourceKinds != nil && !slices.Contains(l.opts.SourceKinds, s.Kind) {
		l.addf(file, at("kind"), "source %q: unknown kind %q (known: %s)", s.Name, s.Kind, strings.Join(l.opts.SourceKinds, ", "))
	}
	src := &Source{Name: s.Name, Kind: s.Kind, APIURL: s.APIURL, Header: s.Header, AllowSHA1: s.AllowSHA1, MaxBodyBytes: s.MaxBodyBytes}
	src.Commands = l.compileCommands(file, func(path ...any) int { return lineOf(node, append([]any{"sources", i, "commands"}, path...)...) }, "source "+strconv.Quote(s.Name), s.Kind, s.Commands)
	if s.MaxBodyBytes < 0 || s.MaxBodyBytes > MaxSourceBodyBytes {
		l.addf(file, at("maxBodyBytes"), "source %q: maxBodyBytes %d must be between 1 and %d (25 MiB); leave it out for the server's default", s.Name, s.MaxBodyBytes, MaxSourceBodyBytes)
	}
	if o := s.OIDC; o != nil {
		if o.Issuer == "" || o.Audience == "" {
			l.addf(file, at("oidc"), "source %q: oidc needs issuer and audience", s.Name)
		}
		if o.Email == "" {
			l.addf(file, at("oidc"), "source %q: oidc needs email, the service account the push is signed for: "+
				"without it a token of any Google service account, for an audience anyone may choose, is accepted", s.Name)
		}
		src.OIDC = &OIDC{Issuer: o.Issuer, Audience: o.Audience, JWKSURL: o.JWKSURL, Email: o.Email}
	}
	switch {
	case s.Secret == nil && s.OIDC != nil:
		// Authenticated by the OIDC token alone.
	case s.Secret == nil:
		l.addf(file, at("name"), "source %q: secret is required (fail closed: a source without a secret is never an open door)", s.Name)
	case (s.Secret.Env == "") == (s.Secret.File == ""):
		l.addf(file, at("secret"), "source %q: secret needs exactly one of env or file", s.Name)
	default:
		src.SecretRef = *s.Secret
		if l.opts.ResolveSecrets {
			secrets, lines, err := s.Secret.resolveLines(l.opts.LookupEnv)
			if err != nil {
				l.addf(file, at("secret"), "source %q: %v", s.Name, err)
			} else {
				src.Secret, src.Secrets, src.secretLines = secrets[0], secrets, lines
			}
		}
	}
	if s.APIToken != nil {
		if (s.APIToken.Env == "") == (s.APIToken.File == "") {
			l.addf(file, at("apiToken"), "source %q: apiToken needs exactly one of env or file", s.Name)
		} else {
			src.APITokenRef = *s.APIToken
			if l.opts.ResolveSecrets {
				token, err := s.APIToken.resolve(l.opts.LookupEnv)
				if err != nil {
					l.addf(file, at("apiToken"), "source %q: apiToken: %v", s.Name, err)
				}
				src.APIToken = token
			}
		}
	}
	if s.APIURL != "" {
		u, err := url.Parse(s.APIURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			l.addf(file, at("apiURL"), "source %q: apiURL %q must be an http(s) URL such as https://github.example.com/api/v3", s.Name, s.APIURL)
		}
		if s.APIToken == nil && s.GitHubApp == nil {
			l.addf(file, at("apiURL"), "source %q: apiURL is set but apiToken is not: the API is only called with a token", s.Name)
		}
	}
	src.Recover = l.compileRecover(file, at, s)
	l.checkReport(file, at("report"), s, src)
	if l.opts.CheckSource != nil && s.Kind != "" {
		if err := l.opts.CheckSource(src); err != nil {
			l.addf(file, at("kind"), "source %q: %v", s.Name, err)
		}
	}
	return src
}

// resolve reads the secret. A trailing newline in a file is dropped, since
// `echo secret > file` is how most people write one.
func (r secretRef) resolve(lookupEnv func(string) (string, bool)) ([]byte, error) {
	if r.Env != "" {
		v, _ := lookupEnv(r.Env)
		if v == "" {
			return nil, fmt.Errorf("secret environment variable %s is not set or empty", r.Env)
		}
		return []byte(v), nil
	}
	data, err := os.ReadFile(r.File)
	if err != nil {
		return nil, fmt.Errorf("read secret file %s: %w", r.File, unwrapPathError(err))
	}
	data = bytes.TrimRight(data, "\r\n")
	if len(data) == 0 {
		return nil, fmt.Errorf("secret file %s is empty", r.File)
	}
	return data, nil
}

// resolveAll reads a source's secrets: one a line, so that during a
// rotation the new secret and the old one are both accepted. Blank lines and
// lines starting with # are skipped. A single line is taken whole, exactly
// as resolve reads it, so a one-secret file behaves as it always has.
func (r secretRef) resolveAll(lookupEnv func(string) (string, bool)) ([][]byte, error) {
	secrets, _, err := r.resolveLines(lookupEnv)
	return secrets, err
}

// resolveLines is resolveAll with the line (1-based) of each secret in the
// file or variable, which the audit trail names instead of the secret.
func (r secretRef) resolveLines(lookupEnv func(string) (string, bool)) ([][]byte, []int, error) {
	data, err := r.resolve(lookupEnv)
	if err != nil {
		return nil, nil, err
	}
	if !bytes.ContainsRune(data, '\n') {
		return [][]byte{data}, []int{1}, nil
	}
	var secrets [][]byte
	var lines []int
	n := 0
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		n++
		line = bytes.TrimSuffix(line, []byte("\r"))
		if trimmed := bytes.TrimSpace(line); len(trimmed) == 0 || trimmed[0] == '#' {
			continue
		}
		secrets, lines = append(secrets, line), append(lines, n)
	}
	if len(secrets) == 0 {
		return nil, nil, fmt.Errorf("secret %s lists no secret (only blank lines and # comments)", r.where())
	}
	return secrets, lines, nil
}

// where names the secret's file or variable, never its value.
func (r secretRef) where() string {
	if r.Env != "" {
		return "environment variable " + r.Env
	}
	return "file " + r.File
}

// SecretFiles lists the files the sources read secrets and API tokens
// from, and the endpoints their static token hashes, so a reloader can
// watch them: a rotated secret or token is picked up without a restart.
func (r *Rules) SecretFiles() []string {
	var files []string
	add := func(f string) {
		if f != "" && !slices.Contains(files, f) {
			files = append(files, f)
		}
	}
	for _, s := range r.sources {
		add(s.SecretRef.File)
		add(s.APITokenRef.File)
		if s.GitHubApp != nil {
			add(s.GitHubApp.PrivateKeyRef.File)
		}
	}
	for _, e := range r.endpoints {
		add(e.TokensRef.File)
	}
	slices.Sort(files)
	return files
}

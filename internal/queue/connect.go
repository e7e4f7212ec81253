package queue

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// ClientAuth is how a client proves itself to an external NATS server and
// checks the server's certificate, from files, so no secret has to sit in a
// URL (visible in ps, easily printed). The zero value adds nothing.
type ClientAuth struct {
	// At most one of CredsFile, NkeyFile and UserFile.
	CredsFile string // user JWT and nkey seed (.creds), as nsc writes it
	NkeyFile  string // nkey seed file
	UserFile  string // one line user:password
	// TLS: TLSCA is the PEM bundle the server's certificate must chain to;
	// TLSCert and TLSKey, given together, are the client's certificate.
	TLSCA   string
	TLSCert string
	TLSKey  string
}

// credentials reports whether a sets a user credential.
func (a ClientAuth) credentials() bool {
	return a.CredsFile != "" || a.NkeyFile != "" || a.UserFile != ""
}

// Options returns the nats options of a. It reads the nkey seed and the
// user file now, so a wrong path fails before any connection attempt;
// errors name the file, never its content.
func (a ClientAuth) Options() ([]nats.Option, error) {
	n := 0
	for _, f := range []string{a.CredsFile, a.NkeyFile, a.UserFile} {
		if f != "" {
			n++
		}
	}
	if n > 1 {
		return nil, errors.New("nats auth: give at most one of a creds file, an nkey file and a user file")
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		return nil, errors.New("nats auth: a client certificate needs both its certificate and its key file")
	}
	var opts []nats.Option
	switch {
	case a.CredsFile != "":
		// nats.go reads it at each connect; check now that it is there.
		if _, err := os.Stat(a.CredsFile); err != nil {
			return nil, fmt.Errorf("nats creds file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	case a.NkeyFile != "":
		o, err := nats.NkeyOptionFromSeed(a.NkeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey file %s: %w", a.NkeyFile, err)
		}
		opts = append(opts, o)
	case a.UserFile != "":
		user, password, err := readUserFile(a.UserFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserInfo(user, password))
	}
	if a.TLSCA != "" {
		opts = append(opts, nats.RootCAs(a.TLSCA))
	}
	if a.TLSCert != "" {
		opts = append(opts, nats.ClientCert(a.TLSCert, a.TLSKey))
	}
	return opts, nil
}

// readUserFile reads a file holding one line user:password.
func readUserFile(path string) (user, password string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("nats user file: %w", err)
	}
	line := strings.TrimSpace(string(data))
	user, password, ok := strings.Cut(line, ":")
	if !ok || user == "" || password == "" || strings.ContainsAny(line, "\r\n") {
		return "", "", fmt.Errorf("nats user file %s: want one line user:password", path)
	}
	return user, password, nil
}

// Connect connects to the NATS servers of serverURL (comma-separated) with
// auth and then opts. Its errors never hold the URL's user info.
func Connect(serverURL string, auth ClientAuth, opts ...nats.Option) (*nats.Conn, error) {
	shown := RedactURL(serverURL)
	for _, u := range strings.Split(serverURL, ",") {
		if err := checkURL(strings.TrimSpace(u)); err != nil {
			return nil, fmt.Errorf("connect nats %s: %w", shown, err)
		}
		if auth.credentials() && hasUserInfo(u) {
			return nil, fmt.Errorf("connect nats %s: credentials both in the url and in a file: give one", shown)
		}
	}
	authOpts, err := auth.Options()
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", shown, err)
	}
	nc, err := nats.Connect(serverURL, append(authOpts, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", shown, redactError(err, serverURL))
	}
	return nc, nil
}

// checkURL parses u as nats.go will, reporting a problem without u's user
// info: a parse error quotes the URL it failed on.
func checkURL(u string) error {
	withScheme := func(s string) string {
		if !strings.Contains(s, "://") {
			return "nats://" + s
		}
		return s
	}
	if _, err := url.Parse(withScheme(RedactURL(u))); err != nil {
		return err
	}
	if _, err := url.Parse(withScheme(u)); err != nil {
		return fmt.Errorf("invalid user info in %s", RedactURL(u))
	}
	return nil
}

// userInfoOf returns the user info of one server URL ("" when none): what
// comes before the last @ of its authority.
func userInfoOf(u string) (info string, start int) {
	start = 0
	if i := strings.Index(u, "://"); i >= 0 {
		start = i + len("://")
	}
	at := strings.LastIndex(u[start:], "@")
	if at < 0 {
		return "", start
	}
	return u[start : start+at], start
}

func hasUserInfo(u string) bool {
	info, _ := userInfoOf(strings.TrimSpace(u))
	return info != ""
}

// RedactURL replaces the user info (user:password@ or token@) of each
// server of a comma-separated NATS URL list with "REDACTED@", for logs and
// errors. (nats.go's ConnectedUrlRedacted keeps a token.)
func RedactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		info, start := userInfoOf(p)
		if info != "" {
			parts[i] = p[:start] + "REDACTED" + p[start+len(info):]
		}
	}
	return strings.Join(parts, ",")
}

// redactError returns err, or when its message holds user info of
// serverURL, an error with that message redacted (no longer wrapping err).
func redactError(err error, serverURL string) error {
	msg := err.Error()
	redacted := msg
	for _, u := range strings.Split(serverURL, ",") {
		if info, _ := userInfoOf(strings.TrimSpace(u)); info != "" {
			redacted = strings.ReplaceAll(redacted, info, "REDACTED")
		}
	}
	if redacted == msg {
		return err
	}
	return errors.New(redacted)
}

package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// DefaultMaxPayload is the embedded server's maximum message size: 32 MiB.
// GitHub caps webhook payloads at 25 MiB; the event message carries that
// payload as JSON inside a CloudEvent envelope (attributes, extensions), so
// NATS's 1 MiB default would refuse large pushes and 25 MiB exactly would
// refuse the biggest ones once wrapped. An external cluster needs the same
// max_payload in its server configuration.
const DefaultMaxPayload = 32 << 20

// EmbeddedOptions configures StartEmbedded.
type EmbeddedOptions struct {
	// StoreDir is where JetStream keeps its files, e.g. <data-dir>/jetstream
	// (the server nests its own "jetstream" directory inside). Required: a
	// temporary directory would lose accepted work on reboot.
	StoreDir string
	// Listen, when set, also serves clients on host:port ("127.0.0.1:4222";
	// port -1 picks a free one). Empty means in-process connections only.
	Listen string
	// Token, when set, is required of every client (also in-process ones,
	// which Connect handles). Set it whenever Listen is.
	Token string
	// ServerName defaults to "switchyard".
	ServerName string
	// MaxPayload defaults to DefaultMaxPayload.
	MaxPayload int32
	// SyncAlways makes JetStream fsync every write before acknowledging it.
	// By default it syncs periodically (every two minutes): an acked message
	// survives a process crash but not a power loss in that window.
	SyncAlways bool
	// Logger receives the server's warnings and errors (notices at debug
	// level). Nil turns server logging off.
	Logger *slog.Logger
	// StartTimeout bounds the wait for the server to accept connections;
	// default 10s.
	StartTimeout time.Duration
}

// Embedded is an in-process nats-server with JetStream enabled.
type Embedded struct {
	srv   *server.Server
	token string
}

// StartEmbedded starts an in-process nats-server with JetStream file storage
// under opts.StoreDir and waits until it accepts connections.
func StartEmbedded(opts EmbeddedOptions) (*Embedded, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("start embedded nats: store dir is required")
	}
	so := &server.Options{
		ServerName: opts.ServerName,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		MaxPayload: opts.MaxPayload,
		SyncAlways: opts.SyncAlways,
		DontListen: true,
		// The router owns signal handling and logging.
		NoSigs: true,
		NoLog:  opts.Logger == nil,
		// Token auth: nats-server compares it in constant time.
		Authorization: opts.Token,
	}
	if so.ServerName == "" {
		so.ServerName = "switchyard"
	}
	if so.MaxPayload == 0 {
		so.MaxPayload = DefaultMaxPayload
	}
	if opts.Listen != "" {
		host, portStr, err := net.SplitHostPort(opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("start embedded nats: listen address %q: %w", opts.Listen, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port < -1 || port > 65535 {
			return nil, fmt.Errorf("start embedded nats: listen address %q: invalid port", opts.Listen)
		}
		so.DontListen = false
		so.Host = host
		so.Port = port
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}

	srv, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	if opts.Logger != nil {
		srv.SetLoggerV2(serverLogger{opts.Logger.With("component", "nats-server")}, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(timeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("start embedded nats: not ready after %s", timeout)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("start embedded nats: jetstream not enabled")
	}
	return &Embedded{srv: srv, token: opts.Token}, nil
}

// Connect opens a client connection over an in-process pipe (no network,
// even when the server also listens). opts are applied after the default
// name option, so they can override it.
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	all := []nats.Option{nats.InProcessServer(e.srv), nats.Name("switchyard")}
	if e.token != "" {
		all = append(all, nats.Token(e.token))
	}
	all = append(all, opts...)
	nc, err := nats.Connect(e.srv.ClientURL(), all...)
	if err != nil {
		return nil, fmt.Errorf("connect embedded nats: %w", err)
	}
	return nc, nil
}

// ClientURL is the server's client URL. It is reachable over the network
// only when EmbeddedOptions.Listen was set.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits until it has stopped.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// serverLogger adapts nats-server's logger to slog. Debug and trace are
// disabled in SetLoggerV2; notices are routine (startup banner) and go to
// debug so a router at info level shows only warnings and errors.
type serverLogger struct{ l *slog.Logger }

var _ server.Logger = serverLogger{}

func (s serverLogger) log(level slog.Level, format string, v []any) {
	if !s.l.Enabled(context.Background(), level) {
		return
	}
	s.l.Log(context.Background(), level, "nats server", "detail", fmt.Sprintf(format, v...))
}

func (s serverLogger) Noticef(format string, v ...any) { s.log(slog.LevelDebug, format, v) }

// Warnf logs a warning, except the one about payloads over 8 MB: the router
// sets its maximum payload on purpose (DefaultMaxPayload), so it would
// only alarm on every start.
func (s serverLogger) Warnf(format string, v ...any) {
	if strings.HasPrefix(format, "Maximum payloads over") {
		s.log(slog.LevelDebug, format, v)
		return
	}
	s.log(slog.LevelWarn, format, v)
}
func (s serverLogger) Fatalf(format string, v ...any) { s.log(slog.LevelError, format, v) }
func (s serverLogger) Errorf(format string, v ...any) { s.log(slog.LevelError, format, v) }
func (s serverLogger) Debugf(format string, v ...any) { s.log(slog.LevelDebug, format, v) }
func (s serverLogger) Tracef(format string, v ...any) { s.log(slog.LevelDebug, format, v) }

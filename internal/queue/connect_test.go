package queue

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// startAuthServer starts a JetStream nats-server on a free loopback port
// with the auth settings of configure.
func startAuthServer(t *testing.T, configure func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoSigs: true, NoLog: true,
	}
	configure(opts)
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return srv
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type connectCase struct {
	name    string
	url     string // default: the server's client URL
	auth    ClientAuth
	wantErr string // "" for success
}

func runConnectCases(t *testing.T, srv *server.Server, cases []connectCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.url
			if u == "" {
				u = srv.ClientURL()
			}
			nc, err := Connect(u, tc.auth)
			if err == nil {
				defer nc.Close()
			} else {
				t.Logf("error: %v", err)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("connect: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("connect error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestConnectUserFile(t *testing.T) {
	srv := startAuthServer(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "router", Password: "right:pass"}}
	})
	hostPort := strings.TrimPrefix(srv.ClientURL(), "nats://")
	runConnectCases(t, srv, []connectCase{
		{name: "right password", auth: ClientAuth{UserFile: writeFile(t, "user", "router:right:pass\n")}},
		{name: "wrong password", auth: ClientAuth{UserFile: writeFile(t, "user", "router:wrong")}, wantErr: "Authorization Violation"},
		{name: "no credentials", wantErr: "Authorization Violation"},
		{name: "not user:password", auth: ClientAuth{UserFile: writeFile(t, "user", "router")}, wantErr: "want one line user:password"},
		{name: "missing file", auth: ClientAuth{UserFile: "/nonexistent/user"}, wantErr: "/nonexistent/user"},
		{name: "url and file", url: "nats://router:right:pass@" + hostPort, auth: ClientAuth{UserFile: writeFile(t, "user", "router:right:pass")}, wantErr: "both in the url and in a file"},
		{name: "two credentials", auth: ClientAuth{UserFile: writeFile(t, "user", "router:right:pass"), NkeyFile: "x"}, wantErr: "at most one"},
	})
}

func TestConnectNkey(t *testing.T) {
	newSeed := func() (pub string, seedFile string) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ = kp.PublicKey()
		seed, _ := kp.Seed()
		return pub, writeFile(t, "seed.nk", string(seed)+"\n")
	}
	pub, right := newSeed()
	_, other := newSeed()
	srv := startAuthServer(t, func(o *server.Options) {
		o.Nkeys = []*server.NkeyUser{{Nkey: pub}}
	})
	runConnectCases(t, srv, []connectCase{
		{name: "right seed", auth: ClientAuth{NkeyFile: right}},
		{name: "another seed", auth: ClientAuth{NkeyFile: other}, wantErr: "Authorization Violation"},
		{name: "not a seed", auth: ClientAuth{NkeyFile: writeFile(t, "seed.nk", "nonsense")}, wantErr: "nkey file"},
		{name: "missing creds file", auth: ClientAuth{CredsFile: "/nonexistent/x.creds"}, wantErr: "/nonexistent/x.creds"},
	})
}

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue returns a certificate of ca for 127.0.0.1, as PEM cert and key.
func (ca *testCA) issue(t *testing.T, usage x509.ExtKeyUsage) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "switchyard test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
}

func TestConnectTLS(t *testing.T) {
	ca := newTestCA(t)
	serverCert, serverKey := ca.issue(t, x509.ExtKeyUsageServerAuth)
	pair, err := tls.X509KeyPair([]byte(serverCert), []byte(serverKey))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv := startAuthServer(t, func(o *server.Options) {
		o.TLS, o.TLSVerify = true, true
		o.TLSTimeout = 5
		o.TLSConfig = &tls.Config{
			Certificates: []tls.Certificate{pair}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
		}
	})
	clientCert, clientKey := ca.issue(t, x509.ExtKeyUsageClientAuth)
	certFile, keyFile := writeFile(t, "client.pem", clientCert), writeFile(t, "client-key.pem", clientKey)
	caFile := writeFile(t, "ca.pem", ca.pem)
	otherCA := newTestCA(t)
	otherCert, otherKey := otherCA.issue(t, x509.ExtKeyUsageClientAuth)

	runConnectCases(t, srv, []connectCase{
		{name: "right ca and client cert", auth: ClientAuth{TLSCA: caFile, TLSCert: certFile, TLSKey: keyFile}},
		{name: "tls url", url: strings.Replace(srv.ClientURL(), "nats://", "tls://", 1), auth: ClientAuth{TLSCA: caFile, TLSCert: certFile, TLSKey: keyFile}},
		{name: "server cert of another ca", auth: ClientAuth{TLSCA: writeFile(t, "other-ca.pem", otherCA.pem), TLSCert: certFile, TLSKey: keyFile}, wantErr: "certificate signed by unknown authority"},
		{name: "client cert of another ca", auth: ClientAuth{TLSCA: caFile, TLSCert: writeFile(t, "o.pem", otherCert), TLSKey: writeFile(t, "o-key.pem", otherKey)}, wantErr: "connect nats"},
		{name: "no client cert", auth: ClientAuth{TLSCA: caFile}, wantErr: "connect nats"},
		{name: "no tls", wantErr: "connect nats"},
		{name: "cert without key", auth: ClientAuth{TLSCA: caFile, TLSCert: certFile}, wantErr: "needs both"},
		{name: "ca not pem", auth: ClientAuth{TLSCA: writeFile(t, "bad.pem", "nonsense")}, wantErr: "root certificate"},
	})
}

// A failing connect never shows the password or token of the URL.
func TestConnectErrorsHideURLSecrets(t *testing.T) {
	for _, u := range []string{
		"nats://user:secret@127.0.0.1:1",
		"nats://secret@127.0.0.1:1",
		"nats://a:secret@127.0.0.1:1, nats://b:secret@127.0.0.1:2",
		"nats://user:secret@127.0.0.1:bad",
		"nats://user:sec ret@127.0.0.1:1",
		"nats://user:sec/ret@127.0.0.1:1",
		"user:secret@127.0.0.1:1",
	} {
		t.Run(u, func(t *testing.T) {
			nc, err := Connect(u, ClientAuth{})
			if err == nil {
				nc.Close()
				t.Fatal("connect succeeded")
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "ret@") {
				t.Fatalf("error shows the secret: %v", err)
			}
			if !strings.Contains(err.Error(), "REDACTED@127.0.0.1") {
				t.Errorf("error does not say which server: %v", err)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222": "nats://127.0.0.1:4222",
		"nats://u:p@h:1":        "nats://REDACTED@h:1",
		"nats://tok@h:1":        "nats://REDACTED@h:1",
		"u:p@h:1":               "REDACTED@h:1",
		"nats://u:p@h1:1,nats://h2:2, tls://t@h3:3": "nats://REDACTED@h1:1,nats://h2:2, tls://REDACTED@h3:3",
		"nats://u:p@ss@h:1":                         "nats://REDACTED@h:1",
		"":                                          "",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

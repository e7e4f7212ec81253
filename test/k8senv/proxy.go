package k8senv

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Proxy is a reverse proxy in front of the cluster's API server that can
// hold or fail PipelineRun creates, so a test can land a fault (a crash, a
// transient API error) while dispatch has unacknowledged work in flight,
// and then check what the fault did. Everything else passes through.
type Proxy struct {
	// URL is the proxy's HTTPS address (client-go sends no token over
	// plain HTTP).
	URL string
	srv *httptest.Server

	mu       sync.Mutex
	holding  bool
	release  chan struct{}
	failN    int
	failCode int
	counts   ProxyCounts
	lists    map[string]int // PipelineRun lists (not watches) by label selector
}

// ProxyCounts is what the proxy saw of PipelineRun creates.
type ProxyCounts struct {
	Held      int      // creates that arrived while holding
	Abandoned int      // held creates whose client went away (never forwarded)
	Failed    int      // creates answered with the injected error
	Created   []string // names the API server answered 201 Created for
	Conflicts []string // names the API server answered 409 (AlreadyExists) for
}

// NewProxy starts a proxy to the cluster's API server; it is closed with
// Close. It forwards the client's own credentials (the router's token).
func (c *Cluster) NewProxy() (*Proxy, error) {
	admin := c.AdminConfig()
	upstream, err := url.Parse(admin.Host)
	if err != nil {
		return nil, fmt.Errorf("k8senv: proxy: %w", err)
	}
	// Only the CA: the client's own Authorization header is forwarded.
	transport, err := rest.TransportFor(&rest.Config{Host: admin.Host, TLSClientConfig: rest.TLSClientConfig{
		CAData: admin.CAData, CAFile: admin.CAFile, ServerName: admin.ServerName,
	}})
	if err != nil {
		return nil, fmt.Errorf("k8senv: proxy transport: %w", err)
	}
	p := &Proxy{release: make(chan struct{}), lists: map[string]int{}}
	rp := &httputil.ReverseProxy{
		Rewrite:        func(r *httputil.ProxyRequest) { r.SetURL(upstream) },
		Transport:      transport,
		FlushInterval:  -1, // watches stream
		ModifyResponse: p.record,
	}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isCreate(r) && !p.intercept(w, r) {
			return
		}
		if isList(r) {
			p.mu.Lock()
			p.lists[r.URL.Query().Get("labelSelector")]++
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	p.URL = p.srv.URL
	return p, nil
}

// Close stops the proxy, releasing every held create first.
func (p *Proxy) Close() {
	p.Release()
	p.srv.CloseClientConnections()
	p.srv.Close()
}

// Kubeconfig writes a copy of the kubeconfig at path whose clusters point
// at the proxy, and returns the copy's path.
func (p *Proxy) Kubeconfig(path string) (string, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return "", fmt.Errorf("k8senv: proxy kubeconfig: %w", err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	for _, cl := range cfg.Clusters {
		cl.Server = p.URL
		cl.CertificateAuthority = ""
		cl.CertificateAuthorityData = ca
		cl.TLSServerName = ""
	}
	out := path + ".proxy"
	if err := clientcmd.WriteToFile(*cfg, out); err != nil {
		return "", fmt.Errorf("k8senv: proxy kubeconfig: %w", err)
	}
	return out, nil
}

// Hold makes PipelineRun creates from now on wait until Release (then
// they are forwarded) or until their client goes away (then they never
// reach the API server).
func (p *Proxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.holding {
		p.holding = true
		p.release = make(chan struct{})
	}
}

// Release forwards the held creates and stops holding.
func (p *Proxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holding {
		p.holding = false
		close(p.release)
	}
}

// FailCreates answers the next n PipelineRun creates with code (a
// transient API server error such as 500 or 503) instead of forwarding
// them. No Retry-After: client-go would retry such an answer itself, and
// the error would never reach dispatch.
func (p *Proxy) FailCreates(n, code int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failN, p.failCode = n, code
}

// Counts returns what the proxy saw so far.
func (p *Proxy) Counts() ProxyCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts
	c.Created = append([]string(nil), c.Created...)
	c.Conflicts = append([]string(nil), c.Conflicts...)
	return c
}

// Lists returns how many PipelineRun lists (not watches) with the given
// label selector passed through: a test counts a router's periodic work
// (a resync) instead of sleeping through it.
func (p *Proxy) Lists(labelSelector string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lists[labelSelector]
}

// intercept applies a failure or a hold to a create; it reports whether
// the create is to be forwarded.
func (p *Proxy) intercept(w http.ResponseWriter, r *http.Request) bool {
	p.mu.Lock()
	if p.failN > 0 {
		p.failN--
		p.counts.Failed++
		code := p.failCode
		p.mu.Unlock()
		reason := "InternalError"
		if code == http.StatusServiceUnavailable {
			reason = "ServiceUnavailable"
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected by the test proxy","reason":%q,"code":%d}`, reason, code)
		return false
	}
	if !p.holding {
		p.mu.Unlock()
		return true
	}
	p.counts.Held++
	release := p.release
	p.mu.Unlock()
	// The server notices a client that went away only once the body was
	// read; forwarding needs the body again.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		p.mu.Lock()
		p.counts.Abandoned++
		p.mu.Unlock()
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	select {
	case <-release:
		return true
	case <-r.Context().Done():
		p.mu.Lock()
		p.counts.Abandoned++
		p.mu.Unlock()
		return false
	}
}

// record notes the API server's answer to a forwarded create.
func (p *Proxy) record(resp *http.Response) error {
	if !isCreate(resp.Request) {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var obj struct {
		Metadata struct{ Name string } `json:"metadata"`
		Details  struct{ Name string } `json:"details"`
	}
	_ = json.Unmarshal(body, &obj)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch resp.StatusCode {
	case http.StatusCreated:
		p.counts.Created = append(p.counts.Created, obj.Metadata.Name)
	case http.StatusConflict:
		p.counts.Conflicts = append(p.counts.Conflicts, obj.Details.Name)
	}
	return nil
}

func isCreate(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/apis/tekton.dev/") &&
		strings.HasSuffix(r.URL.Path, "/pipelineruns")
}

func isList(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/apis/tekton.dev/") &&
		strings.HasSuffix(r.URL.Path, "/pipelineruns") && r.URL.Query().Get("watch") != "true"
}

// String summarises the counts for test logs.
func (c ProxyCounts) String() string {
	return "held=" + strconv.Itoa(c.Held) + " abandoned=" + strconv.Itoa(c.Abandoned) + " failed=" + strconv.Itoa(c.Failed) +
		" created=" + strconv.Itoa(len(c.Created)) + " conflicts=" + strconv.Itoa(len(c.Conflicts))
}

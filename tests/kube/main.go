// SPDX-License-Identifier: Apache-2.0

// kube-apiserver stand-in for nvdp's Kubernetes client tests: HTTPS with HTTP/2 (Go's net/http negotiates
// "h2" over TLS by itself), a CA generated at start, bearer-token or client-certificate authentication, and
// the few API paths nvdp uses: GET/PATCH (merge patch) a Node, list and watch Nodes by name, POST Events,
// GET/POST/PUT NodeFeatures (nodefeature.go).
// Control paths under /_test/ (no authentication) let a test change labels, read recorded events, end watch
// streams abruptly, compact the history (410 Gone) and read request counts.
//
// Usage: kube-standin -dir DIR [-token T] [-wrong-host] [-node NAME]...
// Writes DIR/ca.crt, DIR/client.crt, DIR/client.key (a client certificate the server accepts), and prints
// "ready HOST:PORT" on stdout once it serves.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

type object = map[string]interface{}

type event struct {
	rv   int
	typ  string
	node object
}

type watcher struct {
	node string
	ch   chan event
	drop chan struct{}
}

type server struct {
	mu         sync.Mutex
	token      string
	rv         int
	compacted  int
	nodes      map[string]object
	history    []event
	watchers   map[*watcher]bool
	events     []object
	counts     map[string]int
	conns      map[net.Conn]bool
	failEvents int // the next event posts answered 503 (the API server overloaded or restarting)
	nf         nodeFeatures
}

func status(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(object{"kind": "Status", "apiVersion": "v1", "metadata": object{},
		"status": "Failure", "message": msg, "reason": reason, "code": code})
}

func writeJSON(w http.ResponseWriter, code int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// copyJSON deep-copies through JSON.
func copyJSON(o object) object {
	b, _ := json.Marshal(o)
	var c object
	json.Unmarshal(b, &c)
	return c
}

// mergePatch applies an RFC 7386 JSON merge patch.
func mergePatch(target interface{}, patch interface{}) interface{} {
	p, ok := patch.(map[string]interface{})
	if !ok {
		return patch
	}
	t, ok := target.(map[string]interface{})
	if !ok {
		t = map[string]interface{}{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = mergePatch(t[k], v)
		}
	}
	return t
}

// change records a new version of a node (s.mu held) and tells the watchers.
func (s *server) change(typ string, n object) {
	s.rv++
	n["metadata"].(object)["resourceVersion"] = strconv.Itoa(s.rv)
	ev := event{rv: s.rv, typ: typ, node: copyJSON(n)}
	s.history = append(s.history, ev)
	for w := range s.watchers {
		if w.node == n["metadata"].(object)["name"] {
			select {
			case w.ch <- ev:
			default: // a watcher that does not read loses events, as with a real server's slow consumers
			}
		}
	}
}

func (s *server) newNode(name string) object {
	return object{"apiVersion": "v1", "kind": "Node",
		"metadata": object{"name": name, "uid": "uid-" + name,
			"labels": object{"kubernetes.io/hostname": name}},
		"status": object{}}
}

func (s *server) authorized(r *http.Request) bool {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && r.TLS.PeerCertificates[0].Subject.CommonName == "nvdp-test" {
		return true
	}
	return s.token != "" && r.Header.Get("Authorization") == "Bearer "+s.token
}

func (s *server) count(what string) {
	s.mu.Lock()
	s.counts[what]++
	s.mu.Unlock()
}

func (s *server) serveNode(w http.ResponseWriter, r *http.Request, name string) {
	if name == "forbidden-node" {
		status(w, 403, "Forbidden", `nodes "forbidden-node" is forbidden: User "system:serviceaccount:kube-system:nvdp" cannot `+strings.ToLower(r.Method)+` resource "nodes" in API group "" at the cluster scope`)
		return
	}
	switch name {
	case "slow-node": // answers after 3 s: for client deadlines
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
			return
		}
		status(w, 404, "NotFound", `nodes "slow-node" not found`)
		return
	case "huge-node": // a 5 MiB object: over the client's response limit
		big := s.newNode(name)
		big["metadata"].(object)["annotations"] = object{"big": strings.Repeat("x", 5<<20)}
		writeJSON(w, 200, big)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[name]
	if !ok {
		status(w, 404, "NotFound", fmt.Sprintf(`nodes "%s" not found`, name))
		return
	}
	switch r.Method {
	case "GET":
		s.counts["get"]++
		writeJSON(w, 200, n)
	case "PATCH":
		s.counts["patch"]++
		if r.Header.Get("Content-Type") != "application/merge-patch+json" {
			status(w, 415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json")
			return
		}
		var patch object
		if err := json.NewDecoder(r.Body).Decode(&patch); err != nil {
			status(w, 400, "BadRequest", "error decoding patch: "+err.Error())
			return
		}
		n = mergePatch(n, patch).(object)
		s.nodes[name] = n
		s.change("MODIFIED", n)
		writeJSON(w, 200, n)
	default:
		status(w, 405, "MethodNotAllowed", "method not allowed")
	}
}

func (s *server) serveEvents(w http.ResponseWriter, r *http.Request, ns string) {
	if r.Method != "POST" {
		status(w, 405, "MethodNotAllowed", "method not allowed")
		return
	}
	var ev object
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		status(w, 400, "BadRequest", "error decoding event: "+err.Error())
		return
	}
	meta, _ := ev["metadata"].(object)
	if ev["kind"] != "Event" || meta == nil || meta["name"] == nil {
		status(w, 422, "Invalid", "Event is invalid: metadata.name: Required value")
		return
	}
	if meta["namespace"] != ns {
		status(w, 400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
		return
	}
	// The API server's rule: an event about a cluster-scoped object (a Node) lives in "default".
	inv, _ := ev["involvedObject"].(object)
	invNs, _ := inv["namespace"].(string)
	if (invNs == "" && ns != "default") || (invNs != "" && invNs != ns) {
		status(w, 422, "Invalid", fmt.Sprintf("Event \"%v\" is invalid: involvedObject.namespace: Invalid value: %q: does not match event.namespace", meta["name"], invNs))
		return
	}
	s.mu.Lock()
	if s.failEvents > 0 {
		s.failEvents--
		s.counts["event-failed"]++
		s.mu.Unlock()
		status(w, 503, "ServiceUnavailable", "the server is currently unable to handle the request")
		return
	}
	s.events = append(s.events, ev)
	s.counts["event"]++
	s.mu.Unlock()
	writeJSON(w, 201, ev)
}

func (s *server) serveList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := strings.TrimPrefix(q.Get("fieldSelector"), "metadata.name=")
	if q.Get("watch") == "1" || q.Get("watch") == "true" {
		s.serveWatch(w, r, name)
		return
	}
	s.mu.Lock()
	s.counts["list"]++
	items := []interface{}{}
	if n, ok := s.nodes[name]; ok {
		items = append(items, n)
	}
	out := object{"apiVersion": "v1", "kind": "NodeList", "metadata": object{"resourceVersion": strconv.Itoa(s.rv)},
		"items": items}
	s.mu.Unlock()
	writeJSON(w, 200, out)
}

func (s *server) serveWatch(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	from, err := strconv.Atoi(q.Get("resourceVersion"))
	if err != nil {
		status(w, 400, "BadRequest", "resourceVersion is required for this stand-in's watch")
		return
	}
	timeout := 300
	if t, err := strconv.Atoi(q.Get("timeoutSeconds")); err == nil {
		timeout = t
	}
	wt := &watcher{node: name, ch: make(chan event, 64), drop: make(chan struct{})}
	s.mu.Lock()
	s.counts["watch"]++
	if from < s.compacted {
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		json.NewEncoder(w).Encode(object{"type": "ERROR", "object": object{"kind": "Status", "apiVersion": "v1",
			"status": "Failure", "message": fmt.Sprintf("too old resource version: %d (%d)", from, s.compacted),
			"reason": "Expired", "code": 410}})
		return
	}
	var backlog []event
	for _, ev := range s.history {
		if ev.rv > from && ev.node["metadata"].(object)["name"] == name {
			backlog = append(backlog, ev)
		}
	}
	s.watchers[wt] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, wt)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	fl.Flush()
	send := func(ev event) {
		json.NewEncoder(w).Encode(object{"type": ev.typ, "object": ev.node})
		fl.Flush()
	}
	for _, ev := range backlog {
		send(ev)
	}
	deadline := time.After(time.Duration(timeout) * time.Second)
	for {
		select {
		case ev := <-wt.ch:
			send(ev)
		case <-wt.drop:
			panic(http.ErrAbortHandler) // the stream is reset: an abrupt end, not a clean one
		case <-deadline:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (s *server) serveTest(w http.ResponseWriter, r *http.Request) {
	if s.serveNodeFeatureTest(w, r) {
		return
	}
	q := r.URL.Query()
	switch r.URL.Path {
	case "/_test/label":
		s.mu.Lock()
		n, ok := s.nodes[q.Get("node")]
		if !ok {
			n = s.newNode(q.Get("node"))
			s.nodes[q.Get("node")] = n
		}
		labels := n["metadata"].(object)["labels"].(object)
		if q.Has("value") {
			labels[q.Get("key")] = q.Get("value")
		} else {
			delete(labels, q.Get("key"))
		}
		s.change(map[bool]string{true: "MODIFIED", false: "ADDED"}[ok], n)
		s.mu.Unlock()
		writeJSON(w, 200, n)
	case "/_test/delete":
		s.mu.Lock()
		if n, ok := s.nodes[q.Get("node")]; ok {
			delete(s.nodes, q.Get("node"))
			s.change("DELETED", n)
		}
		s.mu.Unlock()
		writeJSON(w, 200, object{})
	case "/_test/events":
		s.mu.Lock()
		defer s.mu.Unlock()
		writeJSON(w, 200, s.events)
	case "/_test/drop-watches":
		s.mu.Lock()
		n := 0
		for wt := range s.watchers {
			close(wt.drop)
			delete(s.watchers, wt)
			n++
		}
		s.mu.Unlock()
		writeJSON(w, 200, object{"dropped": n})
	case "/_test/drop-connections": // closes every HTTP/2 connection (TCP and all)
		s.mu.Lock()
		n := 0
		for c := range s.conns {
			if tc, ok := c.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
				c.Close()
				delete(s.conns, c)
				n++
			}
		}
		s.mu.Unlock()
		writeJSON(w, 200, object{"dropped": n})
	case "/_test/compact":
		s.mu.Lock()
		s.compacted = s.rv
		s.mu.Unlock()
		writeJSON(w, 200, object{})
	case "/_test/fail-events": // the next n event posts get 503
		s.mu.Lock()
		fmt.Sscanf(q.Get("n"), "%d", &s.failEvents)
		s.mu.Unlock()
		writeJSON(w, 200, object{})
	case "/_test/stats":
		s.mu.Lock()
		defer s.mu.Unlock()
		writeJSON(w, 200, s.counts)
	default:
		http.NotFound(w, r)
	}
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_test/") {
		s.serveTest(w, r)
		return
	}
	if r.ProtoMajor != 2 {
		status(w, 505, "BadRequest", "this stand-in only serves HTTP/2, as nvdp must use it")
		return
	}
	if !s.authorized(r) {
		status(w, 401, "Unauthorized", "Unauthorized")
		return
	}
	p := r.URL.Path
	if ns, name, ok := nodeFeaturePath(p); ok {
		s.serveNodeFeature(w, r, ns, name)
		return
	}
	switch {
	case p == "/api/v1/nodes" && r.Method == "GET":
		s.serveList(w, r)
	case strings.HasPrefix(p, "/api/v1/nodes/"):
		s.serveNode(w, r, strings.TrimPrefix(p, "/api/v1/nodes/"))
	case strings.HasPrefix(p, "/api/v1/namespaces/") && strings.HasSuffix(p, "/events"):
		s.serveEvents(w, r, strings.TrimSuffix(strings.TrimPrefix(p, "/api/v1/namespaces/"), "/events"))
	default:
		status(w, 404, "NotFound", "the server could not find the requested resource")
	}
}

func writePEM(path, typ string, der []byte) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0600)
	if err != nil {
		panic(err)
	}
	pem.Encode(f, &pem.Block{Type: typ, Bytes: der})
	f.Close()
}

func newKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) *x509.Certificate {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		panic(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func main() {
	dir := flag.String("dir", ".", "where to write ca.crt, client.crt, client.key")
	token := flag.String("token", "", "bearer token the server accepts")
	wrongHost := flag.Bool("wrong-host", false, "present a certificate for wrong.example only")
	var nodes []string
	flag.Func("node", "a node that exists at start (repeatable)", func(s string) error {
		nodes = append(nodes, s)
		return nil
	})
	flag.Parse()

	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nvdp-test-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	ca := sign(caTmpl, caTmpl, &caKey.PublicKey, caKey)

	srvKey := newKey()
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if *wrongHost {
		srvTmpl.DNSNames = []string{"wrong.example"}
	} else {
		srvTmpl.DNSNames = []string{"localhost"}
		srvTmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	srv := sign(srvTmpl, ca, &srvKey.PublicKey, caKey)

	cliKey := newKey()
	cliTmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "nvdp-test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	cli := sign(cliTmpl, ca, &cliKey.PublicKey, caKey)
	writePEM(filepath.Join(*dir, "ca.crt"), "CERTIFICATE", ca.Raw)
	writePEM(filepath.Join(*dir, "client.crt"), "CERTIFICATE", cli.Raw)
	kder, _ := x509.MarshalECPrivateKey(cliKey)
	writePEM(filepath.Join(*dir, "client.key"), "EC PRIVATE KEY", kder)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	s := &server{token: *token, nodes: map[string]object{}, watchers: map[*watcher]bool{}, counts: map[string]int{},
		conns: map[net.Conn]bool{}, nf: nodeFeatures{objects: map[string]object{}}}
	for _, n := range nodes {
		s.nodes[n] = s.newNode(n)
		s.change("ADDED", s.nodes[n])
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	hs := &http.Server{Handler: s, TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srv.Raw}, PrivateKey: srvKey}},
		ClientAuth:   tls.VerifyClientCertIfGiven, ClientCAs: pool, NextProtos: []string{"h2", "http/1.1"}},
		ConnState: func(c net.Conn, st http.ConnState) {
			s.mu.Lock()
			defer s.mu.Unlock()
			switch st {
			case http.StateNew:
				s.conns[c] = true
			case http.StateClosed, http.StateHijacked:
				delete(s.conns, c)
			}
		}}
	fmt.Printf("ready %s\n", ln.Addr().String())
	os.Stdout.Sync()
	if err := hs.ServeTLS(ln, "", ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// SPDX-License-Identifier: Apache-2.0

// NodeFeature objects (nfd.k8s-sigs.io/v1alpha1, namespaced), as the API server serves a CRD: GET, POST
// (create: 409 when the name exists) and PUT (update: 404 when it does not exist, 409 when the
// resourceVersion is not the current one), with the checks the real server makes on what nvdp sends
// (apiVersion and kind, the name and namespace of the path, owner references with apiVersion, kind, name
// and uid). Control paths: GET /_test/nodefeatures (every object, by "<namespace>/<name>"),
// /_test/nodefeature-label?ns=&name=&key=[&value=] (someone else changes spec.labels; no value removes the
// key), /_test/nodefeature-delete?ns=&name= (the garbage collector removes it).
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

const nodeFeaturePrefix = "/apis/nfd.k8s-sigs.io/v1alpha1/namespaces/"

type nodeFeatures struct {
	objects map[string]object // "<namespace>/<name>"
	uid     int
}

// nodeFeaturePath splits /apis/nfd.k8s-sigs.io/v1alpha1/namespaces/<ns>/nodefeatures[/<name>].
func nodeFeaturePath(p string) (ns, name string, ok bool) {
	if !strings.HasPrefix(p, nodeFeaturePrefix) {
		return "", "", false
	}
	parts := strings.Split(strings.TrimPrefix(p, nodeFeaturePrefix), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[1] != "nodefeatures" || parts[0] == "" {
		return "", "", false
	}
	if len(parts) == 3 {
		name = parts[2]
	}
	return parts[0], name, true
}

func notFoundNF(w http.ResponseWriter, name string) {
	status(w, 404, "NotFound", fmt.Sprintf(`nodefeatures.nfd.k8s-sigs.io "%s" not found`, name))
}

// checkNodeFeature is what the API server refuses in a NodeFeature body (400/422), "" when it is fine.
func checkNodeFeature(o object, ns, name string) string {
	if o["apiVersion"] != "nfd.k8s-sigs.io/v1alpha1" || o["kind"] != "NodeFeature" {
		return fmt.Sprintf("apiVersion/kind %v/%v is not nfd.k8s-sigs.io/v1alpha1/NodeFeature", o["apiVersion"], o["kind"])
	}
	meta, _ := o["metadata"].(object)
	if meta == nil || meta["name"] == nil || (name != "" && meta["name"] != name) {
		return "metadata.name missing or not the name in the path"
	}
	if mns, set := meta["namespace"]; set && mns != ns {
		return "the namespace of the provided object does not match the namespace sent on the request"
	}
	if refs, set := meta["ownerReferences"]; set {
		list, _ := refs.([]interface{})
		for _, r := range list {
			ref, _ := r.(object)
			for _, k := range []string{"apiVersion", "kind", "name", "uid"} {
				if s, _ := ref[k].(string); s == "" {
					return "metadata.ownerReferences." + k + ": Invalid value: \"\": must not be empty"
				}
			}
		}
	}
	if _, ok := o["spec"].(object); !ok {
		return "spec: Required value"
	}
	return ""
}

func (s *server) serveNodeFeature(w http.ResponseWriter, r *http.Request, ns, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ns + "/" + name
	switch {
	case r.Method == "GET" && name != "":
		s.counts["nodefeature-get"]++
		if o, ok := s.nf.objects[key]; ok {
			writeJSON(w, 200, o)
		} else {
			notFoundNF(w, name)
		}
	case r.Method == "POST" && name == "", r.Method == "PUT" && name != "":
		var o object
		if err := json.NewDecoder(r.Body).Decode(&o); err != nil {
			status(w, 400, "BadRequest", "error decoding body: "+err.Error())
			return
		}
		if msg := checkNodeFeature(o, ns, name); msg != "" {
			status(w, 422, "Invalid", msg)
			return
		}
		meta := o["metadata"].(object)
		key = ns + "/" + meta["name"].(string)
		old, exists := s.nf.objects[key]
		if r.Method == "POST" {
			s.counts["nodefeature-create"]++
			if exists {
				status(w, 409, "AlreadyExists", fmt.Sprintf(`nodefeatures.nfd.k8s-sigs.io "%s" already exists`, meta["name"]))
				return
			}
			s.nf.uid++
			meta["uid"] = "nf-uid-" + strconv.Itoa(s.nf.uid)
		} else {
			s.counts["nodefeature-update"]++
			if !exists {
				notFoundNF(w, name)
				return
			}
			oldMeta := old["metadata"].(object)
			if meta["resourceVersion"] != oldMeta["resourceVersion"] {
				status(w, 409, "Conflict", fmt.Sprintf(`Operation cannot be fulfilled on nodefeatures.nfd.k8s-sigs.io "%s": the object has been modified; please apply your changes to the latest version and try again`, name))
				return
			}
			meta["uid"] = oldMeta["uid"]
		}
		meta["namespace"] = ns
		s.rv++
		meta["resourceVersion"] = strconv.Itoa(s.rv)
		s.nf.objects[key] = o
		writeJSON(w, map[bool]int{true: 201, false: 200}[r.Method == "POST"], o)
	default:
		status(w, 405, "MethodNotAllowed", "method not allowed")
	}
}

// serveNodeFeatureTest answers the control paths above; false when the path is not one of them.
func (s *server) serveNodeFeatureTest(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	key := q.Get("ns") + "/" + q.Get("name")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.URL.Path {
	case "/_test/nodefeatures":
		writeJSON(w, 200, s.nf.objects)
	case "/_test/nodefeature-label":
		o, ok := s.nf.objects[key]
		if !ok {
			notFoundNF(w, q.Get("name"))
			return true
		}
		labels, _ := o["spec"].(object)["labels"].(object)
		if labels == nil {
			labels = object{}
			o["spec"].(object)["labels"] = labels
		}
		if q.Has("value") {
			labels[q.Get("key")] = q.Get("value")
		} else {
			delete(labels, q.Get("key"))
		}
		s.rv++
		o["metadata"].(object)["resourceVersion"] = strconv.Itoa(s.rv)
		writeJSON(w, 200, o)
	case "/_test/nodefeature-delete":
		delete(s.nf.objects, key)
		writeJSON(w, 200, object{})
	default:
		return false
	}
	return true
}

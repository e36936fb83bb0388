package kubelet

// A kube-apiserver stand-in for the DRA test: HTTPS with HTTP/2 on 127.0.0.1, bearer-token authentication,
// and the paths a DRA driver uses, served from a client-go fake clientset. The same clientset is the
// kubelet DRA manager's client, so driver and kubelet see one set of objects, as in a cluster:
//
//	GET    /api/v1/nodes/{name}
//	GET    /apis/resource.k8s.io/v1/namespaces/{ns}/resourceclaims/{name}
//	GET    /apis/resource.k8s.io/v1/resourceslices[?fieldSelector=spec.nodeName=N,spec.driver=D]
//	POST   /apis/resource.k8s.io/v1/resourceslices
//	GET, PUT, DELETE /apis/resource.k8s.io/v1/resourceslices/{name}
//	PATCH  /apis/resource.k8s.io/v1/resourceslices/{name} (server-side apply: create or replace)
//
// refuseSliceWrites makes the next N writes of ResourceSlices fail with 422, as an API server refusing an
// invalid object does.

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sfields "k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

const fakeAPIToken = "dra-test-token"

type fakeAPI struct {
	srv    *httptest.Server
	client *fake.Clientset

	mu                sync.Mutex
	dropTaints        bool // as an API server without DRADeviceTaints: taints are not stored
	refuseSliceWrites int
	sliceWrites       int // successful ones
	claimGets         int
}

func startFakeAPI(t *testing.T, objects ...runtime.Object) *fakeAPI {
	t.Helper()
	a := &fakeAPI{client: fake.NewClientset(objects...)}
	// The fake clientset's DeleteCollection deletes nothing; the kubelet wipes a node's slices with it.
	a.client.PrependReactor("delete-collection", "resourceslices", a.wipeSlices)
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.srv.EnableHTTP2 = true
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	return a
}

// kubeconfig writes a kubeconfig for the stand-in (its CA, the token) and returns its path.
func (a *fakeAPI) kubeconfig(t *testing.T, dir string) string {
	t.Helper()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw})
	caPath := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caPath, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: driver
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: driver}
current-context: test
`, a.srv.URL, caPath, fakeAPIToken)
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wipeSlices deletes the ResourceSlices matching the action's field selector (spec.nodeName, spec.driver).
// It runs inside the fake clientset's lock: it uses the object tracker, not the clientset.
func (a *fakeAPI) wipeSlices(action clienttesting.Action) (bool, runtime.Object, error) {
	fields := action.(clienttesting.DeleteCollectionAction).GetListRestrictions().Fields
	gvr := resourceapi.SchemeGroupVersion.WithResource("resourceslices")
	list, err := a.client.Tracker().List(gvr, resourceapi.SchemeGroupVersion.WithKind("ResourceSlice"), "")
	if err != nil {
		return true, nil, err
	}
	for _, s := range list.(*resourceapi.ResourceSliceList).Items {
		set := map[string]string{"spec.driver": s.Spec.Driver}
		if s.Spec.NodeName != nil {
			set["spec.nodeName"] = *s.Spec.NodeName
		}
		if fields.Matches(k8sfields.Set(set)) {
			if err := a.client.Tracker().Delete(gvr, "", s.Name); err != nil {
				return true, nil, err
			}
		}
	}
	return true, nil, nil
}

func (a *fakeAPI) refuseNextSliceWrites(n int) {
	a.mu.Lock()
	a.refuseSliceWrites = n
	a.mu.Unlock()
}

func (a *fakeAPI) dropDeviceTaints(drop bool) {
	a.mu.Lock()
	a.dropTaints = drop
	a.mu.Unlock()
}

func (a *fakeAPI) counts() (sliceWrites, claimGets int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sliceWrites, a.claimGets
}

func writeStatus(w http.ResponseWriter, err error) {
	status, ok := err.(apierrors.APIStatus)
	var s metav1.Status
	if ok {
		s = status.Status()
	} else {
		s = metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError, Message: err.Error()}
	}
	s.Kind, s.APIVersion = "Status", "v1"
	writeObject(w, int(s.Code), &s)
}

func writeObject(w http.ResponseWriter, code int, obj any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(obj)
}

func (a *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+fakeAPIToken {
		writeStatus(w, apierrors.NewUnauthorized("bad or missing bearer token"))
		return
	}
	ctx := r.Context()
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 4 && parts[0] == "api" && parts[2] == "nodes" && r.Method == http.MethodGet:
		n, err := a.client.CoreV1().Nodes().Get(ctx, parts[3], metav1.GetOptions{})
		a.reply(w, n, err, "v1", "Node")
	case len(parts) == 7 && parts[3] == "namespaces" && parts[5] == "resourceclaims" && r.Method == http.MethodGet:
		a.mu.Lock()
		a.claimGets++
		a.mu.Unlock()
		c, err := a.client.ResourceV1().ResourceClaims(parts[4]).Get(ctx, parts[6], metav1.GetOptions{})
		a.reply(w, c, err, "resource.k8s.io/v1", "ResourceClaim")
	case len(parts) == 4 && parts[3] == "resourceslices":
		a.slices(ctx, w, r)
	case len(parts) == 5 && parts[3] == "resourceslices":
		a.slice(ctx, w, r, parts[4])
	default:
		writeStatus(w, apierrors.NewNotFound(resourceapi.Resource("unknown"), r.URL.Path))
	}
}

func (a *fakeAPI) reply(w http.ResponseWriter, obj runtime.Object, err error, apiVersion, kind string) {
	if err != nil {
		writeStatus(w, err)
		return
	}
	obj.GetObjectKind().SetGroupVersionKind(schema.FromAPIVersionAndKind(apiVersion, kind))
	writeObject(w, http.StatusOK, obj)
}

// writeAllowed counts a slice write, or refuses it (422) while refusals are pending.
func (a *fakeAPI) writeAllowed(w http.ResponseWriter, name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refuseSliceWrites > 0 {
		a.refuseSliceWrites--
		writeStatus(w, apierrors.NewInvalid(schema.GroupKind{Group: "resource.k8s.io", Kind: "ResourceSlice"}, name, nil))
		return false
	}
	a.sliceWrites++
	return true
}

// readSlice decodes a written slice; without DRADeviceTaints the API server drops the taints.
func (a *fakeAPI) readSlice(r *http.Request) (*resourceapi.ResourceSlice, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	var s resourceapi.ResourceSlice
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, apierrors.NewBadRequest("the body is not a ResourceSlice: " + err.Error())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dropTaints {
		for i := range s.Spec.Devices {
			s.Spec.Devices[i].Taints = nil
		}
	}
	return &s, nil
}

func (a *fakeAPI) slices(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	api := a.client.ResourceV1().ResourceSlices()
	switch r.Method {
	case http.MethodGet:
		list, err := api.List(ctx, metav1.ListOptions{})
		if err != nil {
			writeStatus(w, err)
			return
		}
		// The fake clientset does not apply field selectors; the two a driver uses are applied here.
		want := map[string]string{}
		for _, term := range strings.Split(r.URL.Query().Get("fieldSelector"), ",") {
			if k, v, ok := strings.Cut(term, "="); ok {
				want[k] = v
			}
		}
		out := &resourceapi.ResourceSliceList{}
		for _, s := range list.Items {
			node := ""
			if s.Spec.NodeName != nil {
				node = *s.Spec.NodeName
			}
			if (want["spec.nodeName"] == "" || want["spec.nodeName"] == node) &&
				(want["spec.driver"] == "" || want["spec.driver"] == s.Spec.Driver) {
				s.APIVersion, s.Kind = "resource.k8s.io/v1", "ResourceSlice"
				out.Items = append(out.Items, s)
			}
		}
		out.APIVersion, out.Kind = "resource.k8s.io/v1", "ResourceSliceList"
		writeObject(w, http.StatusOK, out)
	case http.MethodPost:
		s, err := a.readSlice(r)
		if err != nil {
			writeStatus(w, err)
			return
		}
		if !a.writeAllowed(w, s.Name) {
			return
		}
		created, err := api.Create(ctx, s, metav1.CreateOptions{})
		a.reply(w, created, err, "resource.k8s.io/v1", "ResourceSlice")
	default:
		writeStatus(w, apierrors.NewMethodNotSupported(resourceapi.Resource("resourceslices"), r.Method))
	}
}

func (a *fakeAPI) slice(ctx context.Context, w http.ResponseWriter, r *http.Request, name string) {
	api := a.client.ResourceV1().ResourceSlices()
	switch r.Method {
	case http.MethodGet:
		s, err := api.Get(ctx, name, metav1.GetOptions{})
		a.reply(w, s, err, "resource.k8s.io/v1", "ResourceSlice")
	case http.MethodDelete:
		if err := api.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			writeStatus(w, err)
			return
		}
		writeObject(w, http.StatusOK, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status: metav1.StatusSuccess})
	case http.MethodPut, http.MethodPatch:
		if r.Method == http.MethodPatch && r.Header.Get("Content-Type") != "application/apply-patch+yaml" {
			writeStatus(w, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch",
				resourceapi.Resource("resourceslices"), name, "only server-side apply is served", 0, false))
			return
		}
		s, err := a.readSlice(r)
		if err != nil {
			writeStatus(w, err)
			return
		}
		if s.Name != name {
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("the body names %q, the path %q", s.Name, name)))
			return
		}
		if !a.writeAllowed(w, name) {
			return
		}
		// Server-side apply of a whole object: create it, or replace what is there.
		out, err := api.Update(ctx, s, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) && r.Method == http.MethodPatch {
			out, err = api.Create(ctx, s, metav1.CreateOptions{})
		}
		a.reply(w, out, err, "resource.k8s.io/v1", "ResourceSlice")
	default:
		writeStatus(w, apierrors.NewMethodNotSupported(resourceapi.Resource("resourceslices"), r.Method))
	}
}

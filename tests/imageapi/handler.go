package imageapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
)

// resources is what group/v1 serves: verbs, scope, kind, short names.
var resources = []struct {
	name, singular, kind string
	namespaced           bool
	verbs                []string
	shortNames           []string
}{
	{"images", "image", "Image", false, []string{"create", "delete", "get", "list"}, nil},
	{"imagestreammappings", "imagestreammapping", "ImageStreamMapping", true, []string{"create"}, nil},
	{"imagestreams", "imagestream", "ImageStream", true, []string{"create", "delete", "get", "list", "update"}, []string{"is"}},
	{"imagestreamtags", "imagestreamtag", "ImageStreamTag", true, []string{"delete", "get", "list"}, []string{"istag"}},
}

const maxBody = 32 << 20

// ServeHTTP serves the API. It trusts every caller: behind an aggregating
// kube-apiserver, authentication and RBAC happen there.
func (d *Double) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := Request{Method: r.Method, Path: r.URL.Path, User: r.Header.Get("X-Remote-User"), Groups: r.Header.Values("X-Remote-Group")}
	code, body, err := d.serve(r, &req)
	if err != nil {
		s := toStatus(err)
		code, body = int(s.Code), s
		if s.Details != nil && s.Details.RetryAfterSeconds > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(s.Details.RetryAfterSeconds))
		}
	}
	req.Code = code
	d.record(req)
	if text, ok := body.(string); ok {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		io.WriteString(w, text)
		return
	}
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func (d *Double) serve(r *http.Request, req *Request) (int, any, error) {
	p := strings.Trim(r.URL.Path, "/")
	prefix := "apis/" + d.opts.Group + "/" + Version
	switch {
	case p == "healthz" || p == "readyz" || p == "livez":
		return http.StatusOK, "ok", nil
	case p == "version":
		return http.StatusOK, &version.Info{Major: "1", Minor: "33", GitVersion: "v1.33.0-imageapi-double", Platform: "linux/amd64"}, nil
	case p == "api":
		return http.StatusOK, &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{}}, nil
	case strings.HasPrefix(p, "api/v1/namespaces/") && strings.Count(p, "/") == 3 && r.Method == http.MethodGet:
		// Every namespace exists. kubectl asks after a NotFound, to word its error.
		return http.StatusOK, map[string]any{"kind": "Namespace", "apiVersion": "v1",
			"metadata": map[string]any{"name": path.Base(p)}, "status": map[string]any{"phase": "Active"}}, nil
	case p == "apis":
		return http.StatusOK, &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
			Groups: []metav1.APIGroup{d.apiGroup()}}, nil
	case p == "apis/"+d.opts.Group:
		g := d.apiGroup()
		g.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
		return http.StatusOK, &g, nil
	case p == prefix:
		return http.StatusOK, d.resourceList(), nil
	case strings.HasPrefix(p, prefix+"/"):
		return d.serveResource(r, req, strings.Split(strings.TrimPrefix(p, prefix+"/"), "/"))
	}
	return 0, nil, notFoundPath()
}

func (d *Double) apiGroup() metav1.APIGroup {
	gv := metav1.GroupVersionForDiscovery{GroupVersion: d.GroupVersion(), Version: Version}
	return metav1.APIGroup{Name: d.opts.Group, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv}
}

func (d *Double) resourceList() *metav1.APIResourceList {
	l := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: d.GroupVersion()}
	for _, res := range resources {
		ar := metav1.APIResource{Name: res.name, SingularName: res.singular, Namespaced: res.namespaced,
			Kind: res.kind, Verbs: res.verbs, ShortNames: res.shortNames}
		if res.name == "imagestreams" {
			ar.Categories = []string{"all"}
		}
		l.APIResources = append(l.APIResources, ar)
	}
	return l
}

// serveResource handles group/v1/[namespaces/<ns>/]<resource>[/<name>].
func (d *Double) serveResource(r *http.Request, req *Request, parts []string) (int, any, error) {
	if parts[0] == "namespaces" {
		if len(parts) < 3 || parts[1] == "" {
			return 0, nil, notFoundPath()
		}
		req.Namespace, parts = parts[1], parts[2:]
	}
	if len(parts) > 2 || parts[len(parts)-1] == "" {
		return 0, nil, notFoundPath() // no subresources are modelled
	}
	req.Resource = parts[0]
	if len(parts) == 2 {
		req.Name = parts[1]
	}
	idx := -1
	for i, res := range resources {
		if res.name == req.Resource {
			idx = i
		}
	}
	if idx < 0 || (resources[idx].namespaced == false && req.Namespace != "") {
		return 0, nil, notFoundPath()
	}
	res := resources[idx]
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && req.Name != "":
		req.Verb = "get"
	case r.Method == http.MethodGet && (q.Get("watch") == "true" || q.Get("watch") == "1"):
		req.Verb = "watch"
	case r.Method == http.MethodGet:
		req.Verb = "list"
	case r.Method == http.MethodPost && req.Name == "":
		req.Verb = "create"
	case r.Method == http.MethodPut && req.Name != "":
		req.Verb = "update"
	case r.Method == http.MethodDelete && req.Name != "":
		req.Verb = "delete"
	case r.Method == http.MethodDelete:
		req.Verb = "deletecollection"
	case r.Method == http.MethodPatch:
		req.Verb = "patch"
	default:
		return 0, nil, apierrors.NewMethodNotSupported(d.gr(res.name), strings.ToLower(r.Method))
	}
	if !contains(res.verbs, req.Verb) {
		return 0, nil, apierrors.NewMethodNotSupported(d.gr(res.name), req.Verb)
	}
	if res.namespaced && req.Namespace == "" && req.Verb != "list" {
		return 0, nil, notFoundPath()
	}
	table, err := negotiate(r.Header.Get("Accept"))
	if err != nil {
		return 0, nil, err
	}
	sel := labels.Everything()
	if s := q.Get("labelSelector"); s != "" {
		if sel, err = labels.Parse(s); err != nil {
			return 0, nil, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
		}
	}
	if q.Get("fieldSelector") != "" {
		return 0, nil, apierrors.NewBadRequest("field selectors are not supported by the imageapi test double")
	}
	if err := d.takeFault(req.Verb, req.Resource, req.Name); err != nil {
		return 0, nil, err
	}

	code, body, err := d.dispatch(r, req, sel)
	if err == nil && table && (req.Verb == "get" || req.Verb == "list") {
		body = d.toTable(body)
	}
	return code, body, err
}

func (d *Double) dispatch(r *http.Request, req *Request, sel labels.Selector) (int, any, error) {
	ns, name := req.Namespace, req.Name
	switch req.Resource + " " + req.Verb {
	case "imagestreams get":
		return d.getStream(ns, name)
	case "imagestreams list":
		return d.listStreams(ns, sel)
	case "imagestreams create", "imagestreams update":
		s := &ImageStream{}
		if err := d.decode(r, ns, "ImageStream", s, &s.ObjectMeta); err != nil {
			return 0, nil, err
		}
		if req.Verb == "create" {
			return d.createStream(ns, s)
		}
		return d.updateStream(ns, name, s)
	case "imagestreams delete":
		return d.deleteStream(ns, name)
	case "imagestreammappings create":
		m := &ImageStreamMapping{}
		if err := d.decode(r, ns, "ImageStreamMapping", m, &m.ObjectMeta); err != nil {
			return 0, nil, err
		}
		req.Name = m.Name
		return d.createMapping(ns, m)
	case "imagestreamtags get":
		return d.getISTag(ns, name)
	case "imagestreamtags list":
		return d.listISTags(ns, sel)
	case "imagestreamtags delete":
		return d.deleteISTag(ns, name)
	case "images get":
		return d.getImage(name)
	case "images list":
		return d.listImages(sel)
	case "images create":
		img := &Image{}
		if err := d.decode(r, "", "Image", img, &img.ObjectMeta); err != nil {
			return 0, nil, err
		}
		req.Name = img.Name
		return d.createImage(img)
	case "images delete":
		return d.deleteImage(name)
	}
	return 0, nil, apierrors.NewMethodNotSupported(d.gr(req.Resource), req.Verb)
}

// decode reads a JSON request body of the given kind, checking media type,
// apiVersion, kind and namespace as the generic apiserver handlers do.
func (d *Double) decode(r *http.Request, ns, kind string, into any, meta *metav1.ObjectMeta) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure,
				Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
				Message: fmt.Sprintf("the body of the request was in an unknown format (%s) - accepted media types include: application/json (this test double speaks JSON only)", ct)}}
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(body, &tm); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("couldn't get version/kind; json parse error: %v", err))
	}
	if tm.APIVersion != "" && tm.APIVersion != d.GroupVersion() {
		return apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", tm.APIVersion, d.GroupVersion()))
	}
	if tm.Kind != "" && tm.Kind != kind {
		return apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: the kind in the data does not match", tm.Kind, Version, kind))
	}
	if err := json.Unmarshal(body, into); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", kind, Version, kind, err))
	}
	if ns != "" && meta.Namespace != "" && meta.Namespace != ns {
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	return nil
}

// negotiate picks JSON or a meta.k8s.io/v1 Table from an Accept header;
// anything else (protobuf, CBOR, aggregated discovery only) is 406.
func negotiate(accept string) (table bool, err error) {
	if strings.TrimSpace(accept) == "" {
		return false, nil
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || (mt != "application/json" && mt != "application/*" && mt != "*/*") {
			continue
		}
		switch params["as"] {
		case "":
			return false, nil
		case "Table":
			if params["g"] == "meta.k8s.io" && params["v"] == "v1" {
				return true, nil
			}
		}
	}
	return false, &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure,
		Code: http.StatusNotAcceptable, Reason: metav1.StatusReasonNotAcceptable,
		Message: "only the following media types are accepted: application/json (this test double speaks JSON only)"}}
}

func notFoundPath() error {
	return apierrors.NewGenericServerResponse(http.StatusNotFound, "get", schema.GroupResource{}, "", "404 page not found", 0, false)
}

// toStatus turns an error into the v1 Status a server would send.
func toStatus(err error) *metav1.Status {
	var s apierrors.APIStatus
	if !errors.As(err, &s) {
		s = apierrors.NewInternalError(err)
	}
	st := s.Status()
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	if st.Code == 0 {
		st.Code = http.StatusInternalServerError
	}
	return &st
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

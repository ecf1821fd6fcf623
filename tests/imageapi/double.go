// Package imageapi is a faithful in-memory test double of the OpenShift
// Image API (image.openshift.io/v1; ACP serves the same shape as
// image.alauda.io/v1), as an http.Handler speaking JSON only.
//
// It serves discovery (/apis, /apis/<group>, /apis/<group>/v1, /api,
// /version) and, in group/v1:
//
//	imagestreams         namespaced  get list create update delete
//	imagestreammappings  namespaced  create
//	imagestreamtags      namespaced  get list delete
//	images               cluster     get list create delete
//
// following openshift-apiserver: an ImageStreamMapping for a missing stream
// is 404 NotFound with details {kind: imagestreammappings, name: <stream>}
// and creates nothing; otherwise the Image is created (AlreadyExists
// ignored), and a tag event {created, dockerImageReference, image,
// generation} is added per AddTagEventToImageStream (newest first, collapsed
// when the newest has the same reference/image), tracking tags follow, and
// the answer is 201 with a v1 Status Success. ImageStream create/update
// follow the strategy: generation 1, +1 on spec changes, spec tag
// generations, resourceVersion required on update (409 when stale), spec
// tags resolved into status events (reference DockerImage tags,
// ImageStreamTag/ImageStreamImage tags, tracking tags). ImageStreamTags are
// the §3.3 view (tag null for pushed-only tags, image without manifest and
// config), and lists and gets honour a meta.k8s.io/v1 Table Accept header
// with `oc get`'s columns. Errors are metav1.Status
// bodies built with k8s.io/apimachinery/pkg/api/errors, so messages and
// details match a real server's. Protobuf requests get 415 and
// protobuf-only Accept headers 406, as a JSON-only server would answer:
// clients must set rest.Config.ContentType = "application/json".
//
// Not modelled: watch, patch, imagestreams/status and /layers,
// imagestreamimages, imagetags, imagestreamimports, imagestreamtag
// create/update, namespaces (any namespace exists), limit ranges and
// registry allow-lists, filling dockerImageMetadata from a raw manifest,
// image signatures. Standalone kubectl create/apply needs --validate=false
// (no OpenAPI documents are served); behind kube-apiserver kubectl create
// works as is.
package imageapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
)

// Groups the double is meant for.
const (
	OpenShiftGroup = "image.openshift.io"
	AlaudaGroup    = "image.alauda.io"
	Version        = "v1"
)

// Options configures a Double.
type Options struct {
	// Group is the API group; default OpenShiftGroup.
	Group string
	// RegistryHost is the internal registry host name. When set, a new
	// stream gets status.dockerImageRepository <RegistryHost>/<ns>/<name>
	// and an ImageStreamMapping without image.dockerImageReference gets
	// <RegistryHost>/<ns>/<stream>@<image name>.
	RegistryHost string
	// PublicRegistryHost, when set, fills status.publicDockerImageRepository.
	PublicRegistryHost string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Request is one request the double answered.
type Request struct {
	Method    string
	Path      string
	Verb      string // get list create update delete, or "" outside group/v1
	Resource  string
	Namespace string
	Name      string
	User      string   // X-Remote-User (set by an aggregating kube-apiserver)
	Groups    []string // X-Remote-Group
	Code      int
}

// Double is the in-memory Image API. It is safe for concurrent use.
type Double struct {
	opts Options

	mu       sync.Mutex
	rv       uint64
	streams  map[streamKey]*ImageStream
	images   map[string]*Image
	faults   []*fault
	requests []Request
}

type streamKey struct{ ns, name string }

type fault struct {
	verb, resource string
	status, times  int
}

// New returns an empty Double.
func New(o Options) *Double {
	if o.Group == "" {
		o.Group = OpenShiftGroup
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Double{opts: o, streams: map[streamKey]*ImageStream{}, images: map[string]*Image{}}
}

// Group returns the API group served.
func (d *Double) Group() string { return d.opts.Group }

// GroupVersion returns "<group>/v1", the apiVersion of the objects.
func (d *Double) GroupVersion() string { return d.opts.Group + "/" + Version }

// FailNext makes the next `times` requests matching verb (get, list,
// create, update, delete; "" or "*" for any) and resource (imagestreams,
// imagestreammappings, imagestreamtags, images; "" or "*" for any) fail
// with an API error of the given HTTP status (409 Conflict, 500
// InternalError, 429 TooManyRequests with Retry-After, 503, 404, 403, or a
// generic one) before they touch any state.
func (d *Double) FailNext(verb, resource string, status, times int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults = append(d.faults, &fault{verb: verb, resource: resource, status: status, times: times})
}

// DeleteImageStream removes a stream as if someone deleted it, e.g. in the
// middle of a run. It reports whether the stream existed.
func (d *Double) DeleteImageStream(namespace, name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := streamKey{namespace, name}
	_, ok := d.streams[k]
	delete(d.streams, k)
	return ok
}

// ImageStream returns a copy of a stream as the API would serve it.
func (d *Double) ImageStream(namespace, name string) (*ImageStream, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.streams[streamKey{namespace, name}]
	if !ok {
		return nil, false
	}
	return d.streamOut(s), true
}

// ImageStreams returns copies of every stream in namespace ("" for all),
// ordered by namespace and name.
func (d *Double) ImageStreams(namespace string) []ImageStream {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []ImageStream
	for _, s := range d.sortedStreams(namespace) {
		out = append(out, *d.streamOut(s))
	}
	return out
}

// Image returns a copy of a stored Image.
func (d *Double) Image(name string) (*Image, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	img, ok := d.images[name]
	if !ok {
		return nil, false
	}
	return d.imageOut(img), true
}

// Requests returns the requests answered so far, oldest first.
func (d *Double) Requests() []Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Request(nil), d.requests...)
}

// CountRequests counts answered requests matching verb and resource ("" matches any).
func (d *Double) CountRequests(verb, resource string) int {
	n := 0
	for _, r := range d.Requests() {
		if (verb == "" || r.Verb == verb) && (resource == "" || r.Resource == resource) {
			n++
		}
	}
	return n
}

func (d *Double) record(r Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.requests = append(d.requests, r)
}

// takeFault returns the injected error for a request, if one is due.
func (d *Double) takeFault(verb, resource, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, f := range d.faults {
		if (f.verb == "" || f.verb == "*" || f.verb == verb) && (f.resource == "" || f.resource == "*" || f.resource == resource) {
			f.times--
			if f.times <= 0 {
				d.faults = append(d.faults[:i], d.faults[i+1:]...)
			}
			return injected(f.status, verb, d.gr(resource), name)
		}
	}
	return nil
}

func injected(status int, verb string, gr schema.GroupResource, name string) error {
	cause := errors.New("injected fault")
	switch status {
	case 409:
		return apierrors.NewConflict(gr, name, cause)
	case 500:
		return apierrors.NewInternalError(cause)
	case 429:
		return apierrors.NewTooManyRequests("injected fault", 1)
	case 503:
		return apierrors.NewServiceUnavailable("injected fault")
	case 404:
		return apierrors.NewNotFound(gr, name)
	case 403:
		return apierrors.NewForbidden(gr, name, cause)
	}
	return apierrors.NewGenericServerResponse(status, verb, gr, name, "injected fault", 0, false)
}

func (d *Double) gr(resource string) schema.GroupResource {
	return schema.GroupResource{Group: d.opts.Group, Resource: resource}
}

func (d *Double) gk(kind string) schema.GroupKind {
	return schema.GroupKind{Group: d.opts.Group, Kind: kind}
}

func successStatus(code int, details *metav1.StatusDetails) *metav1.Status {
	return &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusSuccess, Code: int32(code), Details: details,
	}
}

func int64p(v int64) *int64 { return &v }

// now is the clock, to the second as the wire format keeps it.
func (d *Double) now() metav1.Time {
	return metav1.NewTime(d.opts.Now().UTC().Truncate(time.Second))
}

// nextRV bumps the store-wide resourceVersion (like etcd's revision).
func (d *Double) nextRV() string {
	d.rv++
	return strconv.FormatUint(d.rv, 10)
}

func (d *Double) typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{Kind: kind, APIVersion: d.GroupVersion()}
}

func (d *Double) streamOut(s *ImageStream) *ImageStream {
	c := clone(s)
	c.TypeMeta = d.typeMeta("ImageStream")
	return c
}

func (d *Double) imageOut(img *Image) *Image {
	c := clone(img)
	c.TypeMeta = d.typeMeta("Image")
	return c
}

// sortedStreams lists the streams of namespace ("" for all) by namespace and name.
func (d *Double) sortedStreams(namespace string) []*ImageStream {
	var out []*ImageStream
	for k, s := range d.streams {
		if namespace == "" || k.ns == namespace {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// clone deep-copies through JSON, which is also what a client would see.
func clone[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("imageapi: marshal %T: %v", v, err))
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("imageapi: unmarshal %T: %v", v, err))
	}
	return out
}

func newUID() types.UID { return uuid.NewUUID() }

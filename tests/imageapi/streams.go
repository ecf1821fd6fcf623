package imageapi

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ImageStreams (openshift-apiserver pkg/image/apiserver/registry/imagestream).

func (d *Double) createStream(ns string, s *ImageStream) (int, any, error) {
	s.Namespace = ns
	if s.Name == "" && s.GenerateName != "" {
		s.Name = s.GenerateName + string(newUID())[:5]
	}
	if s.ResourceVersion != "" {
		return 0, nil, apierrors.NewInternalError(errors.New("resourceVersion should not be set on objects to be created"))
	}
	defaultSpecTags(s)
	if errs := validateStream(s); len(errs) > 0 {
		return 0, nil, apierrors.NewInvalid(d.gk("ImageStream"), s.Name, errs)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := streamKey{ns, s.Name}
	if _, ok := d.streams[k]; ok {
		return 0, nil, apierrors.NewAlreadyExists(d.gr("imagestreams"), s.Name)
	}
	// imagestream strategy PrepareForCreate: generation 1 for the stream and
	// every spec tag, status from the server only.
	s.UID = newUID()
	s.CreationTimestamp = d.now()
	s.Generation = 1
	s.DeletionTimestamp, s.ManagedFields = nil, nil
	for i := range s.Spec.Tags {
		s.Spec.Tags[i].Generation = int64p(1)
	}
	s.Status = ImageStreamStatus{DockerImageRepository: s.Spec.DockerImageRepository}
	if h := d.opts.RegistryHost; h != "" {
		s.Status.DockerImageRepository = h + "/" + ns + "/" + s.Name
	}
	if h := d.opts.PublicRegistryHost; h != "" {
		s.Status.PublicDockerImageRepository = h + "/" + ns + "/" + s.Name
	}
	if errs := d.tagsChanged(nil, s); len(errs) > 0 {
		return 0, nil, apierrors.NewInvalid(d.gk("ImageStream"), s.Name, errs)
	}
	s.ResourceVersion = d.nextRV()
	d.streams[k] = clone(s)
	return http.StatusCreated, d.streamOut(s), nil
}

func (d *Double) updateStream(ns, name string, s *ImageStream) (int, any, error) {
	if s.Name != name {
		return 0, nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", s.Name, name))
	}
	s.Namespace = ns
	defaultSpecTags(s)
	if errs := validateStream(s); len(errs) > 0 {
		return 0, nil, apierrors.NewInvalid(d.gk("ImageStream"), s.Name, errs)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old, ok := d.streams[streamKey{ns, name}]
	if !ok {
		return 0, nil, apierrors.NewNotFound(d.gr("imagestreams"), name)
	}
	switch s.ResourceVersion { // the strategy allows no unconditional update
	case "":
		return 0, nil, apierrors.NewInvalid(d.gk("ImageStream"), name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "resourceVersion"), s.ResourceVersion, "must be specified for an update")})
	case old.ResourceVersion:
	default:
		return 0, nil, apierrors.NewConflict(d.gr("imagestreams"), name,
			errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	}
	// PrepareForUpdate: status is kept; users may only reset a spec tag
	// generation to 0; any spec change bumps the generation, and new or
	// changed tags (or zeroed ones) take it.
	s.UID, s.CreationTimestamp, s.Generation = old.UID, old.CreationTimestamp, old.Generation
	s.Status = clone(old).Status
	for i := range s.Spec.Tags {
		t := &s.Spec.Tags[i]
		if o := old.specTag(t.Name); o != nil && (t.Generation == nil || *t.Generation != 0) {
			t.Generation = o.Generation
		}
	}
	if !reflect.DeepEqual(clone(&s.Spec), clone(&old.Spec)) {
		s.Generation++
	}
	for i := range s.Spec.Tags {
		t := &s.Spec.Tags[i]
		if o := old.specTag(t.Name); o == nil || tagRefChanged(*o, *t, ns) {
			t.Generation = nil
		}
		if t.Generation == nil || *t.Generation == 0 {
			t.Generation = int64p(s.Generation)
		}
	}
	if errs := d.tagsChanged(old, s); len(errs) > 0 {
		return 0, nil, apierrors.NewInvalid(d.gk("ImageStream"), name, errs)
	}
	s.ResourceVersion = d.nextRV()
	d.streams[streamKey{ns, name}] = clone(s)
	return http.StatusOK, d.streamOut(s), nil
}

// tagsChanged gives new or changed spec tags their status events
// (imagestream strategy tagsChanged): a DockerImage tag with reference
// true points at its pull spec at once; an ImageStreamTag or
// ImageStreamImage tag takes the event it refers to (in this stream or
// another), rewritten to this stream's repository when it is in the
// integrated registry. Then tags tracking a changed tag follow. The
// caller holds d.mu.
func (d *Double) tagsChanged(old, s *ImageStream) field.ErrorList {
	var errs field.ErrorList
	for i := range s.Spec.Tags {
		t := &s.Spec.Tags[i]
		if old != nil {
			if o := old.specTag(t.Name); o != nil && !tagRefChanged(*o, *t, s.Namespace) {
				continue
			}
		}
		if t.From == nil {
			continue
		}
		gen := s.Generation
		t.Generation = &gen
		from := field.NewPath("spec", "tags").Key(t.Name).Child("from")
		if t.From.Kind == "DockerImage" {
			if t.Reference && t.From.Name != "" {
				addTagEvent(s, t.Name, TagEvent{Created: d.now(), DockerImageReference: t.From.Name, Generation: gen})
			}
			continue
		}
		sep := ":"
		if t.From.Kind == "ImageStreamImage" {
			sep = "@"
		}
		streamName, tagOrID := s.Name, t.From.Name
		if parts := strings.Split(t.From.Name, sep); len(parts) == 2 {
			streamName, tagOrID = parts[0], parts[1]
		} else if len(parts) > 2 {
			errs = append(errs, field.Invalid(from.Child("name"), t.From.Name, "must be of the form <tag>, <repo>:<tag>, <id>, or <repo>@<id>"))
			continue
		}
		refNS := t.From.Namespace
		if refNS == "" {
			refNS = s.Namespace
		}
		ref := s
		if refNS != s.Namespace || streamName != s.Name {
			if ref = d.streams[streamKey{refNS, streamName}]; ref == nil {
				errs = append(errs, field.NotFound(from.Child("name"), t.From.Name))
				continue
			}
		}
		var ev *TagEvent
		if t.From.Kind == "ImageStreamTag" {
			if l := ref.latest(tagOrID); l != nil {
				c := *l
				ev = &c
			}
		} else {
			for _, h := range ref.Status.Tags {
				for _, e := range h.Items {
					if e.Image == tagOrID {
						ev = &TagEvent{Created: d.now(), DockerImageReference: e.DockerImageReference, Image: e.Image}
					}
				}
			}
			if ev == nil {
				errs = append(errs, field.Invalid(from.Child("name"), t.From.Name,
					fmt.Sprintf("error generating tag event: %s", apierrors.NewNotFound(d.gr("imagestreamimage"), tagOrID))))
				continue
			}
		}
		if ev == nil {
			continue // the referenced tag has no image yet, which is fine
		}
		ev.Generation = gen
		if h := d.opts.RegistryHost; h != "" && !t.Reference {
			if rest, ok := strings.CutPrefix(ev.DockerImageReference, h+"/"+refNS+"/"+streamName+"@"); ok {
				ev.DockerImageReference = h + "/" + s.Namespace + "/" + s.Name + "@" + rest
			}
		}
		addTagEvent(s, t.Name, *ev)
	}
	// updateChangedTrackingTags
	for _, h := range clone(&s.Status).Tags {
		if len(h.Items) == 0 {
			continue
		}
		if old != nil && len(h.Conditions) == 0 {
			if prev := old.latest(h.Tag); prev != nil && *prev == h.Items[0] {
				continue
			}
		}
		updateTrackingTags(s, h.Tag, h.Items[0])
	}
	return errs
}

// tagRefChanged reports whether a spec tag now points elsewhere, or was
// reset to generation 0 (imagestream strategy tagRefChanged).
func tagRefChanged(old, next TagReference, ns string) bool {
	if next.From == nil || (next.From.Kind == "" && next.From.Name == "") {
		return false
	}
	oldFrom := old.From
	if oldFrom == nil {
		oldFrom = &corev1.ObjectReference{}
	}
	oldNS, nextNS := oldFrom.Namespace, next.From.Namespace
	if oldNS == "" {
		oldNS = ns
	}
	if nextNS == "" {
		nextNS = ns
	}
	if oldNS != nextNS || oldFrom.Name != next.From.Name || old.Reference != next.Reference {
		return true
	}
	return old.Generation != nil && next.Generation != nil && *old.Generation != *next.Generation && *next.Generation == 0
}

func (d *Double) getStream(ns, name string) (int, any, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.streams[streamKey{ns, name}]
	if !ok {
		return 0, nil, apierrors.NewNotFound(d.gr("imagestreams"), name)
	}
	return http.StatusOK, d.streamOut(s), nil
}

func (d *Double) listStreams(ns string, sel labels.Selector) (int, any, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	list := &ImageStreamList{TypeMeta: d.typeMeta("ImageStreamList"), Items: []ImageStream{}}
	list.ResourceVersion = fmt.Sprint(d.rv)
	for _, s := range d.sortedStreams(ns) {
		if sel.Matches(labels.Set(s.Labels)) {
			list.Items = append(list.Items, *d.streamOut(s))
		}
	}
	return http.StatusOK, list, nil
}

func (d *Double) deleteStream(ns, name string) (int, any, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := streamKey{ns, name}
	s, ok := d.streams[k]
	if !ok {
		return 0, nil, apierrors.NewNotFound(d.gr("imagestreams"), name)
	}
	delete(d.streams, k)
	d.nextRV()
	return http.StatusOK, successStatus(http.StatusOK, &metav1.StatusDetails{
		Name: name, Group: d.opts.Group, Kind: "imagestreams", UID: s.UID}), nil
}

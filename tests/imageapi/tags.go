package imageapi

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ImageStreamMappings and ImageStreamTags (registry/imagestreammapping,
// registry/imagestreamtag, internal/imageutil).

func (d *Double) createMapping(ns string, m *ImageStreamMapping) (int, any, error) {
	m.Namespace = ns
	// imagestreammapping strategy PrepareForCreate.
	if m.Image.DockerImageReference == "" && d.opts.RegistryHost != "" {
		m.Image.DockerImageReference = d.opts.RegistryHost + "/" + ns + "/" + m.Name + "@" + m.Image.Name
	}
	m.Image.Signatures = nil
	if errs := validateMapping(m); len(errs) > 0 {
		return 0, nil, apierrors.NewInvalid(d.gk("ImageStreamMapping"), m.Name, errs)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	stream, err := d.streamForMapping(m)
	if err != nil {
		return 0, nil, err
	}
	tag := m.Tag
	if tag == "" {
		tag = DefaultImageTag
	}
	image := m.Image
	_, existed := d.images[image.Name]
	if !existed {
		d.storeImage(&image)
	}
	ref := image.DockerImageReference
	if existed && image.Annotations[ManagedByOpenShiftAnnotation] == "true" {
		repo := stream.Status.DockerImageRepository
		if repo == "" {
			repo = stream.Spec.DockerImageRepository
		}
		if repo != "" {
			ref = repo + "@" + image.Name
		}
	}
	next := TagEvent{Created: d.now(), DockerImageReference: ref, Image: image.Name, Generation: stream.Generation}
	if addTagEvent(stream, tag, next) {
		updateTrackingTags(stream, tag, next)
		stream.ResourceVersion = d.nextRV()
	}
	return http.StatusCreated, successStatus(http.StatusCreated, nil), nil
}

// streamForMapping finds the stream by name or, for legacy clients, by
// spec.dockerImageRepository. Over HTTP the NotFound names the request's
// resource: imagestreammappings "<stream>".
func (d *Double) streamForMapping(m *ImageStreamMapping) (*ImageStream, error) {
	if m.Name != "" {
		s, ok := d.streams[streamKey{m.Namespace, m.Name}]
		if !ok {
			return nil, apierrors.NewNotFound(d.gr("imagestreammappings"), m.Name)
		}
		return s, nil
	}
	for _, s := range d.sortedStreams(m.Namespace) {
		if s.Spec.DockerImageRepository == m.DockerImageRepository {
			return s, nil
		}
	}
	return nil, apierrors.NewInvalid(d.gk("ImageStreamMapping"), "", field.ErrorList{
		field.NotFound(field.NewPath("dockerImageStream"), m.DockerImageRepository)})
}

// addTagEvent is AddTagEventToImageStream: it reports whether the stream changed.
func addTagEvent(s *ImageStream, tag string, next TagEvent) bool {
	h := s.statusTag(tag)
	if h == nil {
		s.Status.Tags = append(s.Status.Tags, NamedTagEventList{Tag: tag})
		sort.Slice(s.Status.Tags, func(i, j int) bool { return s.Status.Tags[i].Tag < s.Status.Tags[j].Tag })
		h = s.statusTag(tag)
	}
	if len(h.Items) == 0 {
		h.Items = []TagEvent{next}
		return true
	}
	prev := &h.Items[0]
	sameRef := prev.DockerImageReference == next.DockerImageReference
	sameImage := prev.Image == next.Image
	switch {
	case sameRef && sameImage && prev.Generation == next.Generation:
		return false
	case sameRef && sameImage: // collapse
	case sameRef:
		prev.Image = next.Image
	case sameImage:
		prev.DockerImageReference = next.DockerImageReference
	default:
		h.Conditions = nil
		h.Items = append([]TagEvent{next}, h.Items...)
		return true
	}
	prev.Generation = next.Generation
	h.Conditions = nil
	return true
}

// updateTrackingTags gives next to every spec tag that follows tag of the
// same stream (from.kind ImageStreamTag, from.name "<tag>" or "<stream>:<tag>").
func updateTrackingTags(s *ImageStream, tag string, next TagEvent) {
	for _, ref := range s.Spec.Tags {
		f := ref.From
		if f == nil || f.Kind != "ImageStreamTag" || (f.Namespace != "" && f.Namespace != s.Namespace) {
			continue
		}
		stream, t := s.Name, f.Name
		if i := strings.LastIndex(f.Name, ":"); i >= 0 {
			stream, t = f.Name[:i], f.Name[i+1:]
		}
		if stream == s.Name && t == tag {
			addTagEvent(s, ref.Name, next)
		}
	}
}

// ---- ImageStreamTags

func splitISTag(id string) (stream, tag string, err error) {
	stream, tag, ok := strings.Cut(id, ":")
	if !ok || stream == "" || tag == "" || strings.Contains(tag, ":") {
		return "", "", apierrors.NewBadRequest("ImageStreamTags must be retrieved with <name>:<tag>")
	}
	return stream, tag, nil
}

func (d *Double) getISTag(ns, id string) (int, any, error) {
	name, tag, err := splitISTag(id)
	if err != nil {
		return 0, nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.streams[streamKey{ns, name}]
	if !ok {
		return 0, nil, apierrors.NewNotFound(d.gr("imagestreamtags"), name)
	}
	ev := s.latest(tag)
	if ev == nil || ev.Image == "" {
		return 0, nil, apierrors.NewNotFound(d.gr("imagestreamtags"), id)
	}
	img, ok := d.images[ev.Image]
	if !ok {
		return 0, nil, apierrors.NewNotFound(d.gr("imagestreamtags"), ev.Image)
	}
	return http.StatusOK, d.newISTag(s, tag, img), nil
}

func (d *Double) listISTags(ns string, sel labels.Selector) (int, any, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	list := &ImageStreamTagList{TypeMeta: d.typeMeta("ImageStreamTagList"), Items: []ImageStreamTag{}}
	list.ResourceVersion = fmt.Sprint(d.rv)
	for _, s := range d.sortedStreams(ns) {
		if !sel.Matches(labels.Set(s.Labels)) {
			continue
		}
		for _, h := range s.Status.Tags {
			if ev := s.latest(h.Tag); ev != nil && ev.Image != "" {
				list.Items = append(list.Items, *d.newISTag(s, h.Tag, nil))
			}
		}
	}
	return http.StatusOK, list, nil
}

// newISTag builds the ImageStreamTag view (imagestreamtag/rest.go newISTag).
// With img nil (listing) the image is only {name, dockerImageReference}.
func (d *Double) newISTag(s *ImageStream, tag string, img *Image) *ImageStreamTag {
	ev := s.latest(tag)
	ist := &ImageStreamTag{
		TypeMeta: d.typeMeta("ImageStreamTag"),
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.Namespace, Name: s.Name + ":" + tag,
			CreationTimestamp: ev.Created, Annotations: map[string]string{},
			Labels: s.Labels, ResourceVersion: s.ResourceVersion, UID: s.UID,
		},
		Generation:   ev.Generation,
		LookupPolicy: s.Spec.LookupPolicy,
		Conditions:   s.statusTag(tag).Conditions,
	}
	if img != nil {
		ist.Image = *d.imageOut(img)
		ist.Image.TypeMeta = metav1.TypeMeta{}
		ist.Image.DockerImageManifest, ist.Image.DockerImageConfig = "", ""
	} else {
		ist.Image.Name = ev.Image
	}
	if ref := s.specTag(tag); ref != nil {
		ist.Tag = clone(ref)
		for k, v := range ref.Annotations {
			ist.Annotations[k] = v
			if img != nil {
				if ist.Image.Annotations == nil {
					ist.Image.Annotations = map[string]string{}
				}
				ist.Image.Annotations[k] = v
			}
		}
	}
	ist.Image.DockerImageReference = resolveReference(s, tag, ev)
	return clone(ist)
}

// resolveReference is ResolveReferenceForTagEvent: referencePolicy Local
// points at the integrated registry.
func resolveReference(s *ImageStream, tag string, ev *TagEvent) string {
	ref := s.specTag(tag)
	if ref == nil || ref.ReferencePolicy.Type != LocalTagReferencePolicy ||
		s.Status.DockerImageRepository == "" || ev.Image == "" {
		return ev.DockerImageReference
	}
	return s.Status.DockerImageRepository + "@" + ev.Image
}

func (d *Double) deleteISTag(ns, id string) (int, any, error) {
	name, tag, err := splitISTag(id)
	if err != nil {
		return 0, nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.streams[streamKey{ns, name}]
	if !ok {
		return 0, nil, apierrors.NewNotFound(d.gr("imagestreamtags"), name)
	}
	found := false
	for i := range s.Status.Tags {
		if s.Status.Tags[i].Tag == tag {
			s.Status.Tags = append(s.Status.Tags[:i], s.Status.Tags[i+1:]...)
			found = true
			break
		}
	}
	for i := range s.Spec.Tags {
		if s.Spec.Tags[i].Name == tag {
			s.Spec.Tags = append(s.Spec.Tags[:i], s.Spec.Tags[i+1:]...)
			s.Generation++ // a spec change
			found = true
			break
		}
	}
	if !found {
		return 0, nil, apierrors.NewNotFound(d.gr("imagestreamtags"), id)
	}
	s.ResourceVersion = d.nextRV()
	return http.StatusOK, successStatus(http.StatusOK, nil), nil
}

package imageapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The REST semantics, after openshift-apiserver pkg/image/apiserver/registry
// (imagestream, imagestreammapping, imagestreamtag, image). Each method
// returns the HTTP status and body of a success, or an API error.

// ---- ImageStreams

func (d *Double) createStream(ns string, s *ImageStream) (int, any, error) {
	s.Namespace = ns
	if s.Name == "" && s.GenerateName != "" {
		s.Name = s.GenerateName + string(newUID())[:5]
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
	// imagestream strategy PrepareForCreate: generation 1, spec tag
	// generations 1, status from the server only.
	s.UID = newUID()
	s.CreationTimestamp = d.now()
	s.Generation = 1
	s.DeletionTimestamp, s.ManagedFields = nil, nil
	for i := range s.Spec.Tags {
		if g := s.Spec.Tags[i].Generation; g == nil || *g == 0 {
			s.Spec.Tags[i].Generation = int64p(1)
		}
	}
	s.Status = ImageStreamStatus{DockerImageRepository: s.Spec.DockerImageRepository}
	if h := d.opts.RegistryHost; h != "" {
		s.Status.DockerImageRepository = h + "/" + ns + "/" + s.Name
	}
	if h := d.opts.PublicRegistryHost; h != "" {
		s.Status.PublicDockerImageRepository = h + "/" + ns + "/" + s.Name
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
	if s.ResourceVersion != "" && s.ResourceVersion != old.ResourceVersion {
		return 0, nil, apierrors.NewConflict(d.gr("imagestreams"), name,
			fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
	}
	// PrepareForUpdate: status is kept, generation moves with the spec,
	// changed (or zeroed) spec tags take the new generation, nil keeps the old.
	s.UID, s.CreationTimestamp, s.Generation = old.UID, old.CreationTimestamp, old.Generation
	s.Status = old.Status
	for i := range s.Spec.Tags {
		if t := old.specTag(s.Spec.Tags[i].Name); t != nil && s.Spec.Tags[i].Generation == nil {
			s.Spec.Tags[i].Generation = t.Generation
		}
	}
	if !reflect.DeepEqual(clone(&s.Spec), clone(&old.Spec)) {
		s.Generation++
		for i := range s.Spec.Tags {
			t := &s.Spec.Tags[i]
			if prev := old.specTag(t.Name); prev == nil || t.Generation == nil || *t.Generation == 0 || !sameTagRef(*prev, *t) {
				t.Generation = int64p(s.Generation)
			}
		}
	}
	s.ResourceVersion = d.nextRV()
	d.streams[streamKey{ns, name}] = clone(s)
	return http.StatusOK, d.streamOut(s), nil
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

// ---- ImageStreamMappings

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

// ---- Images

func (d *Double) createImage(img *Image) (int, any, error) {
	if errs := validateImage(img, nil); len(errs) > 0 {
		return 0, nil, apierrors.NewInvalid(d.gk("Image"), img.Name, errs)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.images[img.Name]; ok {
		return 0, nil, apierrors.NewAlreadyExists(d.gr("images"), img.Name)
	}
	d.storeImage(img)
	return http.StatusCreated, d.imageOut(d.images[img.Name]), nil
}

// storeImage keeps a new Image (image strategy PrepareForCreate, minus
// parsing the manifest). The caller holds d.mu.
func (d *Double) storeImage(img *Image) {
	c := clone(img)
	c.TypeMeta = metav1.TypeMeta{}
	c.Namespace = ""
	c.UID = newUID()
	c.CreationTimestamp = d.now()
	c.ResourceVersion = d.nextRV()
	if c.DockerImageMetadataVersion == "" {
		c.DockerImageMetadataVersion = "1.0"
	}
	if len(c.DockerImageMetadata.Raw) == 0 {
		c.DockerImageMetadata.Raw = []byte(`{"kind":"DockerImage","apiVersion":"image.openshift.io/1.0"}`)
	}
	if c.Annotations[ManifestBlobStoredAnnotation] == "true" {
		c.DockerImageManifest, c.DockerImageConfig = "", ""
	}
	d.images[c.Name] = c
}

func (d *Double) getImage(name string) (int, any, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	img, ok := d.images[name]
	if !ok {
		return 0, nil, apierrors.NewNotFound(d.gr("images"), name)
	}
	return http.StatusOK, d.imageOut(img), nil
}

func (d *Double) listImages(sel labels.Selector) (int, any, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	list := &ImageList{TypeMeta: d.typeMeta("ImageList"), Items: []Image{}}
	list.ResourceVersion = fmt.Sprint(d.rv)
	names := make([]string, 0, len(d.images))
	for n := range d.images {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if img := d.images[n]; sel.Matches(labels.Set(img.Labels)) {
			list.Items = append(list.Items, *d.imageOut(img))
		}
	}
	return http.StatusOK, list, nil
}

func (d *Double) deleteImage(name string) (int, any, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	img, ok := d.images[name]
	if !ok {
		return 0, nil, apierrors.NewNotFound(d.gr("images"), name)
	}
	delete(d.images, name)
	d.nextRV()
	return http.StatusOK, successStatus(http.StatusOK, &metav1.StatusDetails{
		Name: name, Group: d.opts.Group, Kind: "images", UID: img.UID}), nil
}

// ---- validation (pkg/image/apis/image/validation, the parts clients meet)

var (
	repoComponent = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	digestRE      = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
)

func validateName(name string, fld *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(fld, "name or generateName is required")}
	}
	var errs field.ErrorList
	for _, msg := range path.ValidatePathSegmentName(name, false) {
		errs = append(errs, field.Invalid(fld, name, msg))
	}
	return errs
}

func validateStream(s *ImageStream) field.ErrorList {
	errs := validateName(s.Name, field.NewPath("metadata", "name"))
	if s.Name != "" && !repoComponent.MatchString(s.Name) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), s.Name,
			`must match "[a-z0-9]+(?:[._-][a-z0-9]+)*"`))
	}
	for _, t := range s.Spec.Tags {
		p := field.NewPath("spec", "tags").Key(t.Name)
		if f := t.From; f != nil {
			if f.Name == "" {
				errs = append(errs, field.Required(p.Child("from", "name"), ""))
			}
			switch f.Kind {
			case "DockerImage":
				if _, err := name.ParseReference(f.Name, name.WeakValidation); err != nil && f.Name != "" {
					errs = append(errs, field.Invalid(p.Child("from", "name"), f.Name, err.Error()))
				}
			case "ImageStreamImage", "ImageStreamTag":
			default:
				errs = append(errs, field.Required(p.Child("from", "kind"), "valid values are 'DockerImage', 'ImageStreamImage', 'ImageStreamTag'"))
			}
		}
		if rp := t.ReferencePolicy.Type; rp != SourceTagReferencePolicy && rp != LocalTagReferencePolicy {
			errs = append(errs, field.NotSupported(p.Child("referencePolicy", "type"), rp,
				[]string{SourceTagReferencePolicy, LocalTagReferencePolicy}))
		}
	}
	return errs
}

func validateMapping(m *ImageStreamMapping) field.ErrorList {
	var errs field.ErrorList
	if m.Name == "" && m.DockerImageRepository == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "name"), "name or generateName is required"))
	} else if m.Name != "" {
		errs = append(errs, validateName(m.Name, field.NewPath("metadata", "name"))...)
	}
	if m.Tag == "" {
		errs = append(errs, field.Required(field.NewPath("tag"), ""))
	}
	return append(errs, validateImage(&m.Image, field.NewPath("image"))...)
}

func validateImage(img *Image, fld *field.Path) field.ErrorList {
	errs := validateName(img.Name, fld.Child("metadata", "name"))
	if img.DockerImageReference == "" {
		errs = append(errs, field.Required(fld.Child("dockerImageReference"), ""))
	} else if _, err := name.ParseReference(img.DockerImageReference, name.WeakValidation); err != nil {
		errs = append(errs, field.Invalid(fld.Child("dockerImageReference"), img.DockerImageReference, err.Error()))
	}
	if len(img.DockerImageManifests) > 0 && len(img.DockerImageLayers) > 0 {
		errs = append(errs, field.Invalid(fld.Child("dockerImageLayers"), "",
			"dockerImageLayers should not be set when dockerImageManifests is set"))
	}
	for i, m := range img.DockerImageManifests {
		p := fld.Child("dockerImageManifests").Index(i)
		if !digestRE.MatchString(m.Digest) {
			errs = append(errs, field.Invalid(p.Child("digest"), m.Digest, "digest is not valid"))
		}
		if m.MediaType == "" {
			errs = append(errs, field.Required(p.Child("mediaType"), ""))
		}
		if m.Architecture == "" {
			errs = append(errs, field.Required(p.Child("architecture"), ""))
		}
		if m.OS == "" {
			errs = append(errs, field.Required(p.Child("os"), ""))
		}
	}
	return errs
}

// defaultSpecTags applies the v1 defaults: referencePolicy.type Source.
func defaultSpecTags(s *ImageStream) {
	for i := range s.Spec.Tags {
		if s.Spec.Tags[i].ReferencePolicy.Type == "" {
			s.Spec.Tags[i].ReferencePolicy.Type = SourceTagReferencePolicy
		}
	}
	sort.SliceStable(s.Spec.Tags, func(i, j int) bool { return s.Spec.Tags[i].Name < s.Spec.Tags[j].Name })
}

// sameTagRef compares two spec tags, generation aside.
func sameTagRef(a, b TagReference) bool {
	a.Generation, b.Generation = nil, nil
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
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

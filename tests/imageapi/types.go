package imageapi

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The wire types of image.openshift.io/v1 (openshift/api image/v1/types.go),
// written out here so the double needs no OpenShift module. JSON tags match
// the upstream ones; fields the double does not model are left out, so, like
// the real server, it drops what it does not know.

// Well-known values (openshift/api image/v1/consts.go).
const (
	DefaultImageTag                  = "latest"
	ManagedByOpenShiftAnnotation     = "openshift.io/image.managed"
	ManifestBlobStoredAnnotation     = "image.openshift.io/manifestBlobStored"
	DockerImageLayersOrderAnnotation = "image.openshift.io/dockerLayersOrder"
	SourceTagReferencePolicy         = "Source"
	LocalTagReferencePolicy          = "Local"
)

// Image is an immutable container image, named by its manifest digest.
type Image struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	DockerImageReference         string               `json:"dockerImageReference,omitempty"`
	DockerImageMetadata          runtime.RawExtension `json:"dockerImageMetadata,omitempty"`
	DockerImageMetadataVersion   string               `json:"dockerImageMetadataVersion,omitempty"`
	DockerImageManifest          string               `json:"dockerImageManifest,omitempty"`
	DockerImageLayers            []ImageLayer         `json:"dockerImageLayers,omitempty"`
	Signatures                   []ImageSignature     `json:"signatures,omitempty"`
	DockerImageSignatures        [][]byte             `json:"dockerImageSignatures,omitempty"`
	DockerImageManifestMediaType string               `json:"dockerImageManifestMediaType,omitempty"`
	DockerImageConfig            string               `json:"dockerImageConfig,omitempty"`
	DockerImageManifests         []ImageManifest      `json:"dockerImageManifests,omitempty"`
}

// ImageList is a list of Images.
type ImageList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Image `json:"items"`
}

// ImageManifest is one child of a manifest list or OCI index.
type ImageManifest struct {
	Digest       string `json:"digest"`
	MediaType    string `json:"mediaType"`
	ManifestSize int64  `json:"manifestSize"`
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

// ImageLayer is one layer of an image.
type ImageLayer struct {
	Name      string `json:"name"`
	LayerSize int64  `json:"size"`
	MediaType string `json:"mediaType"`
}

// ImageSignature is a signature of an image (only the mandatory fields).
type ImageSignature struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Type              string `json:"type"`
	Content           []byte `json:"content"`
}

// ImageStream maps tags to images.
type ImageStream struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ImageStreamSpec   `json:"spec"`
	Status            ImageStreamStatus `json:"status,omitempty"`
}

// ImageStreamList is a list of ImageStreams.
type ImageStreamList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImageStream `json:"items"`
}

// ImageStreamSpec is the user intent of an ImageStream.
type ImageStreamSpec struct {
	LookupPolicy          ImageLookupPolicy `json:"lookupPolicy,omitempty"`
	DockerImageRepository string            `json:"dockerImageRepository,omitempty"`
	Tags                  []TagReference    `json:"tags,omitempty"`
}

// ImageLookupPolicy says whether short names in the namespace resolve to the stream.
type ImageLookupPolicy struct {
	Local bool `json:"local"`
}

// TagReference is a spec tag.
type TagReference struct {
	Name            string                  `json:"name"`
	Annotations     map[string]string       `json:"annotations"`
	From            *corev1.ObjectReference `json:"from,omitempty"`
	Reference       bool                    `json:"reference,omitempty"`
	Generation      *int64                  `json:"generation"`
	ImportPolicy    TagImportPolicy         `json:"importPolicy,omitempty"`
	ReferencePolicy TagReferencePolicy      `json:"referencePolicy,omitempty"`
}

// TagImportPolicy controls imports of a tag.
type TagImportPolicy struct {
	Insecure   bool   `json:"insecure,omitempty"`
	Scheduled  bool   `json:"scheduled,omitempty"`
	ImportMode string `json:"importMode,omitempty"`
}

// TagReferencePolicy is Source or Local.
type TagReferencePolicy struct {
	Type string `json:"type"`
}

// ImageStreamStatus is what the server observed; Tags is the tag history.
type ImageStreamStatus struct {
	DockerImageRepository       string              `json:"dockerImageRepository"`
	PublicDockerImageRepository string              `json:"publicDockerImageRepository,omitempty"`
	Tags                        []NamedTagEventList `json:"tags,omitempty"`
}

// NamedTagEventList is the history of one tag, newest first.
type NamedTagEventList struct {
	Tag        string              `json:"tag"`
	Items      []TagEvent          `json:"items"`
	Conditions []TagEventCondition `json:"conditions,omitempty"`
}

// TagEvent records that a tag pointed at an image.
type TagEvent struct {
	Created              metav1.Time `json:"created"`
	DockerImageReference string      `json:"dockerImageReference"`
	Image                string      `json:"image"`
	Generation           int64       `json:"generation"`
}

// TagEventCondition is a condition of a tag (e.g. a failed import).
type TagEventCondition struct {
	Type               string                 `json:"type"`
	Status             corev1.ConditionStatus `json:"status"`
	LastTransitionTime metav1.Time            `json:"lastTransitionTime,omitempty"`
	Reason             string                 `json:"reason,omitempty"`
	Message            string                 `json:"message,omitempty"`
	Generation         int64                  `json:"generation"`
}

// ImageStreamMapping tags an image into a stream (create only).
type ImageStreamMapping struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// DockerImageRepository is the legacy way to name the stream.
	DockerImageRepository string `json:"dockerImageRepository,omitempty"`
	Image                 Image  `json:"image"`
	Tag                   string `json:"tag"`
}

// ImageStreamTag is the image a tag of a stream currently points at.
type ImageStreamTag struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Tag               *TagReference       `json:"tag"`
	Generation        int64               `json:"generation"`
	LookupPolicy      ImageLookupPolicy   `json:"lookupPolicy"`
	Conditions        []TagEventCondition `json:"conditions,omitempty"`
	Image             Image               `json:"image"`
}

// ImageStreamTagList is a list of ImageStreamTags.
type ImageStreamTagList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImageStreamTag `json:"items"`
}

// specTag returns the spec tag named tag, or nil.
func (s *ImageStream) specTag(tag string) *TagReference {
	for i := range s.Spec.Tags {
		if s.Spec.Tags[i].Name == tag {
			return &s.Spec.Tags[i]
		}
	}
	return nil
}

// statusTag returns the history of tag, or nil.
func (s *ImageStream) statusTag(tag string) *NamedTagEventList {
	for i := range s.Status.Tags {
		if s.Status.Tags[i].Tag == tag {
			return &s.Status.Tags[i]
		}
	}
	return nil
}

// latest returns the newest event of tag, or nil (LatestTaggedImage).
func (s *ImageStream) latest(tag string) *TagEvent {
	if h := s.statusTag(tag); h != nil && len(h.Items) > 0 {
		return &h.Items[0]
	}
	return nil
}

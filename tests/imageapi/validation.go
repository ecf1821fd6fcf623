package imageapi

import (
	"regexp"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validation (pkg/image/apis/image/validation), the parts clients meet.

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

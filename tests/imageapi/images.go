package imageapi

import (
	"errors"
	"fmt"
	"net/http"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Images (registry/image).

func (d *Double) createImage(img *Image) (int, any, error) {
	if img.ResourceVersion != "" {
		return 0, nil, apierrors.NewInternalError(errors.New("resourceVersion should not be set on objects to be created"))
	}
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

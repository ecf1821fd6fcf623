package imageapi

import (
	"encoding/json"
	"sort"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Server-side printing (openshift-apiserver pkg/image/printers), so that
// `kubectl get istag` shows the columns `oc get istag` shows.

func col(name, format string, priority int32) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: "string", Format: format, Priority: priority}
}

// toTable converts a get or list answer into a meta.k8s.io/v1 Table.
func (d *Double) toTable(obj any) *metav1.Table {
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"}}
	row := func(meta metav1.ObjectMeta, cells ...any) {
		raw, _ := json.Marshal(&metav1.PartialObjectMetadata{
			TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"}, ObjectMeta: meta})
		t.Rows = append(t.Rows, metav1.TableRow{Cells: cells, Object: runtime.RawExtension{Raw: raw}})
	}
	istag := func(ist *ImageStreamTag) {
		row(ist.ObjectMeta, ist.Name, ist.Image.DockerImageReference, d.ago(ist.CreationTimestamp), ist.Image.Name)
	}
	stream := func(s *ImageStream) {
		repo := s.Spec.DockerImageRepository
		if repo == "" {
			repo = s.Status.DockerImageRepository
		}
		if s.Status.PublicDockerImageRepository != "" {
			repo = s.Status.PublicDockerImageRepository
		}
		var updated metav1.Time
		for _, h := range s.Status.Tags {
			if len(h.Items) > 0 && h.Items[0].Created.After(updated.Time) {
				updated = h.Items[0].Created
			}
		}
		row(s.ObjectMeta, s.Name, repo, streamTags(s), d.ago(updated))
	}
	image := func(img *Image) { row(img.ObjectMeta, img.Name, img.DockerImageReference) }

	istagCols := []metav1.TableColumnDefinition{col("Name", "name", 0), col("Image Reference", "", 0), col("Updated", "", 0), col("Image Name", "", 1)}
	streamCols := []metav1.TableColumnDefinition{col("Name", "name", 0), col("Image Repository", "", 0), col("Tags", "", 0), col("Updated", "", 0)}
	imageCols := []metav1.TableColumnDefinition{col("Name", "name", 0), col("Image Reference", "", 0)}
	switch o := obj.(type) {
	case *ImageStreamTag:
		t.ColumnDefinitions, t.ResourceVersion = istagCols, o.ResourceVersion
		istag(o)
	case *ImageStreamTagList:
		t.ColumnDefinitions, t.ResourceVersion = istagCols, o.ResourceVersion
		for i := range o.Items {
			istag(&o.Items[i])
		}
	case *ImageStream:
		t.ColumnDefinitions, t.ResourceVersion = streamCols, o.ResourceVersion
		stream(o)
	case *ImageStreamList:
		t.ColumnDefinitions, t.ResourceVersion = streamCols, o.ResourceVersion
		for i := range o.Items {
			stream(&o.Items[i])
		}
	case *Image:
		t.ColumnDefinitions, t.ResourceVersion = imageCols, o.ResourceVersion
		image(o)
	case *ImageList:
		t.ColumnDefinitions, t.ResourceVersion = imageCols, o.ResourceVersion
		for i := range o.Items {
			image(&o.Items[i])
		}
	}
	if t.Rows == nil {
		t.Rows = []metav1.TableRow{}
	}
	return t
}

// ago is the UPDATED cell: "<human duration> ago", "" for no time.
func (d *Double) ago(t metav1.Time) string {
	if t.IsZero() {
		return ""
	}
	return duration.HumanDuration(d.opts.Now().Sub(t.Time)) + " ago"
}

// streamTags is the TAGS cell: sorted status tags, cut after ~40 characters.
func streamTags(s *ImageStream) string {
	var tags []string
	for _, h := range s.Status.Tags {
		tags = append(tags, h.Tag)
	}
	sort.Strings(tags)
	out := ""
	for i, tag := range tags {
		next := tag
		if out != "" {
			next = out + "," + tag
		}
		if len(next) > 40 && out != "" {
			return out + " + " + strconv.Itoa(len(tags)-i) + " more..."
		}
		out = next
	}
	return out
}

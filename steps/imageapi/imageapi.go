// Package imageapi is regmigrate's client of the Image API (ImageStream,
// ImageStreamMapping, ImageStreamTag, Image), as OpenShift
// (image.openshift.io/v1) and ACP Registry v2 (image.alauda.io/v1) serve
// it. It uses client-go's dynamic client with JSON, so one client fits
// every group that has the shape.
package imageapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Known groups, in the order discovery prefers them.
var KnownGroups = []string{"image.alauda.io", "image.openshift.io"}

// Defaults for talking to the apiserver: enough for hundreds of mappings a
// second without tripping API priority and fairness.
const (
	DefaultQPS   = 1000
	DefaultBurst = 2000
)

// ErrNoImageAPI: the cluster serves none of the known groups.
var ErrNoImageAPI = errors.New("the cluster serves no Image API")

// Config loads a kubeconfig (context optional) for the Image API: JSON
// content type (the API has no protobuf here) and the given rate limits.
func Config(kubeconfig, context string, qps float32, burst int) (*rest.Config, error) {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", kubeconfig, err)
	}
	if qps <= 0 {
		qps = DefaultQPS
	}
	if burst <= 0 {
		burst = DefaultBurst
	}
	cfg.QPS, cfg.Burst = qps, burst
	cfg.ContentType = "application/json"
	cfg.AcceptContentTypes = "application/json"
	cfg.UserAgent = "regmigrate"
	return cfg, nil
}

// Client reads and writes Image API objects of one group/version.
type Client struct {
	dyn dynamic.Interface
	gv  schema.GroupVersion
}

// New returns a client for groupVersion ("image.alauda.io/v1"); empty means
// discover which known group the cluster serves.
func New(cfg *rest.Config, groupVersion string) (*Client, error) {
	var gv schema.GroupVersion
	var err error
	if groupVersion == "" {
		if gv, err = Discover(cfg); err != nil {
			return nil, err
		}
	} else if gv, err = schema.ParseGroupVersion(groupVersion); err != nil || gv.Version == "" {
		return nil, fmt.Errorf("image API %q: want GROUP/VERSION, e.g. image.alauda.io/v1", groupVersion)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{dyn: dyn, gv: gv}, nil
}

// Discover finds the first known Image API group the cluster serves. It
// reads /apis itself: client-go's discovery package would link every
// Kubernetes API type into the binary.
func Discover(cfg *rest.Config) (schema.GroupVersion, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return schema.GroupVersion{}, err
	}
	resp, err := hc.Get(strings.TrimSuffix(cfg.Host, "/") + "/apis")
	if err != nil {
		return schema.GroupVersion{}, fmt.Errorf("discovering the Image API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return schema.GroupVersion{}, fmt.Errorf("discovering the Image API: GET /apis: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var groups metav1.APIGroupList
	if err := json.NewDecoder(resp.Body).Decode(&groups); err != nil {
		return schema.GroupVersion{}, fmt.Errorf("discovering the Image API: decoding /apis: %w", err)
	}
	for _, want := range KnownGroups {
		for _, g := range groups.Groups {
			if g.Name == want && g.PreferredVersion.Version != "" {
				return schema.GroupVersion{Group: g.Name, Version: g.PreferredVersion.Version}, nil
			}
		}
	}
	return schema.GroupVersion{}, fmt.Errorf("%w (looked for %s): give --image-api GROUP/VERSION, or check that the registry's Image API is installed", ErrNoImageAPI, strings.Join(KnownGroups, ", "))
}

// GroupVersion is the API in use.
func (c *Client) GroupVersion() schema.GroupVersion { return c.gv }

func (c *Client) res(resource string) schema.GroupVersionResource { return c.gv.WithResource(resource) }

// StreamManifest is the ImageStream a missing stream is created with.
func (c *Client) StreamManifest(ns, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": c.gv.String(),
		"kind":       "ImageStream",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec":       map[string]any{"lookupPolicy": map[string]any{"local": false}},
	}}
}

// EnsureStream creates the ImageStream unless it exists; created reports
// whether this call created it. tags is what the stream's status says each
// tag points at now (the newest tag event: what its ImageStreamTag shows).
func (c *Client) EnsureStream(ctx context.Context, ns, name string) (tags map[string]Tag, created bool, err error) {
	u, err := c.dyn.Resource(c.res("imagestreams")).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return streamTags(u), false, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, false, err
	}
	u, err = c.dyn.Resource(c.res("imagestreams")).Namespace(ns).Create(ctx, c.StreamManifest(ns, name), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return c.EnsureStream(ctx, ns, name)
	}
	if err != nil {
		return nil, false, err
	}
	return streamTags(u), true, nil
}

// streamTags reads status.tags[].items[0] of an ImageStream.
func streamTags(u *unstructured.Unstructured) map[string]Tag {
	out := map[string]Tag{}
	tags, _, _ := unstructured.NestedSlice(u.Object, "status", "tags")
	for _, t := range tags {
		m, ok := t.(map[string]any)
		if !ok {
			continue
		}
		name, _ := m["tag"].(string)
		items, _ := m["items"].([]any)
		if name == "" || len(items) == 0 {
			continue
		}
		ev, _ := items[0].(map[string]any)
		img, _ := ev["image"].(string)
		ref, _ := ev["dockerImageReference"].(string)
		out[name] = Tag{Digest: img, Reference: ref}
	}
	return out
}

// Tag is what an ImageStreamTag says.
type Tag struct {
	Digest    string // image.metadata.name
	Reference string // image.dockerImageReference
	MediaType string
}

// GetTag reads an ImageStreamTag; found is false on 404.
func (c *Client) GetTag(ctx context.Context, ns, stream, tag string) (Tag, bool, error) {
	u, err := c.dyn.Resource(c.res("imagestreamtags")).Namespace(ns).Get(ctx, stream+":"+tag, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Tag{}, false, nil
	}
	if err != nil {
		return Tag{}, false, err
	}
	var t Tag
	t.Digest, _, _ = unstructured.NestedString(u.Object, "image", "metadata", "name")
	t.Reference, _, _ = unstructured.NestedString(u.Object, "image", "dockerImageReference")
	t.MediaType, _, _ = unstructured.NestedString(u.Object, "image", "dockerImageManifestMediaType")
	return t, true, nil
}

// ImageExists reports whether the cluster-scoped Image (named by digest) exists.
func (c *Client) ImageExists(ctx context.Context, digest string) (bool, error) {
	_, err := c.dyn.Resource(c.res("images")).Get(ctx, digest, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Child is a manifest list child, recorded on the Image.
type Child struct {
	Digest, MediaType string
	Size              int64
	Architecture, OS  string
	Variant           string
}

// Mapping is one ImageStreamMapping to create.
type Mapping struct {
	Namespace, Stream, Tag string
	Digest                 string
	Reference              string // TARGET/ns/stream@digest
	MediaType              string
	Children               []Child // manifest lists and indexes
}

// Object renders the mapping as the object sent to the API.
func (c *Client) Object(m Mapping) *unstructured.Unstructured {
	image := map[string]any{
		"metadata":                     map[string]any{"name": m.Digest},
		"dockerImageReference":         m.Reference,
		"dockerImageManifestMediaType": m.MediaType,
	}
	if len(m.Children) > 0 {
		var ch []any
		for _, x := range m.Children {
			e := map[string]any{"digest": x.Digest, "mediaType": x.MediaType, "manifestSize": x.Size, "architecture": x.Architecture, "os": x.OS}
			if x.Variant != "" {
				e["variant"] = x.Variant
			}
			ch = append(ch, e)
		}
		image["dockerImageManifests"] = ch
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": c.gv.String(),
		"kind":       "ImageStreamMapping",
		"metadata":   map[string]any{"name": m.Stream, "namespace": m.Namespace},
		"image":      image,
		"tag":        m.Tag,
	}}
}

// CreateMapping creates the ImageStreamMapping.
func (c *Client) CreateMapping(ctx context.Context, m Mapping) error {
	_, err := c.dyn.Resource(c.res("imagestreammappings")).Namespace(m.Namespace).Create(ctx, c.Object(m), metav1.CreateOptions{})
	return err
}

// Streams lists the ImageStream names of a namespace.
func (c *Client) Streams(ctx context.Context, ns string) ([]string, error) {
	l, err := c.dyn.Resource(c.res("imagestreams")).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, it := range l.Items {
		names = append(names, it.GetName())
	}
	slices.Sort(names)
	return names, nil
}

// StreamName maps a repository to (namespace, ImageStream name). A
// repository deeper than namespace/name cannot be an ImageStream.
func StreamName(repository string) (ns, stream string, err error) {
	parts := strings.Split(repository, "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", "", fmt.Errorf("repository %q is not namespace/name: an ImageStream cannot hold it", repository)
	}
	return parts[0], parts[1], nil
}

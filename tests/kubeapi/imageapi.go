package kubeapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/tests/imageapi"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

// ImageAPINamespace holds the Services that front registered Image API doubles.
const ImageAPINamespace = "imageapi-system"

var (
	namespacesGVR  = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	servicesGVR    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	apiServicesGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
)

// RegisterImageAPI serves an Image API double for group (image.openshift.io
// or image.alauda.io) over TLS on a free 127.0.0.1 port and registers it
// with the cluster as the aggregated API v1.<group>, so clients talk to the
// real kube-apiserver (authentication, RBAC, audit) which proxies to the
// double with its front-proxy client certificate and X-Remote-User/Group
// headers. It returns when the APIService is Available and discovery lists
// the group; at cleanup the APIService is deleted and the double stopped.
//
// How it is routed: a Service of type ExternalName (externalName
// "127.0.0.1") and spec.service.port = the double's port. With
// --enable-aggregator-routing=false the aggregator resolves ExternalName
// services to <externalName>:<port>; the usual selector-less Service plus
// Endpoints does not work on loopback, because Endpoints (and
// EndpointSlices) may not hold 127.0.0.0/8 addresses. The APIService carries
// the double's CA, and the serving certificate names <svc>.<ns>.svc, the
// name the aggregator verifies.
func RegisterImageAPI(t testing.TB, c *Cluster, group string) *imageapi.Double {
	t.Helper()
	d := imageapi.New(imageapi.Options{Group: group})
	svc := strings.ReplaceAll(group, ".", "-")
	srv, err := imageapi.Serve(d, imageapi.ServeOptions{TLS: true, Hosts: []string{svc + "." + ImageAPINamespace + ".svc"}})
	if err != nil {
		t.Fatalf("kubeapi: serve image API double: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.registerAPIService(ctx, group, svc, srv); err != nil {
		t.Fatalf("kubeapi: register %s: %v", group, err)
	}
	t.Cleanup(func() {
		dc, err := dynamic.NewForConfig(c.RESTConfig())
		if err == nil {
			err = dc.Resource(apiServicesGVR).Delete(context.Background(), "v1."+group, metav1.DeleteOptions{})
		}
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("kubeapi: delete APIService v1.%s: %v", group, err)
		}
	})
	return d
}

func (c *Cluster) registerAPIService(ctx context.Context, group, svc string, srv *imageapi.Server) error {
	port := srv.Addr[strings.LastIndex(srv.Addr, ":")+1:]
	var portNum int64
	if _, err := fmt.Sscan(port, &portNum); err != nil {
		return fmt.Errorf("port of %s: %w", srv.Addr, err)
	}
	dc, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		return err
	}
	objs := []struct {
		gvr schema.GroupVersionResource
		ns  string
		obj map[string]any
	}{
		{namespacesGVR, "", map[string]any{"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": ImageAPINamespace}}},
		{servicesGVR, ImageAPINamespace, map[string]any{"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": svc, "namespace": ImageAPINamespace},
			"spec":     map[string]any{"type": "ExternalName", "externalName": "127.0.0.1"}}},
		{apiServicesGVR, "", map[string]any{"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
			"metadata": map[string]any{"name": "v1." + group},
			"spec": map[string]any{"group": group, "version": "v1",
				"service":              map[string]any{"namespace": ImageAPINamespace, "name": svc, "port": portNum},
				"caBundle":             base64.StdEncoding.EncodeToString(srv.CAPEM),
				"groupPriorityMinimum": int64(1000), "versionPriority": int64(15)}}},
	}
	for _, o := range objs {
		u := &unstructured.Unstructured{Object: o.obj}
		r := dc.Resource(o.gvr).Namespace(o.ns)
		if _, err := r.Create(ctx, u, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) && o.gvr != namespacesGVR {
			old, gerr := r.Get(ctx, u.GetName(), metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			u.SetResourceVersion(old.GetResourceVersion())
			_, err = r.Update(ctx, u, metav1.UpdateOptions{})
		} else if apierrors.IsAlreadyExists(err) {
			err = nil
		}
		if err != nil {
			return fmt.Errorf("create %s %s: %w", o.gvr.Resource, u.GetName(), err)
		}
	}
	return c.waitAPIService(ctx, dc, group)
}

// waitAPIService waits until v1.<group> is Available and served in discovery.
func (c *Cluster) waitAPIService(ctx context.Context, dc dynamic.Interface, group string) error {
	disc, err := discovery.NewDiscoveryClientForConfig(c.RESTConfig())
	if err != nil {
		return err
	}
	var last string
	for {
		as, err := dc.Resource(apiServicesGVR).Get(ctx, "v1."+group, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(as.Object, "status", "conditions")
			last = fmt.Sprint(conds)
			for _, cond := range conds {
				m, _ := cond.(map[string]any)
				if m["type"] == "Available" && m["status"] == "True" {
					if _, err = disc.ServerResourcesForGroupVersion(group + "/v1"); err == nil {
						return nil
					}
				}
			}
		}
		if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("APIService v1.%s not available: %s", group, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

package nodemirror

import (
	"context"
	"errors"
	"fmt"
	"path"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// Platforms: where the node configuration goes.
const (
	PlatformContainerd = "containerd" // hosts.toml on every node, by a DaemonSet
	PlatformOpenShift  = "openshift"  // ImageDigestMirrorSet and ImageTagMirrorSet (OpenShift, ACP)
)

// Defaults of the objects.
const (
	DefaultNamespace = "regmigrate"
	// InstallerBinary is the switch-mode step's binary in its image: the
	// DaemonSet runs it with --install-node-mirror.
	InstallerBinary = "/usr/local/bin/switch-mode"
	mountConfig     = "/etc/regmigrate-mirror"
)

// ObjectOptions say where and how the node configuration is rolled out.
type ObjectOptions struct {
	Platform  string
	Namespace string // of the ConfigMap and DaemonSet
	// Image: the installer's image (the switch-mode step image).
	Image string
}

var (
	gvrConfigMap = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrDaemonSet = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}
	gvrIDMS      = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "imagedigestmirrorsets"}
	gvrITMS      = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "imagetagmirrorsets"}
)

// Object is one object of the node configuration and its resource.
type Object struct {
	GVR schema.GroupVersionResource
	Obj *unstructured.Unstructured
}

// Ref is kind/namespace/name (kind/name when cluster-scoped).
func (o Object) Ref() string {
	if ns := o.Obj.GetNamespace(); ns != "" {
		return o.Obj.GetKind() + "/" + ns + "/" + o.Obj.GetName()
	}
	return o.Obj.GetKind() + "/" + o.Obj.GetName()
}

// Objects builds the node configuration for a platform.
func Objects(c Config, o ObjectOptions) ([]Object, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	labels := map[string]any{"app.kubernetes.io/name": Name, "app.kubernetes.io/managed-by": "regmigrate"}
	switch o.Platform {
	case PlatformOpenShift:
		mirror := []any{map[string]any{"source": c.Legacy.Registry, "mirrors": []any{c.Target.String()}}}
		mk := func(kind, field string, gvr schema.GroupVersionResource) Object {
			return Object{gvr, &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "config.openshift.io/v1", "kind": kind,
				"metadata": map[string]any{"name": Name, "labels": labels},
				"spec":     map[string]any{field: mirror},
			}}}
		}
		return []Object{mk("ImageDigestMirrorSet", "imageDigestMirrors", gvrIDMS), mk("ImageTagMirrorSet", "imageTagMirrors", gvrITMS)}, nil
	case PlatformContainerd:
	default:
		return nil, fmt.Errorf("node mirror platform %q: want %s (hosts.toml by a DaemonSet) or %s (ImageDigestMirrorSet and ImageTagMirrorSet)", o.Platform, PlatformContainerd, PlatformOpenShift)
	}
	if o.Image == "" {
		return nil, errors.New("the node mirror's DaemonSet needs the installer image: give the switch-mode step image (--node-mirror-image)")
	}
	ns := o.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	data := map[string]any{}
	for n, b := range c.Files() {
		data[n] = string(b)
	}
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": Name, "namespace": ns, "labels": labels},
		"data":     data,
	}}
	zero, no, yes := int64(0), false, true
	ds := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "DaemonSet",
		"metadata": map[string]any{"name": Name, "namespace": ns, "labels": labels},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": Name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{
					"tolerations":                   []any{map[string]any{"operator": "Exists"}},
					"priorityClassName":             "system-node-critical",
					"terminationGracePeriodSeconds": int64(30),
					"containers": []any{map[string]any{
						"name": "install", "image": o.Image, "command": []any{InstallerBinary},
						"args": []any{"--install-node-mirror", "--mirror-source=" + mountConfig, "--mirror-dir=" + c.HostDir()},
						"resources": map[string]any{
							"requests": map[string]any{"cpu": "5m", "memory": "16Mi"},
							"limits":   map[string]any{"memory": "64Mi"},
						},
						// Root to write under the node's config_path
						// (root-owned), nothing more.
						"securityContext": map[string]any{"runAsUser": zero, "runAsNonRoot": no, "readOnlyRootFilesystem": yes,
							"allowPrivilegeEscalation": no, "capabilities": map[string]any{"drop": []any{"ALL"}}},
						"volumeMounts": []any{
							map[string]any{"name": "mirror", "mountPath": mountConfig, "readOnly": yes},
							map[string]any{"name": "config-path", "mountPath": c.configPath()},
						},
					}},
					"volumes": []any{
						map[string]any{"name": "mirror", "configMap": map[string]any{"name": Name}},
						map[string]any{"name": "config-path", "hostPath": map[string]any{"path": c.configPath(), "type": "DirectoryOrCreate"}},
					},
				},
			},
		},
	}}
	return []Object{{gvrConfigMap, cm}, {gvrDaemonSet, ds}}, nil
}

// YAML renders the objects as one multi-document file (node-mirror.yaml).
func YAML(objs []Object) ([]byte, error) {
	var out []byte
	for _, o := range objs {
		b, err := yaml.Marshal(o.Obj.Object)
		if err != nil {
			return nil, err
		}
		out = append(append(out, "---\n"...), b...)
	}
	return out, nil
}

// Actions in Result.
const (
	ActionCreated     = "created"
	ActionWouldCreate = "would-create"
	ActionUpdated     = "updated"
	ActionWouldUpdate = "would-update"
	ActionUnchanged   = "unchanged"
	ActionDeleted     = "deleted"
	ActionWouldDelete = "would-delete"
	ActionAbsent      = "absent"
	ActionFailed      = "failed"
	ActionNotServed   = "not-served" // the cluster has no such API (no OpenShift config API)
)

// Change is what happened to one object.
type Change struct {
	Object string `json:"object"`
	Action string `json:"action"`
	Error  string `json:"error,omitempty"`
}

// Apply creates or updates the objects (Confirm), or says what it would
// do; Remove deletes them (rollback). One object's failure never stops
// the others.
func Apply(ctx context.Context, c dynamic.Interface, objs []Object, confirm bool) []Change {
	var out []Change
	for _, o := range objs {
		ch := Change{Object: o.Ref()}
		r := c.Resource(o.GVR).Namespace(o.Obj.GetNamespace())
		cur, err := r.Get(ctx, o.Obj.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) && isNotServed(err):
			ch.Action = ActionNotServed
			ch.Error = fmt.Sprintf("the cluster does not serve %s: not an OpenShift/ACP cluster (use the containerd node mirror)", o.GVR.GroupResource())
		case apierrors.IsNotFound(err):
			ch.Action = ActionWouldCreate
			if confirm {
				ch.Action = ActionCreated
				if _, err := r.Create(ctx, o.Obj, metav1.CreateOptions{FieldManager: "regmigrate"}); err != nil {
					ch.Action, ch.Error = ActionFailed, err.Error()
				}
			}
		case err != nil:
			ch.Action, ch.Error = ActionFailed, err.Error()
		case same(cur, o.Obj):
			ch.Action = ActionUnchanged
		default:
			ch.Action = ActionWouldUpdate
			if confirm {
				ch.Action = ActionUpdated
				upd := o.Obj.DeepCopy()
				upd.SetResourceVersion(cur.GetResourceVersion())
				if _, err := r.Update(ctx, upd, metav1.UpdateOptions{FieldManager: "regmigrate"}); err != nil {
					ch.Action, ch.Error = ActionFailed, err.Error()
				}
			}
		}
		out = append(out, ch)
	}
	return out
}

// Remove deletes the objects (the DaemonSet's pods then remove the files
// they wrote on the nodes as they stop).
func Remove(ctx context.Context, c dynamic.Interface, objs []Object, confirm bool) []Change {
	var out []Change
	// The DaemonSet before its ConfigMap: its pods clean up as they stop.
	for i := len(objs) - 1; i >= 0; i-- {
		o := objs[i]
		ch := Change{Object: o.Ref()}
		r := c.Resource(o.GVR).Namespace(o.Obj.GetNamespace())
		_, err := r.Get(ctx, o.Obj.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			ch.Action = ActionAbsent
		case err != nil:
			ch.Action, ch.Error = ActionFailed, err.Error()
		case !confirm:
			ch.Action = ActionWouldDelete
		default:
			ch.Action = ActionDeleted
			fg := metav1.DeletePropagationBackground
			if err := r.Delete(ctx, o.Obj.GetName(), metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil && !apierrors.IsNotFound(err) {
				ch.Action, ch.Error = ActionFailed, err.Error()
			}
		}
		out = append(out, ch)
	}
	return out
}

// isNotServed: a 404 for the resource itself, not for the object (the
// apiserver answers "the server could not find the requested resource").
func isNotServed(err error) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return false
	}
	d := st.Status().Details
	return d == nil || d.Name == ""
}

// same: the live object already carries what we would write.
func same(cur, want *unstructured.Unstructured) bool {
	for _, f := range []string{"data", "spec"} {
		w, ok := want.Object[f]
		if !ok {
			continue
		}
		if f == "spec" && want.GetKind() == "DaemonSet" {
			// The apiserver fills defaults into a DaemonSet's spec:
			// compare what we set.
			return reflect.DeepEqual(pick(cur, "spec", "template", "spec", "containers"), pick(want, "spec", "template", "spec", "containers")) &&
				reflect.DeepEqual(pick(cur, "spec", "template", "spec", "volumes"), pick(want, "spec", "template", "spec", "volumes"))
		}
		if !reflect.DeepEqual(normalize(cur.Object[f]), normalize(w)) {
			return false
		}
	}
	return true
}

// pick reads a list of maps and keeps, in each, only names we set (the
// apiserver adds defaults).
func pick(u *unstructured.Unstructured, fields ...string) []string {
	l, _, _ := unstructured.NestedSlice(u.Object, fields...)
	var out []string
	for _, e := range l {
		m, _ := e.(map[string]any)
		b, _ := yaml.Marshal(map[string]any{"name": m["name"], "image": m["image"], "args": m["args"], "configMap": nameOf(m["configMap"]), "hostPath": pathOf(m["hostPath"])})
		out = append(out, string(b))
	}
	return out
}

func nameOf(v any) any {
	m, _ := v.(map[string]any)
	return m["name"]
}

func pathOf(v any) any {
	m, _ := v.(map[string]any)
	return path.Clean(fmt.Sprint(m["path"]))
}

// normalize goes through YAML so that int and int64 compare equal.
func normalize(v any) any {
	b, _ := yaml.Marshal(v)
	var out any
	_ = yaml.Unmarshal(b, &out)
	return out
}

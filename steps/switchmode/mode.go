// Package switchmode cuts a cluster over to the new registry and back. This
// file keeps the registry mode record: a ConfigMap saying whether the
// cluster uses the legacy or the modern registry, with the registries, the
// migration, the time and the previous mode. Switching to modern is refused
// unless the latest verify passed (or forced).
package switchmode

import (
	"context"
	"errors"
	"fmt"
	"github.com/regmigrate/regmigrate/steps/switchresult"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// Modes, as seed 000's `ac config set-registry-mode`.
const (
	ModeLegacy = switchresult.ModeLegacy
	ModeModern = switchresult.ModeModern
)

// Where the record lives by default.
const (
	DefaultNamespace = "kube-public"
	DefaultName      = "regmigrate-registry-mode"
)

// ErrNotVerified: switching to modern without a passing verify.
var ErrNotVerified = errors.New("the latest verify did not pass")

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// ModeOptions for SetMode.
type ModeOptions struct {
	Client          dynamic.Interface
	Namespace, Name string
	Mode            string // ModeLegacy or ModeModern
	Source, Target  string
	Migration       string
	// Verified: the latest verify of the scope passed. Needed for modern.
	Verified bool
	Force    bool
	// Confirm writes; without it SetMode only says what it would do.
	Confirm bool
	Now     func() time.Time
}

// SetMode records the mode. It returns the record before and after, and
// whether anything changed (running it twice changes nothing).
func SetMode(ctx context.Context, o ModeOptions) (before, after Record, changed bool, err error) {
	if o.Mode != ModeLegacy && o.Mode != ModeModern {
		return before, after, false, fmt.Errorf("mode %q: want %s or %s", o.Mode, ModeLegacy, ModeModern)
	}
	if o.Mode == ModeModern && !o.Verified && !o.Force {
		return before, after, false, fmt.Errorf("refusing to switch to %s: %w (run verify until it passes, or --force)", ModeModern, ErrNotVerified)
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	cms := o.Client.Resource(configMaps).Namespace(o.Namespace)
	cur, err := cms.Get(ctx, o.Name, metav1.GetOptions{})
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return before, after, false, fmt.Errorf("reading the mode record %s/%s: %w", o.Namespace, o.Name, err)
	}
	if exists {
		before = fromData(cur)
	} else {
		before = Record{Mode: ModeLegacy}
	}
	if exists && before.Mode == o.Mode && before.Source == o.Source && before.Target == o.Target {
		return before, before, false, nil
	}
	after = Record{Mode: o.Mode, PreviousMode: before.Mode, Source: o.Source, Target: o.Target, Migration: o.Migration, Time: o.Now().UTC().Format(time.RFC3339)}
	if !o.Confirm {
		return before, after, true, nil
	}
	data := map[string]any{
		"mode": after.Mode, "previousMode": after.PreviousMode, "source": after.Source,
		"target": after.Target, "migration": after.Migration, "time": after.Time,
	}
	if exists {
		if err := unstructured.SetNestedField(cur.Object, data, "data"); err != nil {
			return before, after, false, err
		}
		_, err = cms.Update(ctx, cur, metav1.UpdateOptions{}) // a concurrent change is a conflict: the caller retries
	} else {
		_, err = cms.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": o.Name, "namespace": o.Namespace, "labels": map[string]any{"app.kubernetes.io/managed-by": "regmigrate"}},
			"data":     data,
		}}, metav1.CreateOptions{})
	}
	if err != nil {
		return before, after, false, fmt.Errorf("writing the mode record %s/%s: %w", o.Namespace, o.Name, err)
	}
	return before, after, true, nil
}

// GetMode reads the record; a cluster without one is in legacy mode.
func GetMode(ctx context.Context, c dynamic.Interface, namespace, name string) (Record, error) {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	if name == "" {
		name = DefaultName
	}
	u, err := c.Resource(configMaps).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Record{Mode: ModeLegacy}, nil
	}
	if err != nil {
		return Record{}, err
	}
	return fromData(u), nil
}

func fromData(u *unstructured.Unstructured) Record {
	d, _, _ := unstructured.NestedStringMap(u.Object, "data")
	return Record{Mode: d["mode"], PreviousMode: d["previousMode"], Source: d["source"], Target: d["target"], Migration: d["migration"], Time: d["time"]}
}

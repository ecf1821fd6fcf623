package gitops

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/switchresult"
)

// HelmValue is one value of a release naming the legacy registry.
type HelmValue = switchresult.HelmValue

var secretsGVR = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// release is the part of Helm's stored release regmigrate reads.
type release struct {
	Name    string         `json:"name"`
	Version int            `json:"version"`
	Config  map[string]any `json:"config"`
	Chart   struct {
		Values map[string]any `json:"values"`
	} `json:"chart"`
	Info struct {
		Status string `json:"status"`
	} `json:"info"`
}

// HelmValues reads the deployed revision of a Helm release from Helm's
// storage (the Secrets sh.helm.release.v1.NAME.vN in the release's
// namespace, which Flux's helm-controller uses too) and lists every value
// (the chart's defaults merged with the release's own) that names the
// legacy registry, with what it should say: mapImage gives the target of
// a full image reference; a bare registry host or location becomes the
// target's.
func HelmValues(ctx context.Context, c dynamic.Interface, namespace, name string, legacy, target imageref.Location, mapImage func(string) (string, bool)) ([]HelmValue, error) {
	list, err := c.Resource(secretsGVR).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + name})
	if err != nil {
		return nil, fmt.Errorf("reading Helm release %s/%s (its Secrets, owner=helm): %w", namespace, name, err)
	}
	var best *release
	for _, s := range list.Items {
		data, _ := s.Object["data"].(map[string]any)
		enc, _ := data["release"].(string)
		r, err := decodeRelease(enc)
		if err != nil {
			return nil, fmt.Errorf("Helm release %s/%s, Secret %s: %w", namespace, name, s.GetName(), err)
		}
		if best == nil || newer(r, best) {
			best = r
		}
	}
	if best == nil {
		return nil, fmt.Errorf("Helm release %s/%s: no release Secret (owner=helm, name=%s) in %s: find the values that name %s in the release's values file", namespace, name, name, namespace, legacy)
	}
	values := merge(best.Chart.Values, best.Config)
	var out []HelmValue
	walk("", values, func(p, v string) {
		if to, ok := rewrite(v, legacy, target, mapImage); ok {
			out = append(out, HelmValue{Path: p, From: v, To: to})
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// newer: the deployed revision first, then the latest.
func newer(r, than *release) bool {
	rd, td := r.Info.Status == "deployed", than.Info.Status == "deployed"
	if rd != td {
		return rd
	}
	return r.Version > than.Version
}

// decodeRelease: the Secret's data (base64, as the API serves it) holds
// base64 of gzipped JSON.
func decodeRelease(enc string) (*release, error) {
	outer, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("data.release is not base64: %w", err)
	}
	inner, err := base64.StdEncoding.DecodeString(string(outer))
	if err != nil {
		return nil, fmt.Errorf("data.release is not Helm's encoding (base64 of gzipped JSON): %w", err)
	}
	raw := inner
	if bytes.HasPrefix(inner, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(inner))
		if err != nil {
			return nil, err
		}
		if raw, err = io.ReadAll(io.LimitReader(zr, 64<<20)); err != nil {
			return nil, fmt.Errorf("gunzip data.release: %w", err)
		}
	}
	var r release
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decoding the release: %w", err)
	}
	return &r, nil
}

// merge overlays the release's values on the chart's, as Helm does.
func merge(base, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = merge(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// walk calls f for every string leaf, with its path as --set names it
// (a.b[0].c).
func walk(p string, v any, f func(path, value string)) {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			next := k
			if strings.ContainsAny(k, ".[]") {
				next = strings.ReplaceAll(k, ".", `\.`)
			}
			if p != "" {
				next = p + "." + next
			}
			walk(next, t[k], f)
		}
	case []any:
		for i, e := range t {
			walk(p+"["+strconv.Itoa(i)+"]", e, f)
		}
	case string:
		f(p, t)
	}
}

// rewrite: what a value naming the legacy registry should say.
func rewrite(v string, legacy, target imageref.Location, mapImage func(string) (string, bool)) (string, bool) {
	v = strings.TrimSpace(v)
	switch {
	case v == legacy.String():
		return target.String(), true
	case v == legacy.Registry:
		return target.Registry, true
	case !strings.HasPrefix(v, legacy.Registry+"/"):
		return "", false
	}
	if to, ok := mapImage(v); ok {
		return to, true
	}
	// A repository without tag, or an image verify did not prove: the
	// same path under the target.
	if legacy.Namespace != "" && !strings.HasPrefix(v, legacy.String()+"/") {
		return "", false
	}
	return target.String() + strings.TrimPrefix(v, legacy.String()), true
}

package imageapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

const ns = "team-a"

func digest(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

// fixture is a double behind httptest with a raw HTTP helper.
type fixture struct {
	t *testing.T
	d *Double
	s *httptest.Server
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	d := New(o)
	s := httptest.NewServer(d)
	t.Cleanup(s.Close)
	return &fixture{t: t, d: d, s: s}
}

func (f *fixture) path(rest string) string { return "/apis/" + f.d.Group() + "/v1/" + rest }

// do sends a JSON request and returns the status code and decoded body.
func (f *fixture) do(method, path string, body any, hdr ...string) (int, map[string]any) {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, f.s.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		f.t.Fatalf("%s %s: %d, body not JSON: %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func (f *fixture) createStream(name string, spec map[string]any) {
	f.t.Helper()
	body := map[string]any{"apiVersion": f.d.GroupVersion(), "kind": "ImageStream", "metadata": map[string]any{"name": name}}
	if spec != nil {
		body["spec"] = spec
	}
	if code, out := f.do("POST", f.path("namespaces/"+ns+"/imagestreams"), body); code != 201 {
		f.t.Fatalf("create stream %s: %d %v", name, code, out)
	}
}

func (f *fixture) mapping(stream, tag, dgst, ref string) map[string]any {
	return map[string]any{"apiVersion": f.d.GroupVersion(), "kind": "ImageStreamMapping",
		"metadata": map[string]any{"namespace": ns, "name": stream}, "tag": tag,
		"image": map[string]any{"metadata": map[string]any{"name": dgst}, "dockerImageReference": ref}}
}

func (f *fixture) ism(stream, tag, dgst, ref string) (int, map[string]any) {
	f.t.Helper()
	return f.do("POST", f.path("namespaces/"+ns+"/imagestreammappings"), f.mapping(stream, tag, dgst, ref))
}

func get(m any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			mm, _ := m.(map[string]any)
			m = mm[k]
		case int:
			s, _ := m.([]any)
			if k >= len(s) {
				return nil
			}
			m = s[k]
		}
	}
	return m
}

func TestDiscoveryWithClientGo(t *testing.T) {
	for _, group := range []string{OpenShiftGroup, AlaudaGroup} {
		f := newFixture(t, Options{Group: group})
		dc := discovery.NewDiscoveryClientForConfigOrDie(&rest.Config{Host: f.s.URL})
		groups, err := dc.ServerGroups()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, g := range groups.Groups {
			found = found || (g.Name == group && g.PreferredVersion.Version == "v1")
		}
		if !found {
			t.Fatalf("%s: groups %+v", group, groups.Groups)
		}
		rl, err := dc.ServerResourcesForGroupVersion(group + "/v1")
		if err != nil {
			t.Fatal(err)
		}
		verbs := map[string]string{}
		for _, r := range rl.APIResources {
			verbs[r.Name] = fmt.Sprint(r.Namespaced, r.Verbs)
		}
		want := map[string]string{
			"imagestreams":        "true [create delete get list update]",
			"imagestreammappings": "true [create]",
			"imagestreamtags":     "true [delete get list]",
			"images":              "false [create delete get list]",
		}
		for k, v := range want {
			if verbs[k] != v {
				t.Errorf("%s %s: %q, want %q", group, k, verbs[k], v)
			}
		}
		other := OpenShiftGroup
		if group == OpenShiftGroup {
			other = AlaudaGroup
		}
		if code, _ := f.do("GET", "/apis/"+other+"/v1/namespaces/"+ns+"/imagestreams", nil); code != 404 {
			t.Errorf("%s serves %s: %d", group, other, code)
		}
	}
}

func TestImageStreamCreateGetListDelete(t *testing.T) {
	f := newFixture(t, Options{RegistryHost: "reg.internal:5000", PublicRegistryHost: "reg.example.com"})
	f.createStream("app", map[string]any{"tags": []any{map[string]any{"name": "v1",
		"from": map[string]any{"kind": "DockerImage", "name": "quay.io/x/app:v1"}}}})
	code, s := f.do("GET", f.path("namespaces/"+ns+"/imagestreams/app"), nil)
	if code != 200 {
		t.Fatalf("get: %d %v", code, s)
	}
	for path, want := range map[string]any{
		"kind": "ImageStream", "apiVersion": OpenShiftGroup + "/v1",
		"metadata.generation": 1.0, "metadata.namespace": ns,
		"status.dockerImageRepository":       "reg.internal:5000/team-a/app",
		"status.publicDockerImageRepository": "reg.example.com/team-a/app",
	} {
		var keys []any
		for _, k := range strings.Split(path, ".") {
			keys = append(keys, k)
		}
		if got := get(s, keys...); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	for _, k := range []string{"uid", "resourceVersion", "creationTimestamp"} {
		if get(s, "metadata", k) == nil {
			t.Errorf("metadata.%s missing", k)
		}
	}
	if g := get(s, "spec", "tags", 0, "generation"); g != 1.0 {
		t.Errorf("spec tag generation %v, want 1", g)
	}
	if p := get(s, "spec", "tags", 0, "referencePolicy", "type"); p != "Source" {
		t.Errorf("referencePolicy defaulted to %v", p)
	}

	code, st := f.do("POST", f.path("namespaces/"+ns+"/imagestreams"), map[string]any{"metadata": map[string]any{"name": "app"}})
	if code != 409 || st["reason"] != "AlreadyExists" || get(st, "details", "kind") != "imagestreams" {
		t.Errorf("duplicate: %d %v", code, st)
	}
	code, st = f.do("POST", f.path("namespaces/"+ns+"/imagestreams"), map[string]any{"metadata": map[string]any{"name": "Bad_Name"}})
	if code != 422 || st["reason"] != "Invalid" {
		t.Errorf("bad name: %d %v", code, st)
	}
	code, st = f.do("GET", f.path("namespaces/"+ns+"/imagestreams/nope"), nil)
	if code != 404 || st["message"] != `imagestreams.image.openshift.io "nope" not found` || get(st, "details", "name") != "nope" {
		t.Errorf("get missing: %d %v", code, st)
	}
	f.createStream("other", nil)
	if code, l := f.do("GET", f.path("namespaces/"+ns+"/imagestreams"), nil); code != 200 || len(l["items"].([]any)) != 2 || l["kind"] != "ImageStreamList" {
		t.Errorf("list: %d %v", code, l)
	}
	if code, l := f.do("GET", f.path("imagestreams"), nil); code != 200 || len(l["items"].([]any)) != 2 {
		t.Errorf("list all namespaces: %d %v", code, l)
	}
	code, st = f.do("DELETE", f.path("namespaces/"+ns+"/imagestreams/other"), nil)
	if code != 200 || st["status"] != "Success" || get(st, "details", "name") != "other" {
		t.Errorf("delete: %d %v", code, st)
	}
	if code, _ := f.do("DELETE", f.path("namespaces/"+ns+"/imagestreams/other"), nil); code != 404 {
		t.Errorf("delete again: %d", code)
	}
}

func TestImageStreamUpdate(t *testing.T) {
	f := newFixture(t, Options{})
	f.createStream("app", nil)
	_, s := f.do("GET", f.path("namespaces/"+ns+"/imagestreams/app"), nil)
	s["spec"] = map[string]any{"tags": []any{map[string]any{"name": "stable", "from": map[string]any{"kind": "ImageStreamTag", "name": "1.0"}}}}
	s["status"] = map[string]any{"dockerImageRepository": "ignored"}
	code, u := f.do("PUT", f.path("namespaces/"+ns+"/imagestreams/app"), s)
	if code != 200 || get(u, "metadata", "generation") != 2.0 || get(u, "spec", "tags", 0, "generation") != 2.0 || get(u, "status", "dockerImageRepository") != "" {
		t.Fatalf("update: %d %v", code, u)
	}
	// a stale resourceVersion conflicts, none at all is invalid
	code, st := f.do("PUT", f.path("namespaces/"+ns+"/imagestreams/app"), s)
	if code != 409 || st["reason"] != "Conflict" {
		t.Errorf("stale update: %d %v", code, st)
	}
	delete(s["metadata"].(map[string]any), "resourceVersion")
	if code, st := f.do("PUT", f.path("namespaces/"+ns+"/imagestreams/app"), s); code != 422 ||
		!strings.Contains(fmt.Sprint(st["message"]), "metadata.resourceVersion") {
		t.Errorf("update without resourceVersion: %d %v", code, st)
	}
	// copying an object with its resourceVersion into a create is a 500
	if code, st := f.do("POST", f.path("namespaces/"+ns+"/imagestreams"), u); code != 500 ||
		!strings.Contains(fmt.Sprint(st["message"]), "resourceVersion should not be set") {
		t.Errorf("create with resourceVersion: %d %v", code, st)
	}
	// metadata-only change keeps the generation
	u["metadata"].(map[string]any)["labels"] = map[string]any{"a": "b"}
	if code, u2 := f.do("PUT", f.path("namespaces/"+ns+"/imagestreams/app"), u); code != 200 || get(u2, "metadata", "generation") != 2.0 {
		t.Errorf("label update: %d %v", code, u2)
	}
	if code, l := f.do("GET", f.path("namespaces/"+ns+"/imagestreams?labelSelector=a%3Db"), nil); code != 200 || len(l["items"].([]any)) != 1 {
		t.Errorf("label selector: %d %v", code, l)
	}
	// tracking tag: an ISM to 1.0 also moves stable
	if code, st := f.ism("app", "1.0", digest('a'), "reg.example/team-a/app@"+digest('a')); code != 201 {
		t.Fatalf("ism: %d %v", code, st)
	}
	got, _ := f.d.ImageStream(ns, "app")
	if ev := got.latest("stable"); ev == nil || ev.Image != digest('a') || ev.Generation != 2 {
		t.Errorf("tracking tag stable: %+v", got.Status.Tags)
	}
}

func TestSpecTagsResolve(t *testing.T) {
	f := newFixture(t, Options{RegistryHost: "reg.internal:5000"})
	f.createStream("base", nil)
	f.ism("base", "1.0", digest('a'), "reg.internal:5000/team-a/base@"+digest('a'))
	f.createStream("app", map[string]any{"tags": []any{
		map[string]any{"name": "ext", "reference": true, "from": map[string]any{"kind": "DockerImage", "name": "quay.io/x/y:1"}},
		map[string]any{"name": "from-base", "from": map[string]any{"kind": "ImageStreamTag", "name": "base:1.0"}},
		map[string]any{"name": "latest", "from": map[string]any{"kind": "ImageStreamTag", "name": "from-base"}},
		map[string]any{"name": "later", "from": map[string]any{"kind": "ImageStreamTag", "name": "2.0"}},
	}})
	s, _ := f.d.ImageStream(ns, "app")
	if ev := s.latest("ext"); ev == nil || ev.DockerImageReference != "quay.io/x/y:1" || ev.Image != "" || ev.Generation != 1 {
		t.Errorf("reference DockerImage tag: %+v", ev)
	}
	want := "reg.internal:5000/team-a/app@" + digest('a') // rewritten to this stream
	if ev := s.latest("from-base"); ev == nil || ev.DockerImageReference != want || ev.Image != digest('a') {
		t.Errorf("ImageStreamTag from another stream: %+v", ev)
	}
	if ev := s.latest("latest"); ev == nil || ev.Image != digest('a') {
		t.Errorf("tag tracking a tag of the same stream: %+v", ev)
	}
	if s.latest("later") != nil {
		t.Errorf("tag tracking a tag without image got an event")
	}
	f.ism("app", "2.0", digest('b'), "reg.internal:5000/team-a/app@"+digest('b'))
	s, _ = f.d.ImageStream(ns, "app")
	if ev := s.latest("later"); ev == nil || ev.Image != digest('b') {
		t.Errorf("tracking tag after the ISM: %+v", ev)
	}
	code, st := f.do("POST", f.path("namespaces/"+ns+"/imagestreams"), map[string]any{"metadata": map[string]any{"name": "bad"},
		"spec": map[string]any{"tags": []any{map[string]any{"name": "x", "from": map[string]any{"kind": "ImageStreamTag", "name": "nowhere:1"}}}}})
	if code != 422 || !strings.Contains(fmt.Sprint(st["message"]), "spec.tags[x].from.name: Not found") {
		t.Errorf("tag from a missing stream: %d %v", code, st)
	}
}

func TestImageStreamMapping(t *testing.T) {
	f := newFixture(t, Options{Group: AlaudaGroup, RegistryHost: "reg.internal:5000"})
	ref := "newreg.example/team-a/app@" + digest('a')

	// stream missing: 404 naming the request resource, nothing created
	code, st := f.ism("app", "1.2.3", digest('a'), ref)
	if code != 404 || st["reason"] != "NotFound" || get(st, "details", "kind") != "imagestreammappings" ||
		get(st, "details", "name") != "app" || get(st, "details", "group") != AlaudaGroup ||
		st["message"] != `imagestreammappings.image.alauda.io "app" not found` {
		t.Fatalf("ISM without stream: %d %v", code, st)
	}
	if _, ok := f.d.ImageStream(ns, "app"); ok {
		t.Fatal("ISM created the stream")
	}
	if _, ok := f.d.Image(digest('a')); ok {
		t.Fatal("ISM without stream created the image")
	}

	f.createStream("app", nil)
	before, _ := f.d.ImageStream(ns, "app")
	code, st = f.ism("app", "1.2.3", digest('a'), ref)
	want := map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Success", "code": 201.0}
	if code != 201 || fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("ISM: %d %v, want 201 %v", code, st, want)
	}
	after, _ := f.d.ImageStream(ns, "app")
	if after.ResourceVersion == before.ResourceVersion || after.Generation != 1 {
		t.Errorf("rv %s -> %s, generation %d", before.ResourceVersion, after.ResourceVersion, after.Generation)
	}
	h := after.statusTag("1.2.3")
	if h == nil || len(h.Items) != 1 || h.Items[0].DockerImageReference != ref || h.Items[0].Image != digest('a') ||
		h.Items[0].Generation != 1 || h.Items[0].Created.IsZero() {
		t.Fatalf("status.tags: %+v", after.Status.Tags)
	}
	if img, ok := f.d.Image(digest('a')); !ok || img.DockerImageReference != ref {
		t.Fatalf("image: %+v", img)
	}

	// the same mapping again changes nothing
	f.ism("app", "1.2.3", digest('a'), ref)
	again, _ := f.d.ImageStream(ns, "app")
	if again.ResourceVersion != after.ResourceVersion || len(again.statusTag("1.2.3").Items) != 1 {
		t.Errorf("repeat ISM changed the stream: %+v", again.Status)
	}
	// another image is prepended (newest first)
	ref2 := "newreg.example/team-a/app@" + digest('b')
	f.ism("app", "1.2.3", digest('b'), ref2)
	s, _ := f.d.ImageStream(ns, "app")
	if items := s.statusTag("1.2.3").Items; len(items) != 2 || items[0].Image != digest('b') || items[1].Image != digest('a') {
		t.Errorf("history: %+v", items)
	}
	// empty tag: validation wants it (422), the default "latest" never applies over HTTP
	m := f.mapping("app", "", digest('c'), "newreg.example/team-a/app@"+digest('c'))
	if code, st := f.do("POST", f.path("namespaces/"+ns+"/imagestreammappings"), m); code != 422 || !strings.Contains(fmt.Sprint(st["message"]), "tag: Required value") {
		t.Errorf("no tag: %d %v", code, st)
	}
	// no dockerImageReference: defaulted from the registry host
	m = f.mapping("app", "pushed", digest('d'), "")
	if code, st := f.do("POST", f.path("namespaces/"+ns+"/imagestreammappings"), m); code != 201 {
		t.Errorf("defaulted ref: %d %v", code, st)
	}
	s, _ = f.d.ImageStream(ns, "app")
	if ev := s.latest("pushed"); ev == nil || ev.DockerImageReference != "reg.internal:5000/team-a/app@"+digest('d') {
		t.Errorf("defaulted ref: %+v", ev)
	}
}

func TestImageStreamMappingValidation(t *testing.T) {
	f := newFixture(t, Options{})
	f.createStream("app", nil)
	ref := "newreg.example/team-a/app@" + digest('a')
	cases := map[string]struct {
		edit func(m map[string]any)
		want string
	}{
		"no reference":  {func(m map[string]any) { delete(m["image"].(map[string]any), "dockerImageReference") }, "image.dockerImageReference: Required value"},
		"bad reference": {func(m map[string]any) { m["image"].(map[string]any)["dockerImageReference"] = "UPPER/Case@x" }, "image.dockerImageReference: Invalid value"},
		"no tag":        {func(m map[string]any) { delete(m, "tag") }, "tag: Required value"},
		"no name":       {func(m map[string]any) { delete(m["metadata"].(map[string]any), "name") }, "metadata.name: Required value"},
		"no image name": {func(m map[string]any) { delete(m["image"].(map[string]any), "metadata") }, "image.metadata.name: Required value"},
		"manifests and layers": {func(m map[string]any) {
			img := m["image"].(map[string]any)
			img["dockerImageManifests"] = []any{map[string]any{"digest": digest('c'), "mediaType": "application/vnd.oci.image.manifest.v1+json", "manifestSize": 10, "architecture": "amd64", "os": "linux"}}
			img["dockerImageLayers"] = []any{map[string]any{"name": digest('e'), "size": 1, "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}}
		}, "image.dockerImageLayers: Invalid value"},
		"bad manifest": {func(m map[string]any) {
			m["image"].(map[string]any)["dockerImageManifests"] = []any{map[string]any{"digest": "nope"}}
		}, "image.dockerImageManifests[0].digest: Invalid value"},
	}
	for name, c := range cases {
		m := f.mapping("app", "v1", digest('a'), ref)
		c.edit(m)
		code, st := f.do("POST", f.path("namespaces/"+ns+"/imagestreammappings"), m)
		if code != 422 || st["reason"] != "Invalid" || !strings.Contains(fmt.Sprint(st["message"]), c.want) ||
			get(st, "details", "kind") != "ImageStreamMapping" {
			t.Errorf("%s: %d %v, want 422 with %q", name, code, st, c.want)
		}
	}
	if s, _ := f.d.ImageStream(ns, "app"); len(s.Status.Tags) != 0 {
		t.Errorf("invalid mappings changed the stream: %+v", s.Status)
	}
	// wrong group in the body, wrong namespace in the body
	m := f.mapping("app", "v1", digest('a'), ref)
	m["apiVersion"] = AlaudaGroup + "/v1"
	if code, st := f.do("POST", f.path("namespaces/"+ns+"/imagestreammappings"), m); code != 400 {
		t.Errorf("wrong apiVersion: %d %v", code, st)
	}
	m = f.mapping("app", "v1", digest('a'), ref)
	m["metadata"].(map[string]any)["namespace"] = "elsewhere"
	if code, st := f.do("POST", f.path("namespaces/"+ns+"/imagestreammappings"), m); code != 400 {
		t.Errorf("wrong namespace: %d %v", code, st)
	}
}

func TestAddTagEventRules(t *testing.T) {
	ev := func(ref, img string, gen int64) TagEvent {
		return TagEvent{DockerImageReference: ref, Image: img, Generation: gen, Created: metav1.Unix(gen, 0)}
	}
	cases := []struct {
		name    string
		next    TagEvent
		changed bool
		want    []TagEvent
	}{
		{"identical", ev("r1", "i1", 1), false, []TagEvent{ev("r1", "i1", 1)}},
		{"new generation collapses", ev("r1", "i1", 2), true, []TagEvent{{DockerImageReference: "r1", Image: "i1", Generation: 2, Created: metav1.Unix(1, 0)}}},
		{"same ref replaces image", ev("r1", "i2", 1), true, []TagEvent{{DockerImageReference: "r1", Image: "i2", Generation: 1, Created: metav1.Unix(1, 0)}}},
		{"same image replaces ref", ev("r2", "i1", 1), true, []TagEvent{{DockerImageReference: "r2", Image: "i1", Generation: 1, Created: metav1.Unix(1, 0)}}},
		{"different prepends", ev("r2", "i2", 3), true, []TagEvent{ev("r2", "i2", 3), ev("r1", "i1", 1)}},
	}
	for _, c := range cases {
		s := &ImageStream{Status: ImageStreamStatus{Tags: []NamedTagEventList{{Tag: "t", Items: []TagEvent{ev("r1", "i1", 1)},
			Conditions: []TagEventCondition{{Type: "ImportSuccess", Status: "False"}}}}}}
		if got := addTagEvent(s, "t", c.next); got != c.changed {
			t.Errorf("%s: changed %v", c.name, got)
		}
		h := s.statusTag("t")
		if fmt.Sprint(h.Items) != fmt.Sprint(c.want) {
			t.Errorf("%s: items %v, want %v", c.name, h.Items, c.want)
		}
		if c.changed && h.Conditions != nil {
			t.Errorf("%s: conditions kept", c.name)
		}
	}
	s := &ImageStream{}
	if !addTagEvent(s, "new", ev("r", "i", 1)) || len(s.latestOr("new")) != 1 {
		t.Errorf("first event: %+v", s.Status)
	}
}

func (s *ImageStream) latestOr(tag string) []TagEvent {
	if h := s.statusTag(tag); h != nil {
		return h.Items
	}
	return nil
}

func TestManagedImageReferenceRewrite(t *testing.T) {
	f := newFixture(t, Options{RegistryHost: "reg.internal:5000"})
	f.createStream("a", nil)
	f.createStream("b", nil)
	m := f.mapping("a", "v1", digest('a'), "reg.internal:5000/team-a/a@"+digest('a'))
	m["image"].(map[string]any)["metadata"].(map[string]any)["annotations"] = map[string]any{ManagedByOpenShiftAnnotation: "true"}
	f.do("POST", f.path("namespaces/"+ns+"/imagestreammappings"), m)
	m["metadata"].(map[string]any)["name"] = "b"
	f.do("POST", f.path("namespaces/"+ns+"/imagestreammappings"), m)
	s, _ := f.d.ImageStream(ns, "b")
	if ev := s.latest("v1"); ev == nil || ev.DockerImageReference != "reg.internal:5000/team-a/b@"+digest('a') {
		t.Errorf("managed image in b: %+v", ev)
	}
}

func TestImageStreamTags(t *testing.T) {
	f := newFixture(t, Options{})
	f.createStream("app", map[string]any{"lookupPolicy": map[string]any{"local": true},
		"tags": []any{map[string]any{"name": "v2", "annotations": map[string]any{"note": "x"}, "from": map[string]any{"kind": "DockerImage", "name": "quay.io/x/app:v2"}}}})
	img := map[string]any{"apiVersion": "image.openshift.io/v1", "kind": "Image", "metadata": map[string]any{"name": digest('b')},
		"dockerImageReference": "quay.io/x/app@" + digest('b'), "dockerImageManifest": `{"schemaVersion":2}`, "dockerImageConfig": "{}",
		"dockerImageLayers": []any{map[string]any{"name": digest('c'), "size": 5, "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}}}
	if code, st := f.do("POST", f.path("images"), img); code != 201 {
		t.Fatalf("create image: %d %v", code, st)
	}
	ref := "newreg.example/team-a/app@" + digest('b')
	f.ism("app", "v2", digest('b'), ref)
	f.ism("app", "v1", digest('a'), "newreg.example/team-a/app@"+digest('a'))

	code, ist := f.do("GET", f.path("namespaces/"+ns+"/imagestreamtags/app:v2"), nil)
	if code != 200 {
		t.Fatalf("get istag: %d %v", code, ist)
	}
	s, _ := f.d.ImageStream(ns, "app")
	checks := map[string][2]any{
		"kind":              {get(ist, "kind"), "ImageStreamTag"},
		"name":              {get(ist, "metadata", "name"), "app:v2"},
		"uid":               {get(ist, "metadata", "uid"), string(s.UID)},
		"resourceVersion":   {get(ist, "metadata", "resourceVersion"), s.ResourceVersion},
		"annotation":        {get(ist, "metadata", "annotations", "note"), "x"},
		"tag.name":          {get(ist, "tag", "name"), "v2"},
		"generation":        {get(ist, "generation"), 1.0},
		"lookupPolicy":      {get(ist, "lookupPolicy", "local"), true},
		"image.name":        {get(ist, "image", "metadata", "name"), digest('b')},
		"image.ref":         {get(ist, "image", "dockerImageReference"), ref},
		"image.manifest":    {get(ist, "image", "dockerImageManifest"), nil},
		"image.config":      {get(ist, "image", "dockerImageConfig"), nil},
		"image.layers":      {get(ist, "image", "dockerImageLayers", 0, "size"), 5.0},
		"image.metaVersion": {get(ist, "image", "dockerImageMetadataVersion"), "1.0"},
	}
	for k, c := range checks {
		if c[0] != c[1] {
			t.Errorf("istag %s = %v, want %v", k, c[0], c[1])
		}
	}
	// pushed-only tag: "tag" is null
	code, ist = f.do("GET", f.path("namespaces/"+ns+"/imagestreamtags/app:v1"), nil)
	if v, ok := ist["tag"]; code != 200 || !ok || v != nil {
		t.Errorf("istag v1: tag = %v (present %v)", v, ok)
	}

	for path, want := range map[string]string{
		"imagestreamtags/app":      "400 BadRequest ImageStreamTags must be retrieved with <name>:<tag>",
		"imagestreamtags/app:nope": `404 NotFound imagestreamtags.image.openshift.io "app:nope" not found`,
		"imagestreamtags/gone:v1":  `404 NotFound imagestreamtags.image.openshift.io "gone" not found`,
	} {
		code, st := f.do("GET", f.path("namespaces/"+ns+"/"+path), nil)
		if got := fmt.Sprint(code, " ", st["reason"], " ", st["message"]); got != want {
			t.Errorf("GET %s: %s, want %s", path, got, want)
		}
	}

	code, list := f.do("GET", f.path("namespaces/"+ns+"/imagestreamtags"), nil)
	items, _ := list["items"].([]any)
	if code != 200 || list["kind"] != "ImageStreamTagList" || len(items) != 2 ||
		get(items, 1, "metadata", "name") != "app:v2" || get(items, 1, "image", "dockerImageReference") != ref ||
		get(items, 1, "image", "dockerImageLayers") != nil {
		t.Errorf("list: %d %v", code, list)
	}

	if code, st := f.do("DELETE", f.path("namespaces/"+ns+"/imagestreamtags/app:v2"), nil); code != 200 || st["status"] != "Success" {
		t.Errorf("delete istag: %d %v", code, st)
	}
	s, _ = f.d.ImageStream(ns, "app")
	if s.specTag("v2") != nil || s.statusTag("v2") != nil || s.Generation != 2 {
		t.Errorf("after istag delete: gen %d spec %+v status %+v", s.Generation, s.Spec.Tags, s.Status.Tags)
	}
	if code, _ := f.do("DELETE", f.path("namespaces/"+ns+"/imagestreamtags/app:v2"), nil); code != 404 {
		t.Errorf("delete istag again: %d", code)
	}
	if code, _ := f.do("PATCH", f.path("namespaces/"+ns+"/imagestreamtags/app:v1"), nil); code != 405 {
		t.Errorf("patch istag: %d", code)
	}
}

func TestMediaTypes(t *testing.T) {
	f := newFixture(t, Options{})
	req, _ := http.NewRequest("POST", f.s.URL+f.path("namespaces/"+ns+"/imagestreams"), strings.NewReader("\x6b\x38\x73\x00"))
	req.Header.Set("Content-Type", "application/vnd.kubernetes.protobuf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Errorf("protobuf body: %d, want 415", resp.StatusCode)
	}
	if code, st := f.do("GET", f.path("namespaces/"+ns+"/imagestreams"), nil, "Accept", "application/vnd.kubernetes.protobuf"); code != 406 {
		t.Errorf("protobuf accept: %d %v", code, st)
	}
	if code, st := f.do("GET", f.path("namespaces/"+ns+"/imagestreams"), nil, "Accept", "application/vnd.kubernetes.protobuf,application/json"); code != 200 {
		t.Errorf("protobuf,json accept: %d %v", code, st)
	}
	f.createStream("app", nil)
	f.ism("app", "v1", digest('a'), "newreg.example/team-a/app@"+digest('a'))
	code, tab := f.do("GET", f.path("namespaces/"+ns+"/imagestreamtags"), nil,
		"Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
	if code != 200 || tab["kind"] != "Table" || get(tab, "columnDefinitions", 1, "name") != "Image Reference" ||
		get(tab, "rows", 0, "cells", 0) != "app:v1" || get(tab, "rows", 0, "object", "kind") != "PartialObjectMetadata" {
		t.Errorf("table: %d %v", code, tab)
	}
}

func TestFaultInjection(t *testing.T) {
	f := newFixture(t, Options{})
	f.createStream("app", nil)
	ref := "newreg.example/team-a/app@" + digest('a')
	f.d.FailNext("create", "imagestreammappings", 409, 2)
	f.d.FailNext("get", "*", 500, 1)
	for i := 0; i < 2; i++ {
		if code, st := f.ism("app", "v1", digest('a'), ref); code != 409 || st["reason"] != "Conflict" {
			t.Fatalf("injected conflict %d: %d %v", i, code, st)
		}
	}
	if s, _ := f.d.ImageStream(ns, "app"); len(s.Status.Tags) != 0 {
		t.Fatal("a failed request changed state")
	}
	if code, _ := f.ism("app", "v1", digest('a'), ref); code != 201 {
		t.Fatalf("after faults: %d", code)
	}
	if code, st := f.do("GET", f.path("namespaces/"+ns+"/imagestreamtags/app:v1"), nil); code != 500 || st["reason"] != "InternalError" {
		t.Errorf("injected 500: %d %v", code, st)
	}
	if code, _ := f.do("GET", f.path("namespaces/"+ns+"/imagestreamtags/app:v1"), nil); code != 200 {
		t.Errorf("after 500: %d", code)
	}
	f.d.FailNext("", "", 429, 1)
	req, _ := http.NewRequest("GET", f.s.URL+f.path("images"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("429: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// a stream deleted in the middle of a run
	if !f.d.DeleteImageStream(ns, "app") {
		t.Fatal("DeleteImageStream: not found")
	}
	if code, st := f.ism("app", "v2", digest('b'), ref); code != 404 || get(st, "details", "kind") != "imagestreammappings" {
		t.Errorf("ISM after delete: %d %v", code, st)
	}
	if n := f.d.CountRequests("create", "imagestreammappings"); n != 4 {
		t.Errorf("counted %d ISM creates, want 4", n)
	}
}

// TestDynamicClientConcurrent drives the double the way regmigrate will:
// client-go's dynamic client, JSON, many workers at once.
func TestDynamicClientConcurrent(t *testing.T) {
	f := newFixture(t, Options{Group: AlaudaGroup})
	cfg := &rest.Config{Host: f.s.URL, QPS: -1, ContentConfig: rest.ContentConfig{ContentType: "application/json"}}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gv := schema.GroupVersion{Group: AlaudaGroup, Version: "v1"}
	streams := dc.Resource(gv.WithResource("imagestreams")).Namespace(ns)
	isms := dc.Resource(gv.WithResource("imagestreammappings")).Namespace(ns)
	istags := dc.Resource(gv.WithResource("imagestreamtags")).Namespace(ns)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const nStreams, nTags = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, nStreams*nTags*2)
	for s := 0; s < nStreams; s++ {
		for tg := 0; tg < nTags; tg++ {
			wg.Add(1)
			go func(s, tg int) {
				defer wg.Done()
				name := fmt.Sprintf("app%d", s)
				dg := fmt.Sprintf("sha256:%064x", s*1000+tg)
				obj := &unstructured.Unstructured{Object: f.mapping(name, fmt.Sprintf("v%d", tg), dg, "newreg.example/team-a/"+name+"@"+dg)}
				for {
					_, err := isms.Create(ctx, obj, metav1.CreateOptions{})
					if err == nil {
						return
					}
					if !apierrors.IsNotFound(err) {
						errs <- err
						return
					}
					// the registry's recovery: create the stream, retry
					is := &unstructured.Unstructured{Object: map[string]any{"apiVersion": gv.String(), "kind": "ImageStream",
						"metadata": map[string]any{"name": name}}}
					if _, err := streams.Create(ctx, is, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
						errs <- err
						return
					}
				}
			}(s, tg)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := istags.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != nStreams*nTags {
		t.Fatalf("%d istags, want %d", len(list.Items), nStreams*nTags)
	}
	got, err := istags.Get(ctx, "app3:v7", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref, _, _ := unstructured.NestedString(got.Object, "image", "dockerImageReference"); ref != fmt.Sprintf("newreg.example/team-a/app3@sha256:%064x", 3007) {
		t.Errorf("app3:v7 ref %s", ref)
	}
	_, err = istags.Get(ctx, "app3:none", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("missing istag: %v", err)
	}
}

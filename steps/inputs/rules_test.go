package inputs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseImagesJSON(t *testing.T) {
	t.Parallel()
	swr := "swr.cn-north-4.myhuaweicloud.com"
	defaults := RulesOptions{DefaultRegistry: swr, DefaultNamespace: "test"}
	tests := []struct {
		name  string
		opts  RulesOptions
		input string
		want  []got
		bad   []badLine
	}{
		{
			name: "the seed's example, in file order",
			opts: defaults,
			input: `{
    "quay.io/coreos/etcd:1.0.0": "swr.cn-north-4.myhuaweicloud.com/test/etcd:1.0.0",
    "quay.io/coreos/etcd": "swr.cn-north-4.myhuaweicloud.com/test/etcd",
    "quay.io/coreos/etcd:2.7.3": "swr.cn-north-4.myhuaweicloud.com/test/etcd"
}`,
			want: []got{
				{Source: "quay.io/coreos/etcd:1.0.0", Target: swr + "/test/etcd:1.0.0", Line: 2},
				{Source: "quay.io/coreos/etcd", Target: swr + "/test/etcd", AllTags: true, Line: 3},
				{Source: "quay.io/coreos/etcd:2.7.3", Target: swr + "/test/etcd:2.7.3", Line: 4},
			},
		},
		{
			name: "order is the file's, not sorted",
			input: `{"z.io/ns/z:1": "t.io/ns/z", "a.io/ns/a:1": "t.io/ns/a",
"m.io/ns/m:1": "t.io/ns/m"}`,
			want: []got{
				{Source: "z.io/ns/z:1", Target: "t.io/ns/z:1", Line: 1},
				{Source: "a.io/ns/a:1", Target: "t.io/ns/a:1", Line: 1},
				{Source: "m.io/ns/m:1", Target: "t.io/ns/m:1", Line: 2},
			},
		},
		{
			name:  "rename repository and tag (requirement 5)",
			input: `{"quay.io/coreos/etcd:3.5.0": "swr.example.com/infra/etcd-server:v3.5.0", "quay.io/coreos/etcd": "swr.example.com/infra/etcd-all"}`,
			want: []got{
				{Source: "quay.io/coreos/etcd:3.5.0", Target: "swr.example.com/infra/etcd-server:v3.5.0", Line: 1},
				{Source: "quay.io/coreos/etcd", Target: "swr.example.com/infra/etcd-all", AllTags: true, Line: 1},
			},
		},
		{
			name: "empty destination goes to the default registry and namespace (requirement 8)",
			opts: defaults,
			input: `{
  "quay.io/coreos/etcd:3.5.0": "",
  "quay.io/coreos/sub/etcd": "",
  "registry.example.com:5000/team/app:1": ""
}`,
			want: []got{
				{Source: "quay.io/coreos/etcd:3.5.0", Target: swr + "/test/etcd:3.5.0", Line: 2},
				{Source: "quay.io/coreos/sub/etcd", Target: swr + "/test/sub/etcd", AllTags: true, Line: 3},
				{Source: "registry.example.com:5000/team/app:1", Target: swr + "/test/app:1", Line: 4},
			},
		},
		{
			name:  "empty destination without defaults keeps the source path for the caller's registry",
			input: `{"quay.io/coreos/etcd:3.5.0": ""}`,
			want:  []got{{Source: "quay.io/coreos/etcd:3.5.0", Target: "coreos/etcd:3.5.0", Line: 1}},
		},
		{
			name: "several destinations: array value and repeated key, duplicates dropped (requirement 4)",
			opts: defaults,
			input: `{
  "quay.io/coreos/etcd:1": ["a.example.com/x/etcd", "b.example.com/y/etcd:one", ""],
  "quay.io/coreos/etcd:1": "c.example.com/z/etcd",
  "quay.io/coreos/etcd:1": "a.example.com/x/etcd:1"
}`,
			want: []got{
				{Source: "quay.io/coreos/etcd:1", Target: "a.example.com/x/etcd:1", Line: 2},
				{Source: "quay.io/coreos/etcd:1", Target: "b.example.com/y/etcd:one", Line: 2},
				{Source: "quay.io/coreos/etcd:1", Target: swr + "/test/etcd:1", Line: 2},
				{Source: "quay.io/coreos/etcd:1", Target: "c.example.com/z/etcd:1", Line: 3},
			},
		},
		{
			name:  "source pinned by digest",
			input: `{"quay.io/coreos/etcd:1@` + dA + `": "t.io/ns/etcd"}`,
			want:  []got{{Source: "quay.io/coreos/etcd:1@" + dA, Target: "t.io/ns/etcd:1", Line: 1}},
		},
		{
			name:  "empty file",
			input: "  \n",
		},
		{
			name:  "empty object",
			input: "{}",
		},
		{
			name: "rules that break a requirement, good ones kept",
			opts: defaults,
			input: `{
  "": "swr.example.com/ns/app",
  "quay.io": "swr.example.com/ns",
  "quay.io/coreos": "swr.example.com/ns",
  "docker.io/nginx:1.25": "swr.example.com/ns/nginx",
  "coreos/etcd:1": "swr.example.com/ns/etcd",
  "etcd": "swr.example.com/ns/etcd",
  "quay.io/coreos/etcd": "swr.example.com/ns/etcd:1",
  "quay.io/coreos/etcd:2": "swr.example.com/etcd",
  "quay.io/coreos/etcd:3": "ns/etcd",
  "quay.io/coreos/etcd:4": "swr.example.com/ns/etcd@` + dA + `",
  "quay.io/coreos/etcd@` + dA + `": "swr.example.com/ns/etcd:5",
  "quay.io/coreos/Etcd:6": "",
  "quay.io/coreos/etcd:7": "swr.example.com/ns/etcd:bad tag",
  "quay.io/coreos/etcd:8": 8,
  "quay.io/coreos/etcd:9": [],
  "quay.io/coreos/etcd:10": null,
  "quay.io/coreos/etcd:11": ["swr.example.com/ns/etcd", 2],
  "quay.io/coreos/etcd:12": ""
}`,
			want: []got{{Source: "quay.io/coreos/etcd:12", Target: swr + "/test/etcd:12", Line: 19}},
			bad: []badLine{
				{Line: 2, Err: "empty source", Hint: `write "registry/namespace/repository[:tag]": "swr.example.com/ns/app"`},
				{Line: 3, Err: `source "quay.io" is a registry`, Hint: `"quay.io/<namespace>/<repository>"`},
				{Line: 4, Err: "names a namespace or a repository without namespace", Hint: `one rule per repository "quay.io/coreos/<repository>"`},
				{Line: 5, Err: `source "docker.io/nginx:1.25" has no namespace`, Hint: `write "docker.io/library/nginx:1.25"`},
				{Line: 6, Err: `source "coreos/etcd:1" has no registry`, Hint: `write "<registry>/coreos/etcd:1"`},
				{Line: 7, Err: `source "etcd" has no registry`, Hint: `write "<registry>/library/etcd"`},
				{Line: 8, Err: "every tag is copied", Hint: `write "quay.io/coreos/etcd": "swr.example.com/ns/etcd" to copy every tag, or "quay.io/coreos/etcd:1": "swr.example.com/ns/etcd:1" to copy one`},
				{Line: 9, Err: `destination "swr.example.com/etcd" has no namespace`, Hint: `write "swr.example.com/etcd/etcd" or "swr.example.com/<namespace>/etcd"`},
				{Line: 10, Err: `destination "ns/etcd" has no registry`, Hint: `write "<registry>/ns/etcd"`},
				{Line: 11, Err: "has a digest", Hint: `write "quay.io/coreos/etcd:4": "swr.example.com/ns/etcd"`},
				{Line: 12, Err: "has a digest but no tag", Hint: `write "quay.io/coreos/etcd:<tag>@` + dA + `"`},
				{Line: 13, Err: `invalid repository "coreos/Etcd"`, Hint: `write "quay.io/coreos/etcd:6"`},
				{Line: 14, Err: `invalid tag "bad tag"`, Hint: "one JSON object of rules"},
				{Line: 15, Err: "is 8, not a string or an array of strings", Hint: `or "" for the default destination`},
				{Line: 16, Err: "has no destination", Hint: `"" for the default destination`},
				{Line: 17, Err: "is null", Hint: `"" for the default destination`},
				{Line: 18, Err: `is ["swr.example.com/ns/etcd",2]`, Hint: `"" for the default destination`},
			},
		},
		{
			name: "syntax error keeps the rules before it",
			input: `{
  "quay.io/coreos/etcd:1": "t.io/ns/etcd",
  "quay.io/coreos/etcd:2" "t.io/ns/etcd"
}`,
			want: []got{{Source: "quay.io/coreos/etcd:1", Target: "t.io/ns/etcd:1", Line: 2}},
			bad:  []badLine{{Line: 3, Err: "invalid JSON", Hint: "one JSON object of rules"}},
		},
		{
			name:  "not an object",
			input: `["quay.io/coreos/etcd:1"]`,
			bad:   []badLine{{Line: 1, Err: "holds an array, not an object", Hint: "one JSON object of rules"}},
		},
		{
			name:  "content after the object",
			input: "{\"quay.io/coreos/etcd:1\": \"t.io/ns/etcd\"}\n{}",
			want:  []got{{Source: "quay.io/coreos/etcd:1", Target: "t.io/ns/etcd:1", Line: 1}},
			bad:   []badLine{{Line: 2, Err: "content after the rules object", Hint: "one JSON object of rules"}},
		},
		{
			name:  "unterminated object",
			input: `{"quay.io/coreos/etcd:1": "t.io/ns/etcd"`,
			want:  []got{{Source: "quay.io/coreos/etcd:1", Target: "t.io/ns/etcd:1", Line: 1}},
			bad:   []badLine{{Line: 1, Err: "invalid JSON", Hint: "one JSON object of rules"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			entries, bad, err := ParseImagesJSON(strings.NewReader(tt.input), "images.json", tt.opts)
			if err != nil {
				t.Fatalf("ParseImagesJSON: %v", err)
			}
			if g := summarize(entries); !reflect.DeepEqual(g, tt.want) {
				t.Errorf("entries:\n got %+v\nwant %+v", g, tt.want)
			}
			for _, b := range bad {
				if b.File != "images.json" {
					t.Errorf("line error %v has file %q", b, b.File)
				}
			}
			checkBad(t, bad, tt.bad)
		})
	}
}

func TestReadImagesJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "images.json")
	rules := "{\n  \"quay.io/coreos/etcd:1\": \"\",\n  \"quay.io/coreos\": \"\"\n}\n"
	if err := os.WriteFile(path, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr bool
	}{
		{name: "file", path: path},
		{name: "missing file", path: filepath.Join(dir, "nope.json"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			entries, bad, err := ReadImagesJSON(tt.path, RulesOptions{DefaultRegistry: "t.io", DefaultNamespace: "ns"})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.path) {
					t.Fatalf("err = %v, want an error naming %s", err, tt.path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := []got{{Source: "quay.io/coreos/etcd:1", Target: "t.io/ns/etcd:1", Line: 2}}
			if g := summarize(entries); !reflect.DeepEqual(g, want) {
				t.Errorf("entries = %+v, want %+v", g, want)
			}
			if entries[0].File != path {
				t.Errorf("entry file = %q, want %q", entries[0].File, path)
			}
			if len(bad) != 1 || bad[0].Line != 3 || bad[0].File != path || !strings.HasPrefix(bad[0].Error(), path+":3: ") {
				t.Errorf("bad = %v, want one error at %s:3", bad, path)
			}
		})
	}
}

package report_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/report"
)

// report.json is streamed image by image; its bytes are those of
// json.MarshalIndent, which every reader of report.json (and jq) expects.
func TestWriteJSONIsMarshalIndent(t *testing.T) {
	img := func(i int) report.Image {
		return report.Image{Source: fmt.Sprintf("src.example/ns/app:v%d", i), Target: fmt.Sprintf("dst.example/ns/app:v%d", i),
			Digest: "sha256:" + strings.Repeat("a", 64), Status: contract.StatusCopied, Bytes: int64(i), Shard: "ns",
			Error: map[bool]string{true: "a \"quoted\" <error>\nline"}[i%2 == 1], Retryable: i%3 == 0}
	}
	full := report.Report{
		Scope: &report.Scope{}, Source: "src.example", Target: "dst.example", Total: 3, Copied: 3, Warnings: []string{"w"},
		Shards: []report.Shard{{ID: "ns", Namespaces: []string{"ns"}, Total: 3}}, Images: []report.Image{img(0), img(1), img(2)},
		PhaseOne: &report.PhaseLink{Layout: "/l", Report: "/l/r.json"},
	}
	for name, r := range map[string]report.Report{
		"no images (nil)":   {Source: "s", Target: "t"},
		"no images (empty)": {Source: "s", Target: "t", Images: []report.Image{}},
		"one image":         {Source: "s", Target: "t", Images: []report.Image{img(1)}},
		"every field":       full,
	} {
		want, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, '\n')
		var got bytes.Buffer
		if err := r.WriteJSON(&got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s: WriteJSON wrote\n%s\nwant (json.MarshalIndent)\n%s", name, got.Bytes(), want)
		}
		var back report.Report
		if err := json.Unmarshal(got.Bytes(), &back); err != nil || len(back.Images) != len(r.Images) {
			t.Errorf("%s: read back %d images (%v), want %d", name, len(back.Images), err, len(r.Images))
		}
	}
}

type failingWriter struct{ n int }

func (f *failingWriter) Write(b []byte) (int, error) {
	if f.n -= len(b); f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(b), nil
}

func TestWriteJSONReportsAWriteError(t *testing.T) {
	r := report.Report{Images: []report.Image{{Source: "a"}, {Source: "b"}}}
	if err := r.WriteJSON(&failingWriter{n: 200}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("WriteJSON on a full disk: err %v, want disk full", err)
	}
}

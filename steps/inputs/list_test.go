package inputs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/imageref"
)

const (
	dA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	dB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// got is an entry without its file name, for compact expectations.
type got struct {
	Source, Target string
	AllTags        bool
	Line           int
}

func summarize(es []Entry) []got {
	var out []got
	for _, e := range es {
		tgt := ""
		if e.Target != (imageref.Ref{}) {
			tgt = e.Target.String()
		}
		out = append(out, got{Source: e.Source.String(), Target: tgt, AllTags: e.AllTags, Line: e.Line})
	}
	return out
}

// badLine is the expectation for a LineError: its line, a part of its
// message and a part of its hint.
type badLine struct {
	Line      int
	Err, Hint string
}

func checkBad(t *testing.T, bad []*LineError, want []badLine) {
	t.Helper()
	if len(bad) != len(want) {
		for _, b := range bad {
			t.Logf("bad: %v", b)
		}
		t.Fatalf("got %d bad lines, want %d", len(bad), len(want))
	}
	for i, w := range want {
		b := bad[i]
		if b.Line != w.Line {
			t.Errorf("bad[%d] line = %d, want %d (%v)", i, b.Line, w.Line, b)
		}
		if !strings.Contains(b.Err.Error(), w.Err) {
			t.Errorf("bad[%d] error = %q, want it to contain %q", i, b.Err, w.Err)
		}
		if !strings.Contains(b.Hint, w.Hint) {
			t.Errorf("bad[%d] hint = %q, want it to contain %q", i, b.Hint, w.Hint)
		}
		if b.Hint == "" {
			t.Errorf("bad[%d] has no hint", i)
		}
	}
}

func TestParseList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  []got
		bad   []badLine
	}{
		{
			name:  "empty",
			input: "",
		},
		{
			name:  "plain list with comments, blanks, CRLF and a BOM",
			input: "\ufeff# images\r\n\r\nns/app:1.0\r\nns/app:1.1 # keep\n   \nlegacy.example.com:5000/ns/web:2\n",
			want: []got{
				{Source: "ns/app:1.0", Line: 3},
				{Source: "ns/app:1.1", Line: 4},
				{Source: "legacy.example.com:5000/ns/web:2", Line: 6},
			},
		},
		{
			name:  "digest list as the runbook writes it",
			input: "ns/app:1.0 " + dA + "\nns/app:1.1 unknown\nns/app:1.2@" + dB + " " + dB + "\n",
			want: []got{
				{Source: "ns/app:1.0@" + dA, Line: 1},
				{Source: "ns/app:1.1", Line: 2},
				{Source: "ns/app:1.2@" + dB, Line: 3},
			},
		},
		{
			name:  "repository without tag means every tag",
			input: "ns/app\nbusybox\n",
			want: []got{
				{Source: "ns/app", AllTags: true, Line: 1},
				{Source: "busybox", AllTags: true, Line: 2},
			},
		},
		{
			name:  "duplicates are dropped and a later digest pins the earlier line",
			input: "ns/app:1.0\nns/app:1.0\nns/app:1.0 " + dA + "\nns/app:1.0 " + dA + "\nns/app\nns/app\n",
			want: []got{
				{Source: "ns/app:1.0@" + dA, Line: 1},
				{Source: "ns/app", AllTags: true, Line: 5},
			},
		},
		{
			name:  "conflicting digests for one tag",
			input: "ns/app:1.0 " + dA + "\nns/app:1.0 " + dB + "\n",
			want:  []got{{Source: "ns/app:1.0@" + dA, Line: 1}},
			bad:   []badLine{{Line: 2, Err: "line 1 lists it with " + dA, Hint: "one line per tag"}},
		},
		{
			name: "bad plain lines are reported, good ones kept",
			input: strings.Join([]string{
				"ns/app:1.0",
				"ns/app:a b",
				"ns/app:1 " + dA + " extra",
				"ns/App:1.0",
				"ns/app:1.0 sha256:abc",
				"ns/app@" + dA,
				"ns/app:1.0@" + dA + " " + dB,
				"ns/app:2=other/app:2",
				"ns/app:-bad",
				"ns/ok:3",
			}, "\n"),
			want: []got{
				{Source: "ns/app:1.0", Line: 1},
				{Source: "ns/ok:3", Line: 10},
			},
			bad: []badLine{
				{Line: 2, Err: `"b" after ns/app:a is not a digest`, Hint: "one image a line"},
				{Line: 3, Err: "3 fields", Hint: "one image a line"},
				{Line: 4, Err: `invalid repository "ns/App"`, Hint: `write "ns/app:1.0"`},
				{Line: 5, Err: `invalid digest "sha256:abc"`, Hint: "64 lowercase hex"},
				{Line: 6, Err: "no tag", Hint: `write "ns/app:<tag> ` + dA + `"`},
				{Line: 7, Err: "two digests", Hint: `write "ns/app:1.0 ` + dB + `"`},
				{Line: 8, Err: "mapping line", Hint: "mapping file"},
				{Line: 9, Err: `invalid tag "-bad"`, Hint: "one image a line"},
			},
		},
		{
			name: "ac get images table",
			input: "NAME               TAG      SIZE     DIGEST\n" +
				"team-a/api         v1       12MB     " + dA + "\n" +
				"team-a/api         v2       13MB     unknown\n" +
				"team-b/web         latest   1MB      <none>\n" +
				"legacy:5000/c/d    1        1MB      " + dB + "\n",
			want: []got{
				{Source: "team-a/api:v1@" + dA, Line: 2},
				{Source: "team-a/api:v2", Line: 3},
				{Source: "team-b/web:latest", Line: 4},
				{Source: "legacy:5000/c/d:1@" + dB, Line: 5},
			},
		},
		{
			name: "table columns found by name, in any order, cells with spaces read by position",
			input: "NAME         DIGEST                                                                    CREATED        TAG\n" +
				"ns/a         " + dA + "   2 days ago     1.0\n" +
				"ns/b         unknown                                                                   3 hours ago    2.0\n" +
				"NAME         DIGEST                                                                    CREATED        TAG\n" +
				"ns/c         unknown   now  3.0\n",
			want: []got{
				{Source: "ns/a:1.0@" + dA, Line: 2},
				{Source: "ns/b:2.0", Line: 3},
				{Source: "ns/c:3.0", Line: 5},
			},
		},
		{
			name: "bad table rows",
			input: "# exported from legacy\n" +
				"NAME        TAG      SIZE    DIGEST\n" +
				"ns/a        <none>   1MB     " + dA + "\n" +
				"ns/b        1.0      1MB     sha256:zz\n" +
				"ns/B        1.0      1MB     unknown\n" +
				"ns/c:1      1.0      1MB     unknown\n" +
				"ns/d  1.0\n" +
				"ns/e        bad~tag  1MB     unknown\n" +
				"ns/f        1.0      1MB     unknown\n",
			want: []got{{Source: "ns/f:1.0", Line: 9}},
			bad: []badLine{
				{Line: 3, Err: "no tag", Hint: "remove the row"},
				{Line: 4, Err: `invalid digest "sha256:zz"`, Hint: "or unknown"},
				{Line: 5, Err: `invalid repository "ns/B"`, Hint: `write "ns/b"`},
				{Line: 6, Err: "holds a tag or digest", Hint: "NAME is the repository"},
				{Line: 7, Err: "does not line up", Hint: "ac get images"},
				{Line: 8, Err: `invalid tag "bad~tag"`, Hint: "ac get images"},
			},
		},
		{
			name:  "table header without TAG or DIGEST (modern mode output)",
			input: "NAME                  IMAGE REFERENCE\nsha256-aaa            x/y@" + dA + "\n",
			bad:   []badLine{{Line: 1, Err: "has no TAG or DIGEST column", Hint: "ac get images"}},
		},
		{
			name: "oc-style mapping file",
			input: "# generated by the runbook\n" +
				"legacy.example.com/ns/app:1.0=new.example.com/ns/app:1.0\n" +
				"ns/app:1.1=other/app\n" +
				"ns/app=ns2/app\n" +
				"ns/app@" + dA + "=ns3/app:pinned\n" +
				"ns/app:1.2@" + dB + " = new.example.com/ns/app\n" +
				"legacy.example.com/ns/app:1.0=new.example.com/ns/app:1.0\n",
			want: []got{
				{Source: "legacy.example.com/ns/app:1.0", Target: "new.example.com/ns/app:1.0", Line: 2},
				{Source: "ns/app:1.1", Target: "other/app:1.1", Line: 3},
				{Source: "ns/app", Target: "ns2/app", AllTags: true, Line: 4},
				{Source: "ns/app@" + dA, Target: "ns3/app:pinned", Line: 5},
				{Source: "ns/app:1.2@" + dB, Target: "new.example.com/ns/app:1.2", Line: 6},
			},
		},
		{
			name: "bad mapping lines",
			input: "a/b:1=c/d:1\n" +
				"a/b:2\n" +
				"a/b:3=\n" +
				"=c/d:4\n" +
				"a/b:5=c/d:5 c/e:5\n" +
				"a/b=c/d:6\n" +
				"a/b@" + dA + "=c/d\n" +
				"a/b:8=c/d@" + dA + "\n" +
				"a/B:9=c/d\n" +
				"a/b:10=c/D\n" +
				"a/b:11=c/d:11\n",
			want: []got{
				{Source: "a/b:1", Target: "c/d:1", Line: 1},
				{Source: "a/b:11", Target: "c/d:11", Line: 11},
			},
			bad: []badLine{
				{Line: 2, Err: "no '='", Hint: "SRC=DST"},
				{Line: 3, Err: "lacks a source or a destination", Hint: "SRC=DST"},
				{Line: 4, Err: "lacks a source or a destination", Hint: "SRC=DST"},
				{Line: 5, Err: "more than SRC=DST", Hint: "one destination a line"},
				{Line: 6, Err: "every tag is copied", Hint: "write a/b=c/d to copy every tag, or a/b:6=c/d:6 to copy one"},
				{Line: 7, Err: "names no tag", Hint: "a/b@" + dA + "=c/d:<tag>"},
				{Line: 8, Err: "has a digest", Hint: "a/b:8=c/d"},
				{Line: 9, Err: `invalid repository "a/B"`, Hint: `write "a/b:9"`},
				{Line: 10, Err: `invalid repository "c/D"`, Hint: `write "c/d"`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			entries, bad, err := ParseList(strings.NewReader(tt.input), "images.txt")
			if err != nil {
				t.Fatalf("ParseList: %v", err)
			}
			if g := summarize(entries); !reflect.DeepEqual(g, tt.want) {
				t.Errorf("entries:\n got %+v\nwant %+v", g, tt.want)
			}
			for _, e := range entries {
				if e.File != "images.txt" {
					t.Errorf("entry %v has file %q", e.Source, e.File)
				}
			}
			for _, b := range bad {
				if b.File != "images.txt" || b.Text == "" {
					t.Errorf("line error %v lacks its file or text", b)
				}
			}
			checkBad(t, bad, tt.bad)
		})
	}
}

func TestLineError(t *testing.T) {
	t.Parallel()
	inner := errors.New(`invalid tag "a b" in "ns/app:a b"`)
	tests := []struct {
		name string
		err  *LineError
		want string
	}{
		{
			name: "with hint",
			err:  &LineError{File: "images.txt", Line: 7, Text: "ns/app:a b", Err: inner, Hint: "write ns/app:a-b"},
			want: `images.txt:7: invalid tag "a b" in "ns/app:a b": write ns/app:a-b`,
		},
		{
			name: "without hint",
			err:  &LineError{File: "x", Line: 1, Err: inner},
			want: `x:1: invalid tag "a b" in "ns/app:a b"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if !errors.Is(tt.err, inner) {
				t.Error("errors.Is does not reach the wrapped error")
			}
		})
	}
}

func TestReadListFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "images.txt")
	if err := os.WriteFile(path, []byte("ns/app:1\nns/app:a b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		path      string
		wantErr   bool
		wantCount int
		wantBad   int
	}{
		{name: "file", path: path, wantCount: 1, wantBad: 1},
		{name: "missing file", path: filepath.Join(dir, "nope.txt"), wantErr: true},
		{name: "a directory", path: dir, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			entries, bad, err := ReadListFile(tt.path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %t", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.path) {
					t.Errorf("error %q does not name %s", err, tt.path)
				}
				return
			}
			if len(entries) != tt.wantCount || len(bad) != tt.wantBad {
				t.Errorf("got %d entries and %d bad lines, want %d and %d", len(entries), len(bad), tt.wantCount, tt.wantBad)
			}
			if bad[0].File != path || bad[0].Line != 2 {
				t.Errorf("bad line at %s:%d, want %s:2", bad[0].File, bad[0].Line, path)
			}
			if entries[0].File != path || entries[0].Line != 1 {
				t.Errorf("entry at %s:%d, want %s:1", entries[0].File, entries[0].Line, path)
			}
		})
	}
}

package inputs

import (
	"strings"
	"testing"
)

func TestNamespaceOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		repository, namespace, library string
	}{
		{"busybox", "library", "library/busybox"},
		{"library/busybox", "library", "library/busybox"},
		{"team/app", "team", "team/app"},
		{"team/sub/app", "team", "team/sub/app"},
		{"", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.repository, func(t *testing.T) {
			t.Parallel()
			if got := NamespaceOf(tt.repository); got != tt.namespace {
				t.Errorf("NamespaceOf(%q) = %q, want %q", tt.repository, got, tt.namespace)
			}
			if got := LibraryPath(tt.repository); got != tt.library {
				t.Errorf("LibraryPath(%q) = %q, want %q", tt.repository, got, tt.library)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	t.Parallel()
	type check struct {
		value string
		want  bool
	}
	tests := []struct {
		name  string
		opts  FilterOptions
		repos []check
		tags  []check
	}{
		{
			name:  "zero filter matches everything",
			repos: []check{{"team/app", true}, {"busybox", true}, {"a/b/c", true}},
			tags:  []check{{"latest", true}, {"1.0", true}},
		},
		{
			name: "include namespaces, library for single-component repositories",
			opts: FilterOptions{IncludeNamespaces: []string{" team ", "", "library", "other/sub/"}},
			repos: []check{
				{"team/app", true}, {"team/sub/app", true}, {"busybox", true}, {"library/nginx", true},
				{"teamx/app", false}, {"tea/app", false}, {"other/app", false}, {"other/sub/app", true},
			},
		},
		{
			name: "exclude namespaces wins over include",
			opts: FilterOptions{IncludeNamespaces: []string{"team", "library"}, ExcludeNamespaces: []string{"library", "team/old"}},
			repos: []check{
				{"team/app", true}, {"team/old/app", false}, {"busybox", false}, {"library/nginx", false}, {"x/y", false},
			},
		},
		{
			name: "repository regex is unanchored, as grep (V1_REPO_FILTER)",
			opts: FilterOptions{RepoRegex: "app"},
			repos: []check{
				{"team/app", true}, {"team/webapp-x", true}, {"team/web", false},
			},
		},
		{
			name: "anchored repository regex; single-component repositories match with or without library/",
			opts: FilterOptions{RepoRegex: "^(library/nginx|redis)$"},
			repos: []check{
				{"nginx", true}, {"library/nginx", true}, {"redis", true}, {"library/redis", true}, {"team/nginx", false},
			},
		},
		{
			name: "exclude repository regex",
			opts: FilterOptions{RepoRegex: "^team/", ExcludeRepoRegex: "-(tmp|test)$|^library/"},
			repos: []check{
				{"team/app", true}, {"team/app-tmp", false}, {"team/app-test", false}, {"busybox", false},
			},
		},
		{
			name: "tag regex and exclude tag regex (V1_TAG_FILTER)",
			opts: FilterOptions{TagRegex: `^v?\d+\.\d+`, ExcludeTagRegex: `-rc\d*$|^latest$`},
			tags: []check{
				{"1.0", true}, {"v2.3.4", true}, {"2.0-rc1", false}, {"latest", false}, {"main", false},
			},
		},
		{
			name: "plain text tag filter matches anywhere",
			opts: FilterOptions{TagRegex: "prod"},
			tags: []check{{"prod", true}, {"1.0-prod", true}, {"dev", false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := NewFilter(tt.opts)
			if err != nil {
				t.Fatalf("NewFilter: %v", err)
			}
			for _, c := range tt.repos {
				if got := f.MatchRepo(c.value); got != c.want {
					t.Errorf("MatchRepo(%q) = %t, want %t", c.value, got, c.want)
				}
			}
			for _, c := range tt.tags {
				if got := f.MatchTag(c.value); got != c.want {
					t.Errorf("MatchTag(%q) = %t, want %t", c.value, got, c.want)
				}
			}
		})
	}
}

func TestNewFilterErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts FilterOptions
		want string
	}{
		{"repository regex", FilterOptions{RepoRegex: "team/(app"}, "repository regex: error parsing regexp: missing closing ): `team/(app`"},
		{"exclude repository regex", FilterOptions{ExcludeRepoRegex: "["}, "exclude repository regex: error parsing regexp"},
		{"tag regex", FilterOptions{TagRegex: "*"}, "tag regex: error parsing regexp: missing argument to repetition operator: `*`"},
		{"exclude tag regex", FilterOptions{ExcludeTagRegex: "a{2,1}"}, "exclude tag regex: error parsing regexp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewFilter(tt.opts)
			if err == nil {
				t.Fatal("NewFilter succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to start with %q", err, tt.want)
			}
		})
	}
}

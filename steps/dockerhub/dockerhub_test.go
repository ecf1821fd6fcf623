package dockerhub_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmigrate/regmigrate/steps/dockerhub"
	"github.com/regmigrate/regmigrate/tests/hubdouble"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

func push(t *testing.T, host string, repos ...string) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range repos {
		ref, _ := name.ParseReference(host + "/" + r + ":v1")
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
}

// The organisation's repositories, every page of them (the double serves
// 2 a page, Hub 100), and nothing of other organisations; a private
// organisation is listed only after the login.
func TestListFollowsEveryPageOfOneOrganisation(t *testing.T) {
	t.Parallel()
	reg := regtest.StartInProcess(t)
	push(t, reg.Host, "acme/a", "acme/b", "acme/c", "acme/d", "acme/e", "other/x", "secret/y")
	hub := hubdouble.Start(t, hubdouble.Options{Upstream: reg.URL(), MaxPageSize: 2, Username: "bot", Password: "s3cret-token", Private: []string{"secret"}})
	var seen []int
	repos, err := dockerhub.List(context.Background(), dockerhub.Options{API: hub.API, Org: "acme"}, func(n int) { seen = append(seen, n) })
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"acme/a", "acme/b", "acme/c", "acme/d", "acme/e"}; !slices.Equal(repos, want) {
		t.Errorf("listed %v, want %v", repos, want)
	}
	if !slices.Equal(seen, []int{2, 4, 5}) || hub.Stats().Pages != 3 {
		t.Errorf("progress %v over %d pages, want 2, 4, 5 over 3", seen, hub.Stats().Pages)
	}

	_, err = dockerhub.List(context.Background(), dockerhub.Options{API: hub.API, Org: "secret"}, nil)
	var he *dockerhub.Error
	if !errors.As(err, &he) || he.Status != http.StatusNotFound || !strings.Contains(err.Error(), `no organisation or user "secret"`) {
		t.Errorf("a private organisation without login: %v", err)
	}
	repos, err = dockerhub.List(context.Background(), dockerhub.Options{API: hub.API, Org: "secret", Username: "bot", Password: "s3cret-token"}, nil)
	if err != nil || !slices.Equal(repos, []string{"secret/y"}) {
		t.Errorf("a private organisation after login: %v, %v", repos, err)
	}
	_, err = dockerhub.List(context.Background(), dockerhub.Options{API: hub.API, Org: "secret", Username: "bot", Password: "wrong"}, nil)
	if err == nil || !strings.Contains(err.Error(), `refused the login of "bot"`) || strings.Contains(err.Error(), "wrong") {
		t.Errorf("a bad login: %v (must say so without the password)", err)
	}
}

// A "next" link to another host is refused: it would take the login's
// token elsewhere.
func TestListRefusesANextPageOnAnotherHost(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"count":3,"next":"http://elsewhere.example/v2/repositories/acme/?page=2","results":[{"name":"a","namespace":"acme"}]}`))
	}))
	t.Cleanup(s.Close)
	_, err := dockerhub.List(context.Background(), dockerhub.Options{API: s.URL, Org: "acme"}, nil)
	if err == nil || !strings.Contains(err.Error(), "another host (elsewhere.example") {
		t.Errorf("next on another host: %v", err)
	}
}

func TestOptionsSayWhatToWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		o    dockerhub.Options
		want string
	}{
		{dockerhub.Options{}, "--hub-org ORG"},
		{dockerhub.Options{Org: "a/b"}, "want a single name"},
		{dockerhub.Options{Org: "a", API: "hub.docker.com"}, "want a URL such as https://hub.docker.com"},
	} {
		if err := tc.o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
	if got := dockerhub.Official("nginx"); got != "library/nginx" {
		t.Errorf("Official(nginx) = %s", got)
	}
	if got := dockerhub.Official("acme/web"); got != "acme/web" {
		t.Errorf("Official(acme/web) = %s", got)
	}
	for _, h := range []string{"docker.io", "index.docker.io", "registry-1.docker.io"} {
		if !dockerhub.IsHub(h) {
			t.Errorf("IsHub(%s) = false", h)
		}
	}
}

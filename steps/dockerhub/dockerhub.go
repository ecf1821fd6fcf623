// Package dockerhub lists the repositories of a Docker Hub organisation or
// user through Hub's API: Docker Hub's registry has no /v2/_catalog, so a
// migration from Hub (docker/migrator's DOCKER_HUB_ORG) names its scope
// with GET {API}/v2/repositories/{ORG}/?page_size=N, following "next".
//
// Official images live in the `library` namespace (`nginx` is
// `library/nginx`): Library and Official say how such names are read and
// written (docker/migrator's LIBRARY_NAMESPACE).
package dockerhub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The environment a composition root reads for the API and its login.
const (
	EnvAPI      = "REGMIGRATE_HUB_API"
	EnvUsername = "REGMIGRATE_HUB_USERNAME"
	EnvToken    = "REGMIGRATE_HUB_TOKEN" // a personal access token or password
)

// FromEnv fills API (when unset), Username and Password from getenv.
func (o *Options) FromEnv(getenv func(string) string) {
	if getenv == nil {
		return
	}
	if o.API == "" {
		o.API = getenv(EnvAPI)
	}
	if o.Username == "" && o.Password == "" {
		o.Username, o.Password = getenv(EnvUsername), getenv(EnvToken)
	}
}

// Defaults.
const (
	// DefaultAPI is Docker Hub's API (REGMIGRATE_HUB_API or the spec's
	// source.hub.api point it elsewhere).
	DefaultAPI = "https://hub.docker.com"
	// DefaultPageSize is Hub's largest page.
	DefaultPageSize = 100
	// Library is the namespace of official images.
	Library = "library"
	// maxPages bounds a listing (100,000 repositories at 100 a page).
	maxPages = 1000
	// maxPage bounds one page's bytes.
	maxPage = 8 << 20
	// attempts per page on 429 and 5xx.
	attempts = 5
)

// Hosts are the names of Docker Hub's registry.
var Hosts = []string{"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

// IsHub reports whether host is Docker Hub's registry.
func IsHub(host string) bool {
	for _, h := range Hosts {
		if strings.EqualFold(host, h) {
			return true
		}
	}
	return false
}

// Official returns the repository path Hub's registry serves for name: a
// name without a namespace is an official image, library/NAME.
func Official(name string) string {
	if name != "" && !strings.Contains(name, "/") {
		return Library + "/" + name
	}
	return name
}

// Options of a listing.
type Options struct {
	// API is Hub's API base URL (default DefaultAPI).
	API string
	// Org is the organisation or user whose repositories are listed.
	Org string
	// PageSize: page_size of each request (default and at most 100).
	PageSize int
	// Username and Password (or a personal access token) log in to list
	// private repositories too; empty: public repositories only. They
	// are sent to the API's login endpoint only, never logged.
	Username, Password string
	// HTTP is the client (default: one with a 60 s timeout).
	HTTP      *http.Client
	UserAgent string
}

// Validate checks the options and sets defaults.
func (o *Options) Validate() error {
	if o.API == "" {
		o.API = DefaultAPI
	}
	u, err := url.Parse(o.API)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("Docker Hub API %q: want a URL such as %s", o.API, DefaultAPI)
	}
	o.API = strings.TrimSuffix(o.API, "/")
	if o.Org == "" {
		return errors.New("Docker Hub: no organisation or user to list: give it as the source's namespace (--from docker.io/ORG) or --hub-org ORG")
	}
	if strings.ContainsAny(o.Org, "/?#% ") {
		return fmt.Errorf("Docker Hub organisation %q: want a single name such as myorg (no slash)", o.Org)
	}
	if o.PageSize <= 0 || o.PageSize > DefaultPageSize {
		o.PageSize = DefaultPageSize
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 60 * time.Second}
	}
	if o.UserAgent == "" {
		o.UserAgent = "regmigrate"
	}
	return nil
}

// Error is an answer of Hub's API that ends the listing.
type Error struct {
	URL    string
	Status int
	Advice string
	Login  bool // the login was refused
}

func (e *Error) Error() string {
	s := fmt.Sprintf("Docker Hub API %s: %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.Advice != "" {
		s += ": " + e.Advice
	}
	return s
}

type page struct {
	Count   int     `json:"count"`
	Next    *string `json:"next"`
	Results []struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"results"`
}

// List returns every repository of the organisation, as ORG/NAME, in
// Hub's order. progress, when set, is called after each page with the
// count so far.
func List(ctx context.Context, o Options, progress func(int)) ([]string, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	token := ""
	if o.Username != "" && o.Password != "" {
		t, err := login(ctx, o)
		if err != nil {
			return nil, err
		}
		token = t
	}
	base, _ := url.Parse(o.API)
	next := o.API + "/v2/repositories/" + url.PathEscape(o.Org) + "/?page_size=" + strconv.Itoa(o.PageSize)
	var repos []string
	seen := map[string]bool{}
	for pages := 0; next != ""; pages++ {
		if pages >= maxPages {
			return nil, fmt.Errorf("Docker Hub: %s has more than %d pages of repositories: refused", o.Org, maxPages)
		}
		var p page
		if err := get(ctx, o, token, next, &p); err != nil {
			return nil, err
		}
		for _, r := range p.Results {
			ns := r.Namespace
			if ns == "" {
				ns = o.Org
			}
			name := ns + "/" + r.Name
			if r.Name != "" && !seen[name] {
				seen[name] = true
				repos = append(repos, name)
			}
		}
		if progress != nil {
			progress(len(repos))
		}
		next = ""
		if p.Next != nil && *p.Next != "" {
			u, err := base.Parse(*p.Next)
			if err != nil {
				return nil, fmt.Errorf("Docker Hub: a bad next page %q: %w", *p.Next, err)
			}
			// The next page is Hub's own: a link elsewhere would take the
			// login's token along.
			if u.Scheme != base.Scheme || u.Host != base.Host {
				return nil, fmt.Errorf("Docker Hub: the next page is on another host (%s, not %s): refused", u.Host, base.Host)
			}
			next = u.String()
		}
	}
	return repos, nil
}

// get fetches one JSON document, retrying 429 and 5xx (Retry-After
// honoured).
func get(ctx context.Context, o Options, token, u string, v any) error {
	var last error
	for attempt := 1; attempt <= attempts; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", o.UserAgent)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := o.HTTP.Do(req)
		if err != nil {
			last = fmt.Errorf("Docker Hub API %s: %w", short(u), err)
			if ctx.Err() != nil {
				return last
			}
			if err := sleep(ctx, time.Duration(attempt)*time.Second); err != nil {
				return last
			}
			continue
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxPage+1))
		_ = resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK && rerr == nil:
			if len(body) > maxPage {
				return fmt.Errorf("Docker Hub API %s: a page of more than %d bytes: refused", short(u), maxPage)
			}
			if err := json.Unmarshal(body, v); err != nil {
				return fmt.Errorf("Docker Hub API %s: not a repositories page: %w", short(u), err)
			}
			return nil
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || rerr != nil:
			last = &Error{URL: short(u), Status: resp.StatusCode, Advice: "Hub is busy or limiting requests; run again later"}
			wait := time.Duration(attempt) * time.Second
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = time.Duration(s) * time.Second
			}
			if err := sleep(ctx, wait); err != nil {
				return last
			}
		case resp.StatusCode == http.StatusNotFound:
			return &Error{URL: short(u), Status: resp.StatusCode, Advice: fmt.Sprintf("Docker Hub has no organisation or user %q (check the name; a private one is listed with a login: $REGMIGRATE_HUB_USERNAME and $REGMIGRATE_HUB_TOKEN)", o.Org)}
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			return &Error{URL: short(u), Status: resp.StatusCode, Advice: fmt.Sprintf("not allowed to list the repositories of %q: log in to docker.io (docker login, or credentials for docker.io in --authfile) with an account of the organisation", o.Org)}
		default:
			return &Error{URL: short(u), Status: resp.StatusCode}
		}
	}
	return last
}

// login exchanges a username and password (or access token) for a Hub
// API token (POST /v2/users/login).
func login(ctx context.Context, o Options) (string, error) {
	b, _ := json.Marshal(map[string]string{"username": o.Username, "password": o.Password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.API+"/v2/users/login", bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", o.UserAgent)
	resp, err := o.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("logging in to the Docker Hub API at %s: %w", o.API, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", &Error{URL: o.API + "/v2/users/login", Status: resp.StatusCode, Login: true,
			Advice: fmt.Sprintf("the Docker Hub API refused the login of %q: check the credentials for docker.io", o.Username)}
	}
	var t struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &t); err != nil || t.Token == "" {
		return "", fmt.Errorf("logging in to the Docker Hub API at %s: no token in the answer", o.API)
	}
	return t.Token, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func short(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.RawQuery, p.User = "", nil
	return p.String()
}

package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Caps on what a listing may bring: a page larger than maxListPage bytes,
// or a listing of more than MaxListEntries names, is refused (a registry
// that streams an endless list would otherwise take all memory).
const (
	maxListPage = 16 << 20
	// DefaultMaxListEntries: ten times the largest registry we know of.
	DefaultMaxListEntries = 2_000_000
	// maxListPages bounds pages that bring nothing but a next link.
	maxListPages = 100_000
)

// ErrTooLarge: a registry sent more than the client takes.
var ErrTooLarge = errors.New("response too large")

// ListTags returns every tag of repo, following pagination. Tags are
// returned as the registry sent them: the caller checks each against the
// grammar (an odd one must fail alone).
func (c *Client) ListTags(ctx context.Context, host, repo string) ([]string, error) {
	if s := c.StoreOf(host); s != nil {
		tags, err := s.ListTags(ctx, repo)
		if err != nil {
			return nil, fmt.Errorf("listing tags of %s in %s: %w", repo, s.Describe(), err)
		}
		return tags, nil
	}
	if err := checkRepo(repo); err != nil {
		return nil, err
	}
	tags, err := c.paginate(ctx, host, repo, []string{pullScope(repo)}, "/v2/"+repo+"/tags/list", "tags", nil)
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s/%s: %w", host, repo, err)
	}
	return tags, nil
}

// Catalog returns every repository of the registry, following pagination.
// progress, when set, is called after each page with the count so far.
func (c *Client) Catalog(ctx context.Context, host string, progress func(n int)) ([]string, error) {
	if s := c.StoreOf(host); s != nil {
		repos, err := s.Catalog(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the images of %s: %w", s.Describe(), err)
		}
		if progress != nil {
			progress(len(repos))
		}
		return repos, nil
	}
	repos, err := c.paginate(ctx, host, "", []string{catalogScope}, "/v2/_catalog", "repositories", progress)
	var se *StatusError
	if errors.As(err, &se) && (se.Status == http.StatusNotFound || se.Status == http.StatusMethodNotAllowed || errors.Is(err, ErrDenied)) {
		// Many registries (olareg, GHCR, Docker Hub, ECR without the
		// permission) do not list their repositories.
		return nil, fmt.Errorf("listing the catalog of %s: %w: the registry does not list its repositories to these credentials; name what to migrate with --images FILE (or images.lists in the spec)", host, err)
	}
	if err != nil {
		return nil, fmt.Errorf("listing the catalog of %s: %w", host, err)
	}
	return repos, nil
}

// paginate follows `Link: <...>; rel="next"` (the distribution spec). A
// registry that sends no Link but a full page is asked again with
// `last=<the last entry>`; a page that brings nothing new ends the listing.
func (c *Client) paginate(ctx context.Context, host, repo string, scopes []string, path, field string, progress func(int)) ([]string, error) {
	n := c.o.PageSize
	var all []string
	seen := map[string]bool{}
	next := path + "?n=" + strconv.Itoa(n)
	for pages := 0; next != ""; pages++ {
		if pages >= maxListPages {
			return nil, fmt.Errorf("%w: more than %d pages", ErrTooLarge, maxListPages)
		}
		var page map[string]json.RawMessage
		var link string
		err := c.retry(ctx, "list "+field, func() error {
			var err error
			page = nil
			link, err = c.getJSON(ctx, host, repo, scopes, next, maxListPage, &page)
			return err
		})
		if err != nil {
			return nil, err
		}
		var entries []string
		if raw, ok := page[field]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &entries); err != nil {
				return nil, fmt.Errorf("decoding %s: %w", field, err)
			}
		}
		added := 0
		for _, e := range entries {
			if !seen[e] {
				seen[e] = true
				all = append(all, e)
				added++
			}
		}
		if len(all) > c.o.MaxListEntries {
			return nil, fmt.Errorf("%w: more than %d %s", ErrTooLarge, c.o.MaxListEntries, field)
		}
		if progress != nil {
			progress(len(all))
		}
		switch {
		case added == 0:
			next = ""
		case link != "":
			next = link
		case len(entries) >= n:
			next = path + "?n=" + strconv.Itoa(n) + "&last=" + url.QueryEscape(entries[len(entries)-1])
		default:
			next = ""
		}
	}
	return all, nil
}

// getJSON GETs path, decodes at most limit bytes of it, and returns the
// next page from the Link header.
func (c *Client) getJSON(ctx context.Context, host, repo string, scopes []string, path string, limit int64, v any) (string, error) {
	resp, err := c.do(ctx, call{host: host, repo: repo, scopes: scopes, method: http.MethodGet, path: path,
		hdr: http.Header{"Accept": {"application/json"}}})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if err := checkResponse(resp, http.StatusOK); err != nil {
		return "", err
	}
	if resp.ContentLength > limit {
		return "", fmt.Errorf("%w: %s is %d bytes, more than the %d this client reads", ErrTooLarge, shortURL(resp.Request), resp.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", shortURL(resp.Request), err)
	}
	if int64(len(body)) > limit {
		return "", fmt.Errorf("%w: %s sent more than %d bytes", ErrTooLarge, shortURL(resp.Request), limit)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return "", &truncatedError{fmt.Sprintf("decoding %s: %v", shortURL(resp.Request), err)}
	}
	return nextLink(resp), nil
}

// nextLink parses `Link: </v2/...?n=..&last=..>; rel="next"`. A link to
// another host is not followed.
func nextLink(resp *http.Response) string {
	l := resp.Header.Get("Link")
	if l == "" {
		return ""
	}
	start, end := strings.Index(l, "<"), strings.Index(l, ">")
	if start < 0 || end <= start || !strings.Contains(l[end:], `rel="next"`) {
		return ""
	}
	u, err := url.Parse(l[start+1 : end])
	if err != nil {
		return ""
	}
	next := resp.Request.URL.ResolveReference(u)
	if next.Host != resp.Request.URL.Host || !strings.HasPrefix(next.Path, "/v2/") {
		return ""
	}
	return next.RequestURI()
}

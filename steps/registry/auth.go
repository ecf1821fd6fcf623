package registry

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// challenge is what a registry's /v2/ asked for.
type challenge struct {
	scheme  string // "", "basic" or "bearer"
	realm   string
	service string
}

func (ch challenge) bearer() bool { return ch.scheme == "bearer" }

// ping finds the scheme and the auth challenge of a registry: HTTPS, and
// plain HTTP only for a registry marked insecure whose HTTPS cannot be
// reached. A failed ping is not remembered: the next request tries again
// (a registry that restarts mid-migration comes back).
func (c *Client) ping(ctx context.Context, h *hostState) error {
	h.pingMu.Lock()
	defer h.pingMu.Unlock()
	if h.pinged {
		return nil
	}
	schemes := []string{"https"}
	if h.insecure {
		schemes = append(schemes, "http")
	}
	var errs []error
	for _, scheme := range schemes {
		ch, err := c.pingScheme(ctx, h, scheme)
		if err == nil {
			h.scheme, h.ch, h.pinged = scheme, ch, true
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	err := errors.Join(errs...)
	hint := ""
	if !h.insecure {
		var rec tls.RecordHeaderError
		if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") || errors.As(err, &rec) {
			hint = "; it speaks plain HTTP: mark it insecure (--insecure, or insecure: true in the spec) to allow that"
		} else if isTLSError(err) {
			hint = "; give its CA (--certs-dir DIR/<host>/ca.crt) or mark it insecure (--insecure) to skip verification; plain HTTP is never tried for a registry not marked insecure"
		}
	}
	return &pingError{host: h.host, err: err, attempts: errs, hint: hint}
}

type pingError struct {
	host     string
	err      error
	attempts []error // one per scheme tried (https, then http for an insecure registry)
	hint     string
}

func (e *pingError) Error() string {
	return fmt.Sprintf("reaching registry %s: %s%s", e.host, e.attemptsText(), e.hint)
}

// attemptsText is what each scheme's attempt met, on one line.
func (e *pingError) attemptsText() string {
	if len(e.attempts) == 0 {
		return e.err.Error()
	}
	s := make([]string, len(e.attempts))
	for i, a := range e.attempts {
		s[i] = a.Error()
	}
	return strings.Join(s, "; ")
}
func (e *pingError) Unwrap() error { return e.err }

func (c *Client) pingScheme(ctx context.Context, h *hostState, scheme string) (challenge, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wd := newWatchdog(c.o.IdleTimeout, h.host, cancel)
	defer wd.stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+h.addr+"/v2/", nil)
	if err != nil {
		return challenge{}, err
	}
	req.Header.Set("User-Agent", c.o.UserAgent)
	if err := h.thr.Request(ctx); err != nil {
		return challenge{}, err
	}
	resp, err := h.base.RoundTrip(req)
	if err != nil {
		return challenge{}, wd.explain(fmt.Errorf("GET %s: %w", shortURL(req), err))
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return challenge{}, nil
	case http.StatusUnauthorized:
		ch := parseChallenge(resp.Header.Values("WWW-Authenticate"))
		if ch.scheme == "" {
			return challenge{}, fmt.Errorf("GET %s: 401 without a Basic or Bearer challenge", shortURL(req))
		}
		if ch.bearer() && ch.realm == "" {
			return challenge{}, fmt.Errorf("GET %s: a Bearer challenge without a realm", shortURL(req))
		}
		return ch, nil
	}
	return challenge{}, checkResponse(resp)
}

// learnChallenge reports whether a 401 is worth one more attempt with new
// credentials: the registry is a bearer registry (a token expired or lacks
// a scope), or it challenged a request although its /v2/ did not (it then
// becomes a basic or bearer registry for this client).
func (h *hostState) learnChallenge(resp *http.Response) bool {
	ch := parseChallenge(resp.Header.Values("WWW-Authenticate"))
	h.pingMu.Lock()
	defer h.pingMu.Unlock()
	if h.ch.bearer() {
		return true
	}
	if ch.scheme == "" || (ch.bearer() && ch.realm == "") || ch.scheme == h.ch.scheme {
		return false
	}
	h.ch = ch
	return true
}

// challenge returns what the registry asked for (safe while
// learnChallenge may change it).
func (h *hostState) challenge() challenge {
	h.pingMu.Lock()
	defer h.pingMu.Unlock()
	return h.ch
}

// parseChallenge reads the first Basic or Bearer challenge.
func parseChallenge(values []string) challenge {
	for _, v := range values {
		scheme, params := splitChallenge(v)
		switch scheme {
		case "basic", "bearer":
			return challenge{scheme: scheme, realm: params["realm"], service: params["service"]}
		}
	}
	return challenge{}
}

// challengeScopes returns the scopes a 401's Bearer challenge asks for.
func challengeScopes(resp *http.Response) []string {
	var out []string
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if scheme, params := splitChallenge(v); scheme == "bearer" && params["scope"] != "" {
			out = append(out, strings.Fields(params["scope"])...)
		}
	}
	return out
}

// splitChallenge parses `Scheme k="v", k2=v2` (RFC 7235, one challenge).
func splitChallenge(s string) (string, map[string]string) {
	s = strings.TrimSpace(s)
	scheme, rest, _ := strings.Cut(s, " ")
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		after = strings.TrimSpace(after)
		var v string
		if strings.HasPrefix(after, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(after); i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
					b.WriteByte(after[i])
					continue
				}
				if after[i] == '"' {
					break
				}
				b.WriteByte(after[i])
			}
			v = b.String()
			after = after[min(i+1, len(after)):]
		} else {
			v, after, _ = strings.Cut(after, ",")
			v = strings.TrimSpace(v)
			after = "," + after
		}
		params[k] = v
		after = strings.TrimSpace(after)
		rest = strings.TrimSpace(strings.TrimPrefix(after, ","))
	}
	return strings.ToLower(scheme), params
}

func addScopes(have, more []string) []string {
	out := append([]string(nil), have...)
	for _, m := range more {
		found := false
		for _, s := range out {
			if s == m {
				found = true
				break
			}
		}
		if !found {
			out = append(out, m)
		}
	}
	return out
}

// authorization returns the Authorization header for a request to the
// registry itself ("" for anonymous access).
func (c *Client) authorization(ctx context.Context, h *hostState, cr *credential, scopes []string) (string, error) {
	switch h.challenge().scheme {
	case "basic":
		if cr.cfg.RegistryToken != "" {
			return "Bearer " + cr.cfg.RegistryToken, nil
		}
		if cr.cfg.Username != "" || cr.cfg.Password != "" {
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(cr.cfg.Username+":"+cr.cfg.Password)), nil
		}
		if cr.cfg.Auth != "" {
			return "Basic " + cr.cfg.Auth, nil
		}
		return "", nil
	case "bearer":
		if cr.cfg.RegistryToken != "" {
			return "Bearer " + cr.cfg.RegistryToken, nil
		}
		t, err := c.token(ctx, h, cr, scopes)
		if err != nil {
			return "", err
		}
		return "Bearer " + t, nil
	}
	return "", nil
}

// token is a bearer token for one credential and scope set.
type token struct {
	mu      sync.Mutex
	value   string
	refresh string // an OAuth2 refresh token the server gave
	expires time.Time
}

// tokenMargin is how long before its expiry a token is renewed: a quarter
// of its lifetime, at most 30 s, so a request never starts with a token
// about to lapse.
func tokenMargin(lifetime time.Duration) time.Duration { return min(lifetime/4, 30*time.Second) }

func tokenKey(cr *credential, scopes []string) string {
	s := append([]string(nil), scopes...)
	sort.Strings(s)
	return cr.id + " " + strings.Join(s, " ")
}

// token returns a valid token for the scopes, fetching one when there is
// none or it is about to expire. Concurrent callers share one fetch.
func (c *Client) token(ctx context.Context, h *hostState, cr *credential, scopes []string) (string, error) {
	key := tokenKey(cr, scopes)
	h.tokMu.Lock()
	t, ok := h.tokens[key]
	if !ok {
		t = &token{}
		h.tokens[key] = t
	}
	h.tokMu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.value != "" && time.Now().Before(t.expires) {
		return t.value, nil
	}
	v, refresh, lifetime, err := c.fetchToken(ctx, h, cr, scopes, t.refresh)
	if err != nil {
		return "", err
	}
	t.value, t.expires = v, time.Now().Add(lifetime-tokenMargin(lifetime))
	if refresh != "" {
		t.refresh = refresh
	}
	return v, nil
}

// forgetToken drops the token of a scope set the registry refused.
func (c *Client) forgetToken(h *hostState, cr *credential, scopes []string) {
	h.tokMu.Lock()
	t := h.tokens[tokenKey(cr, scopes)]
	h.tokMu.Unlock()
	if t != nil {
		t.mu.Lock()
		t.value = ""
		t.mu.Unlock()
	}
}

// maxTokenResponse caps a token server's answer.
const maxTokenResponse = 1 << 20

// fetchToken asks the realm for a token: the OAuth2 POST with a refresh
// (identity) token when there is one, else GET with Basic credentials
// (or anonymously). Credentials go only over HTTPS, unless the registry is
// marked insecure.
func (c *Client) fetchToken(ctx context.Context, h *hostState, cr *credential, scopes []string, refresh string) (string, string, time.Duration, error) {
	ch := h.challenge()
	realm, err := url.Parse(ch.realm)
	if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") || realm.Host == "" {
		return "", "", 0, fmt.Errorf("authenticating to %s: bad token realm %q", h.host, ch.realm)
	}
	if realm.Scheme == "http" && !h.insecure && !cr.anonymous() {
		return "", "", 0, fmt.Errorf("authenticating to %s: the token realm %s is plain HTTP: credentials are not sent over HTTP unless the registry is marked insecure (--insecure)", h.host, shortURLOf(realm))
	}
	if refresh == "" {
		refresh = cr.cfg.IdentityToken
	}
	if refresh != "" {
		v, next, life, err := c.tokenRequest(ctx, h, cr, realm, ch.service, scopes, refresh)
		var se *StatusError
		if err == nil || !errors.As(err, &se) || (se.Status != http.StatusNotFound && se.Status != http.StatusMethodNotAllowed) {
			return v, next, life, err
		}
		// Not every token server implements OAuth2: fall back to GET.
	}
	return c.tokenRequest(ctx, h, cr, realm, ch.service, scopes, "")
}

func (c *Client) tokenRequest(ctx context.Context, h *hostState, cr *credential, realm *url.URL, service string, scopes []string, refresh string) (string, string, time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wd := newWatchdog(c.o.IdleTimeout, realm.Host, cancel)
	defer wd.stop()
	var req *http.Request
	var err error
	if refresh != "" {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {c.o.UserAgent}}
		if service != "" {
			form.Set("service", service)
		}
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm.String(), strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		u := *realm
		q := u.Query()
		if service != "" {
			q.Set("service", service)
		}
		for _, s := range scopes {
			q.Add("scope", s)
		}
		if cr.cfg.Username != "" {
			q.Set("account", cr.cfg.Username)
		}
		u.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err == nil {
			switch {
			case cr.cfg.Username != "" || cr.cfg.Password != "":
				req.SetBasicAuth(cr.cfg.Username, cr.cfg.Password)
			case cr.cfg.Auth != "":
				req.Header.Set("Authorization", "Basic "+cr.cfg.Auth)
			}
		}
	}
	if err != nil {
		return "", "", 0, err
	}
	req.Header.Set("User-Agent", c.o.UserAgent)
	// The realm may be another host: the registry's base transport trusts
	// the same CAs; redirects of the token request are not followed.
	resp, err := h.base.RoundTrip(req)
	if err != nil {
		return "", "", 0, wd.explain(fmt.Errorf("getting a token from %s: %w", shortURLOf(realm), err))
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		err := checkResponse(resp)
		who := "anonymously"
		if !cr.anonymous() {
			who = "with the configured credentials"
			if cr.cfg.Username != "" {
				who = "as " + cr.cfg.Username
			}
		}
		return "", "", 0, fmt.Errorf("authenticating to %s %s: token server %s: %w", h.host, who, shortURLOf(realm), err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse+1))
	if err != nil {
		return "", "", 0, wd.explain(fmt.Errorf("reading a token from %s: %w", shortURLOf(realm), err))
	}
	if len(body) > maxTokenResponse {
		return "", "", 0, fmt.Errorf("token server %s sent more than %d bytes", shortURLOf(realm), maxTokenResponse)
	}
	var tr struct {
		Token        string `json:"token"`
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return "", "", 0, fmt.Errorf("token server %s: decoding its answer: %w", shortURLOf(realm), err)
	}
	v := tr.Token
	if v == "" {
		v = tr.AccessToken
	}
	if v == "" {
		return "", "", 0, fmt.Errorf("token server %s answered without a token", shortURLOf(realm))
	}
	life := time.Duration(tr.ExpiresIn) * time.Second
	if life <= 0 {
		life = 60 * time.Second // the token spec's default
	}
	return v, tr.RefreshToken, life, nil
}

package faultproxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

const digestHeader = "Docker-Content-Digest"

// stallHeaders reads the request and then waits, without a byte of
// response, until the client goes away or the proxy is closed; then it
// drops the connection.
func (p *Proxy) stallHeaders(r *http.Request) {
	// Reading the body to its end also lets the server notice a client
	// that closes the connection (the request context is then canceled).
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-p.done:
	}
	abort()
}

// stalledBody yields up to left bytes of rc, flushes them to the client and
// then blocks until ctx ends or done is closed, when it fails (and
// ReverseProxy aborts the connection).
type stalledBody struct {
	rc    io.ReadCloser
	left  int64
	flush func() error
	ctx   context.Context
	done  <-chan struct{}
}

func (b *stalledBody) Read(buf []byte) (int, error) {
	if b.left > 0 {
		if int64(len(buf)) > b.left {
			buf = buf[:b.left]
		}
		n, err := b.rc.Read(buf)
		b.left -= int64(n)
		if n > 0 || err == nil {
			return n, nil
		}
		b.left = 0 // the upstream body ended (or failed) early: stall now
	}
	_ = b.flush()
	select {
	case <-b.ctx.Done():
	case <-b.done:
	}
	// context.Canceled: ReverseProxy aborts without logging a read error.
	return 0, context.Canceled
}

func (b *stalledBody) Close() error { return b.rc.Close() }

// listKind tells a tag list path (with its repository) from a catalog one,
// and returns the prefix of the names generated for it.
func listKind(path string) (repo string, isTags bool, prefix byte) {
	if m := tagsListPath.FindStringSubmatch(path); m != nil {
		return m[1], true, 't'
	}
	return "", false, 'r'
}

// appendName appends the JSON string of generated name i: the prefix and at
// least six digits.
func appendName(b []byte, prefix byte, i int) []byte {
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], int64(i), 10)
	b = append(b, '"', prefix)
	for k := len(d); k < 6; k++ {
		b = append(b, '0')
	}
	b = append(b, d...)
	return append(b, '"')
}

// endlessList streams a list that never ends until the client stops
// reading or the proxy is closed, and then drops the connection (no final
// chunk: the body never completes).
func (p *Proxy) endlessList(w http.ResponseWriter, r *http.Request) {
	repo, isTags, prefix := listKind(r.URL.Path)
	head := `{"repositories":[`
	if isTags {
		name, _ := json.Marshal(repo)
		head = `{"name":` + string(name) + `,"tags":[`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	const chunk = 32 << 10
	buf := make([]byte, 0, chunk+64)
	buf = append(buf, head...)
	for i := 0; ; i++ {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendName(buf, prefix, i)
		if len(buf) < chunk {
			continue
		}
		if _, err := w.Write(buf); err != nil {
			abort()
		}
		if err := rc.Flush(); err != nil {
			abort()
		}
		buf = buf[:0]
		select {
		case <-r.Context().Done():
			abort()
		case <-p.done:
			abort()
		default:
		}
	}
}

// generatedName matches the names EndlessPages generates.
var generatedName = regexp.MustCompile(`^([rt])([0-9]{6,})$`)

// continuedPages returns an EndlessPages fault for a request that asks for
// a page after one EndlessPages served on the same path, or nil. The page
// is counted as a fault. p.mu is held.
func (p *Proxy) continuedPages(r *http.Request) *Fault {
	size, ok := p.endless[r.URL.Path]
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return nil
	}
	if !generatedName.MatchString(r.URL.Query().Get("last")) {
		return nil
	}
	p.count(EndlessPages)
	return &Fault{Kind: EndlessPages, PageSize: size}
}

// endlessPage answers one page of an endless listing: fresh names after
// the request's last=, and a Link to the next page.
func endlessPage(w http.ResponseWriter, r *http.Request, pageSize int) {
	repo, isTags, prefix := listKind(r.URL.Path)
	q := r.URL.Query()
	start := 0
	if m := generatedName.FindStringSubmatch(q.Get("last")); m != nil && m[1][0] == prefix {
		if i, err := strconv.Atoi(m[2]); err == nil {
			start = i + 1
		}
	}
	n := pageSize
	if n <= 0 {
		n = DefaultPageSize
	}
	if qn, err := strconv.Atoi(q.Get("n")); err == nil && qn > 0 {
		n = min(qn, 1000)
	}
	names := make([]string, n)
	for i := range names {
		s := appendName(nil, prefix, start+i)
		names[i] = string(s[1 : len(s)-1])
	}
	var doc any = struct {
		Repositories []string `json:"repositories"`
	}{names}
	if isTags {
		doc = struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}{repo, names}
	}
	body, _ := json.Marshal(doc)
	next := url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath,
		RawQuery: url.Values{"last": {names[n-1]}, "n": {strconv.Itoa(n)}}.Encode()}
	w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, next.String()))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// wrongDigest returns the digest WrongDigestHeader sets: want if given,
// else a well-formed sha256 digest that differs from the real one.
func wrongDigest(want string, resp *http.Response) string {
	if want != "" {
		return want
	}
	sum := sha256.Sum256([]byte("faultproxy wrong digest for " + resp.Header.Get(digestHeader) + " " + resp.Request.URL.Path))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// alterInMemory is the largest body AlteredBody reads whole (to keep a
// JSON body valid); larger ones have a byte inverted as they stream.
const alterInMemory = 1 << 20

// alterBody changes one byte of resp's body, keeping its length.
func alterBody(resp *http.Response) error {
	if resp.ContentLength > alterInMemory {
		resp.Body = &flippingBody{ReadCloser: resp.Body, at: resp.ContentLength / 2}
		return nil
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	alterBytes(data)
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return nil
}

// alterBytes changes one byte of b: in a JSON document the first hex digit
// of the last sha256 digest, else the middle byte, inverted.
func alterBytes(b []byte) {
	if len(b) == 0 {
		return
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		if i := bytes.LastIndex(b, []byte(`"sha256:`)); i >= 0 {
			j := i + len(`"sha256:`)
			if j < len(b) {
				if c := b[j]; c >= '0' && c <= '9' || c >= 'a' && c <= 'f' {
					const hexDigits = "0123456789abcdef"
					b[j] = hexDigits[(strings.IndexByte(hexDigits, c)+1)%16]
					return
				}
			}
		}
	}
	b[len(b)/2] ^= 0xff
}

// flippingBody inverts the byte at offset at as it streams.
type flippingBody struct {
	io.ReadCloser
	off, at int64
}

func (b *flippingBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	if b.at >= b.off && b.at < b.off+int64(n) {
		buf[b.at-b.off] ^= 0xff
	}
	b.off += int64(n)
	return n, err
}

// DefaultOddNames returns the names OddNames adds by default: a query in
// a name, dot-dot segments, upper case, a space, an escaped dot-dot, a
// leading dash, a 200-character name, a fragment, and a valid-looking name
// that does not exist.
func DefaultOddNames() []string {
	return []string{
		"x?y=1",
		"a/../../b",
		"UPPER",
		"tag with space",
		"%2e%2e",
		"-leadingdash",
		strings.Repeat("x", 200),
		"ns/repo#frag",
		"v9.9.9",
	}
}

// addNames adds the fault's names to the list in a catalog or tag list
// response, and remembers tags so that their manifests can be served.
func (p *Proxy) addNames(resp *http.Response, f *Fault) error {
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	var doc map[string]json.RawMessage
	if json.Unmarshal(data, &doc) != nil {
		return nil // not a list: left as it is
	}
	key := "repositories"
	if _, ok := doc["tags"]; ok {
		key = "tags"
	} else if _, ok := doc[key]; !ok {
		return nil
	}
	var names []string
	if json.Unmarshal(doc[key], &names) != nil {
		return nil
	}
	extra := f.Names
	if extra == nil {
		extra = DefaultOddNames()
	}
	listed := names
	names = append(append([]string(nil), names...), extra...)
	doc[key], _ = json.Marshal(names)
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))

	if key == "tags" {
		repo, _, _ := listKind(resp.Request.URL.Path)
		var name string
		if json.Unmarshal(doc["name"], &name) == nil && name != "" {
			repo = name
		}
		serveAs := f.ServeAs
		if serveAs == "" && len(listed) > 0 {
			serveAs = listed[0]
			for _, t := range listed {
				if t == "latest" {
					serveAs = t
				}
			}
		}
		if repo != "" && serveAs != "" {
			p.mu.Lock()
			if p.oddTags[repo] == nil {
				p.oddTags[repo] = map[string]string{}
			}
			for _, t := range extra {
				p.oddTags[repo][t] = serveAs
			}
			p.mu.Unlock()
		}
	}
	return nil
}

// oddTarget returns the path of the real manifest to serve for a GET or
// HEAD of a manifest by a tag OddNames added, or "". The reference is
// recognised however the client sent it: escaped, raw, or with its ? taken
// as the start of a query. p.mu is held.
func (p *Proxy) oddTarget(r *http.Request) string {
	if len(p.oddTags) == 0 || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return ""
	}
	m := manifestPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return ""
	}
	tags := p.oddTags[m[1]]
	if tags == nil {
		return ""
	}
	refs := []string{m[2]}
	rawPath, _, _ := strings.Cut(r.RequestURI, "?")
	if i := strings.LastIndex(rawPath, "/manifests/"); i >= 0 {
		refs = append(refs, rawPath[i+len("/manifests/"):])
	}
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		for _, ref := range refs { // ranges over the refs before the appends
			refs = append(refs, ref+"?"+r.URL.RawQuery)
		}
	}
	for _, ref := range refs {
		if tag, ok := tags[ref]; ok {
			return "/v2/" + m[1] + "/manifests/" + tag
		}
	}
	return ""
}

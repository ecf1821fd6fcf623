// Package clouddouble starts local doubles of cloud registries that speak
// the real wire protocols, for tests that cannot reach a cloud: the AWS API
// of ECR (JSON 1.1: GetAuthorizationToken, DescribeRepositories,
// CreateRepository, PutLifecyclePolicy; STS's AssumeRoleWithWebIdentity
// for IRSA) in front of a real registry that takes only the tokens it
// issued and expires them quickly; and Google's metadata server (the
// access tokens of application default credentials) in front of a real
// registry with Artifact Registry's token flow. The SDKs and keychains
// under test are the real libraries, pointed here by their standard
// endpoint overrides (AWS_ENDPOINT_URL, GCE_METADATA_HOST).
package clouddouble

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// ECROptions configure the ECR double.
type ECROptions struct {
	// Backend is the real registry behind the double (a URL: http://HOST).
	Backend string
	// TokenTTL is the lifetime GetAuthorizationToken announces (ECR:
	// 12 h); RefuseAfter, when shorter, is when the registry stops taking
	// a token all the same (a token revoked early: the client learns it
	// from a 401).
	TokenTTL, RefuseAfter time.Duration
	// Account is the registry id (default 123456789012), Region its
	// region (default us-east-1).
	Account, Region string
	// AccessKeyID is the only key whose signed API requests are answered
	// (default AKIDREGMIGRATETEST); WebIdentityToken, when set, is what
	// AssumeRoleWithWebIdentity takes, and it hands out a key that is
	// answered too.
	AccessKeyID      string
	WebIdentityToken string
	// Repositories exist from the start.
	Repositories []string
	// Latency delays every registry request (a registry far away: a long
	// migration in a short test).
	Latency time.Duration
}

// Repository is what the double keeps of an ECR repository.
type Repository struct {
	Name            string
	TagImmutable    bool
	ScanOnPush      bool
	EncryptionType  string
	KMSKey          string
	LifecyclePolicy string
}

// ECR is a running ECR double: API is the AWS endpoint URL, Host the
// registry's host:port (plain HTTP: mark it insecure).
type ECR struct {
	API  string
	Host string
	o    ECROptions

	mu        sync.Mutex
	tokens    map[string]time.Time // password -> expiry
	issued    int
	refused   int // requests with a token it issued that had expired
	used      map[string]bool
	first     time.Time
	last      time.Time
	repos     map[string]*Repository
	creates   []string
	apiCalls  map[string]int
	assumed   string // the key AssumeRoleWithWebIdentity handed out
	rejectedA int    // API calls with an unknown or missing key
}

// StartECR starts the API and the registry front until the test ends.
func StartECR(t testing.TB, o ECROptions) *ECR {
	t.Helper()
	if o.Account == "" {
		o.Account = "123456789012"
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.AccessKeyID == "" {
		o.AccessKeyID = "AKIDREGMIGRATETEST"
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = 12 * time.Hour
	}
	if o.RefuseAfter <= 0 || o.RefuseAfter > o.TokenTTL {
		o.RefuseAfter = o.TokenTTL
	}
	d := &ECR{o: o, tokens: map[string]time.Time{}, used: map[string]bool{}, repos: map[string]*Repository{}, apiCalls: map[string]int{}}
	for _, r := range o.Repositories {
		d.repos[r] = &Repository{Name: r, EncryptionType: "AES256"}
	}
	backend, err := url.Parse(o.Backend)
	if err != nil {
		t.Fatalf("clouddouble: backend %q: %v", o.Backend, err)
	}
	api := httptest.NewServer(http.HandlerFunc(d.serveAPI))
	t.Cleanup(api.Close)
	proxy := httputil.NewSingleHostReverseProxy(backend)
	reg := httptest.NewServer(d.front(proxy, backend))
	t.Cleanup(reg.Close)
	d.API, d.Host = api.URL, strings.TrimPrefix(reg.URL, "http://")
	return d
}

// ResetStats starts the counts (issued, refused, used, span) again.
func (d *ECR) ResetStats() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.issued, d.refused, d.used, d.first, d.last = 0, 0, map[string]bool{}, time.Time{}, time.Time{}
}

// Issued is how many tokens GetAuthorizationToken handed out.
func (d *ECR) Issued() int { d.mu.Lock(); defer d.mu.Unlock(); return d.issued }

// Refused is how many registry requests came with an expired token.
func (d *ECR) Refused() int { d.mu.Lock(); defer d.mu.Unlock(); return d.refused }

// TokensUsed is how many distinct tokens authorized a registry request.
func (d *ECR) TokensUsed() int { d.mu.Lock(); defer d.mu.Unlock(); return len(d.used) }

// Span is the time between the first and the last authorized request.
func (d *ECR) Span() time.Duration { d.mu.Lock(); defer d.mu.Unlock(); return d.last.Sub(d.first) }

// Created lists the repositories CreateRepository made, in order.
func (d *ECR) Created() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.creates...)
}

// Repo returns a repository's settings (nil: none).
func (d *ECR) Repo(name string) *Repository {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.repos[name]; ok {
		c := *r
		return &c
	}
	return nil
}

// Calls is how many times each API operation was called.
func (d *ECR) Calls(op string) int { d.mu.Lock(); defer d.mu.Unlock(); return d.apiCalls[op] }

// AssumedKey is the access key AssumeRoleWithWebIdentity handed out ("":
// never called).
func (d *ECR) AssumedKey() string { d.mu.Lock(); defer d.mu.Unlock(); return d.assumed }

// ---- the AWS API (JSON 1.1 for ECR, query/XML for STS) ----

var credentialKey = regexp.MustCompile(`Credential=([A-Z0-9]+)/`)

func (d *ECR) serveAPI(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	target := r.Header.Get("X-Amz-Target")
	if target == "" {
		d.serveSTS(w, body)
		return
	}
	// Signed with a key the double knows: the SDK's credential chain
	// found the credentials the test gave (environment, web identity).
	m := credentialKey.FindStringSubmatch(r.Header.Get("Authorization"))
	d.mu.Lock()
	known := m != nil && (m[1] == d.o.AccessKeyID || (d.assumed != "" && m[1] == d.assumed))
	if !known {
		d.rejectedA++
	}
	d.mu.Unlock()
	if !known {
		awsError(w, http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	}
	op := strings.TrimPrefix(target, "AmazonEC2ContainerRegistry_V20150921.")
	d.mu.Lock()
	d.apiCalls[op]++
	d.mu.Unlock()
	var in map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			awsError(w, http.StatusBadRequest, "SerializationException", err.Error())
			return
		}
	}
	switch op {
	case "GetAuthorizationToken":
		d.getAuthorizationToken(w)
	case "DescribeRepositories":
		d.describeRepositories(w, in)
	case "CreateRepository":
		d.createRepository(w, in)
	case "PutLifecyclePolicy":
		d.putLifecyclePolicy(w, in)
	default:
		awsError(w, http.StatusBadRequest, "UnknownOperationException", op)
	}
}

func awsError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func awsJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(v)
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (d *ECR) getAuthorizationToken(w http.ResponseWriter) {
	pass := randomToken(24)
	now := time.Now()
	exp := now.Add(d.o.TokenTTL)
	d.mu.Lock()
	d.tokens[pass] = now.Add(d.o.RefuseAfter)
	d.issued++
	d.mu.Unlock()
	awsJSON(w, map[string]any{"authorizationData": []map[string]any{{
		"authorizationToken": base64.StdEncoding.EncodeToString([]byte("AWS:" + pass)),
		"expiresAt":          float64(exp.UnixMilli()) / 1000,
		"proxyEndpoint":      "http://" + d.Host,
	}}})
}

func (d *ECR) repoJSON(r *Repository) map[string]any {
	enc := map[string]any{"encryptionType": r.EncryptionType}
	if r.KMSKey != "" {
		enc["kmsKey"] = r.KMSKey
	}
	mut := "MUTABLE"
	if r.TagImmutable {
		mut = "IMMUTABLE"
	}
	return map[string]any{
		"repositoryName": r.Name, "registryId": d.o.Account,
		"repositoryArn":              fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", d.o.Region, d.o.Account, r.Name),
		"repositoryUri":              d.Host + "/" + r.Name,
		"imageTagMutability":         mut,
		"imageScanningConfiguration": map[string]any{"scanOnPush": r.ScanOnPush},
		"encryptionConfiguration":    enc,
	}
}

func (d *ECR) describeRepositories(w http.ResponseWriter, in map[string]any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []map[string]any
	names, _ := in["repositoryNames"].([]any)
	if len(names) == 0 {
		keys := make([]string, 0, len(d.repos))
		for k := range d.repos {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, d.repoJSON(d.repos[k]))
		}
	}
	for _, n := range names {
		s, _ := n.(string)
		r, ok := d.repos[s]
		if !ok {
			awsError(w, http.StatusBadRequest, "RepositoryNotFoundException",
				fmt.Sprintf("The repository with name '%s' does not exist in the registry with id '%s'", s, d.o.Account))
			return
		}
		out = append(out, d.repoJSON(r))
	}
	awsJSON(w, map[string]any{"repositories": out})
}

func (d *ECR) createRepository(w http.ResponseWriter, in map[string]any) {
	name, _ := in["repositoryName"].(string)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.repos[name]; ok {
		awsError(w, http.StatusBadRequest, "RepositoryAlreadyExistsException",
			fmt.Sprintf("The repository with name '%s' already exists in the registry with id '%s'", name, d.o.Account))
		return
	}
	r := &Repository{Name: name, EncryptionType: "AES256"}
	r.TagImmutable = in["imageTagMutability"] == "IMMUTABLE"
	if sc, ok := in["imageScanningConfiguration"].(map[string]any); ok {
		r.ScanOnPush, _ = sc["scanOnPush"].(bool)
	}
	if ec, ok := in["encryptionConfiguration"].(map[string]any); ok {
		r.EncryptionType, _ = ec["encryptionType"].(string)
		r.KMSKey, _ = ec["kmsKey"].(string)
	}
	d.repos[name] = r
	d.creates = append(d.creates, name)
	awsJSON(w, map[string]any{"repository": d.repoJSON(r)})
}

func (d *ECR) putLifecyclePolicy(w http.ResponseWriter, in map[string]any) {
	name, _ := in["repositoryName"].(string)
	text, _ := in["lifecyclePolicyText"].(string)
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.repos[name]
	if !ok {
		awsError(w, http.StatusBadRequest, "RepositoryNotFoundException", fmt.Sprintf("The repository with name '%s' does not exist in the registry with id '%s'", name, d.o.Account))
		return
	}
	if !json.Valid([]byte(text)) {
		awsError(w, http.StatusBadRequest, "InvalidParameterException", "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure'")
		return
	}
	r.LifecyclePolicy = text
	awsJSON(w, map[string]any{"registryId": d.o.Account, "repositoryName": name, "lifecyclePolicyText": text})
}

// serveSTS answers AssumeRoleWithWebIdentity (query protocol, XML), the
// call IRSA's AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN lead the SDK to.
func (d *ECR) serveSTS(w http.ResponseWriter, body []byte) {
	q, _ := url.ParseQuery(string(body))
	if q.Get("Action") != "AssumeRoleWithWebIdentity" {
		http.Error(w, "unknown action", http.StatusBadRequest)
		return
	}
	if d.o.WebIdentityToken == "" || q.Get("WebIdentityToken") != d.o.WebIdentityToken || q.Get("RoleArn") == "" {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>`)
		return
	}
	key := "ASIA" + strings.ToUpper(randomToken(8))
	d.mu.Lock()
	d.assumed = key
	d.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>
<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>
<AssumedRoleUser><Arn>%s/regmigrate</Arn><AssumedRoleId>AROA:regmigrate</AssumedRoleId></AssumedRoleUser>
</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`,
		key, randomToken(20), randomToken(32), time.Now().Add(time.Hour).UTC().Format(time.RFC3339), q.Get("RoleArn"))
}

// ---- the registry front ----

// repoPath reads the repository of a /v2/NAME/(manifests|blobs|tags)/...
// path.
var repoPath = regexp.MustCompile(`^/v2/(.+?)/(manifests|blobs|tags|referrers)/`)

func registryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

func (d *ECR) front(proxy http.Handler, backend *url.URL) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.o.Latency > 0 {
			time.Sleep(d.o.Latency)
		}
		user, pass, ok := r.BasicAuth()
		d.mu.Lock()
		exp, issued := d.tokens[pass]
		valid := ok && user == "AWS" && issued && time.Now().Before(exp)
		if ok && issued && !valid {
			d.refused++
		}
		if valid {
			now := time.Now()
			if d.first.IsZero() {
				d.first = now
			}
			d.last = now
			d.used[pass] = true
		}
		d.mu.Unlock()
		if !valid {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm="https://%s/",service="ecr.amazonaws.com"`, d.Host))
			msg := "Not Authorized"
			if issued {
				msg = "Your authorization token has expired. Reauthenticate and try again."
			}
			registryError(w, http.StatusUnauthorized, "DENIED", msg)
			return
		}
		if m := repoPath.FindStringSubmatch(r.URL.Path); m != nil {
			d.mu.Lock()
			repo := d.repos[m[1]]
			d.mu.Unlock()
			if repo == nil {
				registryError(w, http.StatusNotFound, "NAME_UNKNOWN",
					fmt.Sprintf("The repository with name '%s' does not exist in the registry with id '%s'", m[1], d.o.Account))
				return
			}
			if repo.TagImmutable && r.Method == http.MethodPut && m[2] == "manifests" && d.overwrites(r, backend, m[1]) {
				registryError(w, http.StatusBadRequest, "TAG_INVALID", fmt.Sprintf("The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the repository is immutable.", tagOf(r.URL.Path), m[1]))
				return
			}
		}
		r.Header.Del("Authorization") // the backend is open
		proxy.ServeHTTP(w, r)
	})
}

func tagOf(path string) string { return path[strings.LastIndex(path, "/")+1:] }

// overwrites reports whether a manifest PUT moves an existing tag to other
// bytes (it reads the body and puts it back).
func (d *ECR) overwrites(r *http.Request, backend *url.URL, repo string) bool {
	ref := tagOf(r.URL.Path)
	if strings.HasPrefix(ref, "sha256:") {
		return false
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	sum := sha256.Sum256(body)
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodHead, backend.String()+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && resp.Header.Get("Docker-Content-Digest") != "sha256:"+hex.EncodeToString(sum[:])
}

package credentials

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a self-signed CA that issues server and client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "regmigrate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and PEM key signed by the CA.
func (ca *testCA) issue(t *testing.T, usage x509.ExtKeyUsage, ips ...net.IP) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "regmigrate test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// TestTLSConfigHandshake talks to a TLS server that requires a client
// certificate, with a CA and a client certificate from certs.d.
func TestTLSConfigHandshake(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	serverCert, serverKey := ca.issue(t, x509.ExtKeyUsageServerAuth, net.ParseIP("127.0.0.1"))
	pair, err := tls.X509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "no client certificate", http.StatusUnauthorized)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: clientCAs, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")

	certsDir := t.TempDir()
	clientCert, clientKey := ca.issue(t, x509.ExtKeyUsageClientAuth)
	writeFile(t, certsDir, host+"/ca.crt", string(ca.pem))
	writeFile(t, certsDir, host+"/client.cert", string(clientCert))
	writeFile(t, certsDir, host+"/client.key", string(clientKey))
	otherDir := t.TempDir()
	writeFile(t, otherDir, host+"/ca.crt", string(ca.pem)) // CA only: the server refuses

	tests := []struct {
		name     string
		certsDir string
		insecure bool
		wantErr  bool
	}{
		{name: "CA and client certificate", certsDir: certsDir},
		{name: "no certs.d: the test CA is unknown", certsDir: "", wantErr: true},
		{name: "insecure without client certificate: refused by the server", certsDir: "", insecure: true, wantErr: true},
		{name: "CA without client certificate", certsDir: otherDir, wantErr: true},
		{name: "insecure with client certificate", certsDir: certsDir, insecure: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := TLSConfig(tt.certsDir, host, tt.insecure)
			if err != nil {
				t.Fatalf("TLSConfig: %v", err)
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
			resp, err := client.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = statusError(resp.Status)
				}
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("GET error = %v, want error %t", err, tt.wantErr)
			}
		})
	}
}

// statusError is an HTTP status other than 200 OK.
type statusError string

func (s statusError) Error() string { return "status " + string(s) }

func TestTLSConfig(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	cert, key := ca.issue(t, x509.ExtKeyUsageClientAuth)
	dir := t.TempDir()
	const host = "registry.example.com:5000"
	writeFile(t, dir, "good/"+host+"/ca.crt", string(ca.pem))
	writeFile(t, dir, "good/"+host+"/extra.crt", string(ca.pem))
	writeFile(t, dir, "good/"+host+"/client.cert", string(cert))
	writeFile(t, dir, "good/"+host+"/client.key", string(key))
	writeFile(t, dir, "good/"+host+"/README", "ignored")
	writeFile(t, dir, "nokey/"+host+"/client.cert", string(cert))
	writeFile(t, dir, "nocert/"+host+"/client.key", string(key))
	writeFile(t, dir, "badca/"+host+"/ca.crt", "not a certificate")
	writeFile(t, dir, "badpair/"+host+"/client.cert", string(cert))
	writeFile(t, dir, "badpair/"+host+"/client.key", string(ca.pem))
	tests := []struct {
		name      string
		certsDir  string
		registry  string
		insecure  bool
		wantRoots bool
		wantCerts int
		wantErr   string
	}{
		{name: "empty certs dir: system roots", certsDir: "", registry: host},
		{name: "no folder for the registry: system roots", certsDir: filepath.Join(dir, "good"), registry: "other.example.com"},
		{name: "insecure", certsDir: "", registry: host, insecure: true},
		{name: "CA certificates and a client pair", certsDir: filepath.Join(dir, "good"), registry: host, wantRoots: true, wantCerts: 1},
		{name: "cert without key", certsDir: filepath.Join(dir, "nokey"), registry: host, wantErr: "client.cert has no key client.key"},
		{name: "key without cert", certsDir: filepath.Join(dir, "nocert"), registry: host, wantErr: "client.key has no certificate client.cert"},
		{name: "CA file without certificate", certsDir: filepath.Join(dir, "badca"), registry: host, wantErr: "ca.crt holds no PEM certificate"},
		{name: "key that is not a key", certsDir: filepath.Join(dir, "badpair"), registry: host, wantErr: "loading client certificate"},
		{name: "registry that is a path", certsDir: filepath.Join(dir, "good"), registry: "../good", wantErr: `invalid registry "../good"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := TLSConfig(tt.certsDir, tt.registry, tt.insecure)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY") {
					t.Errorf("error %q shows key material", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.InsecureSkipVerify != tt.insecure {
				t.Errorf("InsecureSkipVerify = %t, want %t", cfg.InsecureSkipVerify, tt.insecure)
			}
			if (cfg.RootCAs != nil) != tt.wantRoots {
				t.Errorf("RootCAs set = %t, want %t", cfg.RootCAs != nil, tt.wantRoots)
			}
			if len(cfg.Certificates) != tt.wantCerts {
				t.Errorf("%d client certificates, want %d", len(cfg.Certificates), tt.wantCerts)
			}
			if cfg.MinVersion < tls.VersionTLS12 {
				t.Errorf("MinVersion = %x, want at least TLS 1.2", cfg.MinVersion)
			}
			if tt.wantRoots {
				if _, err := ca.cert.Verify(x509.VerifyOptions{Roots: cfg.RootCAs}); err != nil {
					t.Errorf("the test CA does not verify with RootCAs: %v", err)
				}
			}
		})
	}
}

func TestTLSConfigUnreadableFolder(t *testing.T) {
	t.Parallel()
	// A file where the host's folder should be: unreadable as a folder for
	// every user, root included.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "reg.example.com"), []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := TLSConfig(dir, "reg.example.com", false); err == nil || !strings.Contains(err.Error(), "reading certificates of reg.example.com") {
		t.Errorf("err = %v, want a read error", err)
	}
}

package kubeapi

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The cluster's certificates, all ECDSA P-256, in <Dir>/pki:
//
//	ca.{crt,key}                  cluster CA: serving cert, client certs (--client-ca-file)
//	apiserver.{crt,key}           serving: 127.0.0.1, ::1, 10.0.0.1, Options.Address, localhost, kubernetes.default.svc...
//	sa.{key,pub}                  service-account token signing
//	front-proxy-ca.{crt,key}      --requestheader-client-ca-file
//	front-proxy-client.{crt,key}  --proxy-client-cert-file: the aggregator's client identity
//	admin.{crt,key}               CN=admin, O=system:masters
//	kubelet-client.{crt,key}      the apiserver's client identity at kubelets (O=system:masters)

type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var serials atomic.Int64

func newSerial() *big.Int { return big.NewInt(time.Now().UnixNano() + serials.Add(1)) }

// newCert makes a key and a certificate signed by parent (self-signed if nil).
func newCert(tmpl *x509.Certificate, parent *keyPair) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = newSerial()
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(5*365*24*time.Hour)
	signer, parentCert := crypto.Signer(key), tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return &keyPair{cert: cert, key: key}, err
}

func newCA(cn string) (*keyPair, error) {
	return newCert(&x509.Certificate{Subject: pkix.Name{CommonName: cn},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true}, nil)
}

func newClientCert(ca *keyPair, user string, groups []string) (*keyPair, error) {
	return newCert(&x509.Certificate{Subject: pkix.Name{CommonName: user, Organization: groups},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca)
}

func (kp *keyPair) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.cert.Raw})
}

func (kp *keyPair) keyPEM() []byte {
	der, _ := x509.MarshalECPrivateKey(kp.key.(*ecdsa.PrivateKey))
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func (kp *keyPair) write(dir, name string) error {
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), kp.certPEM(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".key"), kp.keyPEM(), 0o600)
}

func readKeyPair(dir, name string) (*keyPair, error) {
	cb, err := os.ReadFile(filepath.Join(dir, name+".crt"))
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(filepath.Join(dir, name+".key"))
	if err != nil {
		return nil, err
	}
	c, k := pemBlock(cb), pemBlock(kb)
	if c == nil || k == nil {
		return nil, fmt.Errorf("%s/%s: bad PEM", dir, name)
	}
	cert, err := x509.ParseCertificate(c)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParseECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, key: key}, nil
}

func pemBlock(b []byte) []byte {
	if p, _ := pem.Decode(b); p != nil {
		return p.Bytes
	}
	return nil
}

// writePKI creates every certificate and key the cluster needs in dir;
// the serving certificate also names addr.
func writePKI(dir string, addr net.IP) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := newCA("regmigrate-kubeapi-ca")
	if err != nil {
		return err
	}
	serving, err := newCert(&x509.Certificate{Subject: pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.IPv4(10, 0, 0, 1), addr},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"}}, ca)
	if err != nil {
		return err
	}
	fpCA, err := newCA("regmigrate-kubeapi-front-proxy-ca")
	if err != nil {
		return err
	}
	fpClient, err := newClientCert(fpCA, "front-proxy-client", nil)
	if err != nil {
		return err
	}
	admin, err := newClientCert(ca, "admin", []string{"system:masters"})
	if err != nil {
		return err
	}
	kubeletClient, err := newClientCert(ca, "kube-apiserver-kubelet-client", []string{"system:masters"})
	if err != nil {
		return err
	}
	sa, err := newCA("service-accounts") // only the key is used
	if err != nil {
		return err
	}
	for name, kp := range map[string]*keyPair{"ca": ca, "apiserver": serving, "front-proxy-ca": fpCA,
		"front-proxy-client": fpClient, "admin": admin, "kubelet-client": kubeletClient} {
		if err := kp.write(dir, name); err != nil {
			return err
		}
	}
	pub, err := x509.MarshalPKIXPublicKey(sa.key.Public())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), sa.keyPEM(), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// writeKubeconfig writes a kubeconfig for a client certificate.
func writeKubeconfig(path, host string, caPEM []byte, client *keyPair, user string) error {
	if client == nil {
		return errors.New("no client certificate")
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubeapi"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: client.certPEM(), ClientKeyData: client.keyPEM()}
	cfg.Contexts[user] = &clientcmdapi.Context{Cluster: "kubeapi", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = user
	return clientcmd.WriteToFile(*cfg, path)
}

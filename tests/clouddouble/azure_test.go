package clouddouble_test

import (
	"context"
	"errors"
	"testing"

	"github.com/regmigrate/regmigrate/steps/cloudauth"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/tests/clouddouble"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// The ACR keychain: azidentity's default chain (a service principal in the
// environment, AZURE_AUTHORITY_HOST pointing at the Entra double, its CA
// trusted through SSL_CERT_FILE as a machine's bundle would) gets an
// access token, ACR's /oauth2/exchange trades it for a refresh token, and
// the registry client gets access tokens with it: the copy's target
// takes only those.
func TestACRExchangesAnEntraToken(t *testing.T) {
	back := regtest.StartInProcess(t)
	a := clouddouble.StartAzure(t, clouddouble.AzureOptions{Backend: back.URL(), Tenant: "72f988bf-0000-0000-0000-000000000000", ClientID: "regmigrate-app", ClientSecret: "entra-secret-never-logged"})
	t.Setenv("SSL_CERT_FILE", a.CAFile) // read once per process: this package's only TLS test
	t.Setenv("AZURE_AUTHORITY_HOST", a.AuthorityHost)
	t.Setenv("AZURE_TENANT_ID", "72f988bf-0000-0000-0000-000000000000")
	t.Setenv("AZURE_CLIENT_ID", "regmigrate-app")
	t.Setenv("AZURE_CLIENT_SECRET", "entra-secret-never-logged")
	getenv := func(k string) string { return map[string]string{"AZURE_AUTHORITY_HOST": a.AuthorityHost}[k] }
	kc := cloudauth.New(cloudauth.Options{Registries: map[string]cloudauth.Registry{a.Host: {Kind: cloudauth.ACR}}, Getenv: getenv, Insecure: func(h string) bool { return h == a.Host }})
	c := registry.New(registry.Options{Keychain: kc, Insecure: registry.InsecureHosts(a.Host)})
	ctx := context.Background()
	if err := c.Login(ctx, a.Host, "team/app"); err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, err := c.ListTags(ctx, a.Host, "team/app"); err != nil && !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("listing tags: %v", err)
	}
	if a.EntraTokens() != 1 || a.Exchanges() != 1 {
		t.Errorf("Entra tokens %d, exchanges %d: want 1 each (cached for the refresh token's lifetime)", a.EntraTokens(), a.Exchanges())
	}
}

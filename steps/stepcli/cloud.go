package stepcli

import (
	"flag"
	"sort"
	"strings"

	"github.com/regmigrate/regmigrate/steps/cloudauth"
	"github.com/regmigrate/regmigrate/steps/ecrrepos"
)

// Keychains is the repeatable --keychain HOST=KIND[:REGION[:ACCOUNT]]
// flag: a registry's keychain other than its host's (steps/cloudauth).
type Keychains map[string]cloudauth.Registry

// String implements flag.Value.
func (k Keychains) String() string {
	var out []string
	for h, r := range k {
		out = append(out, cloudauth.Flag(h, r))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// Set implements flag.Value: one or more comma-separated entries.
func (k Keychains) Set(s string) error {
	for _, e := range SplitList(s) {
		h, r, err := cloudauth.ParseFlag(e)
		if err != nil {
			return err
		}
		k[h] = r
	}
	return nil
}

// ECRFlags are mirror-shard's flags for an ECR target's repositories.
type ECRFlags struct {
	NoCreate bool
	Settings ecrrepos.Settings
}

// Bind registers them.
func (e *ECRFlags) Bind(fs *flag.FlagSet) {
	fs.BoolVar(&e.NoCreate, "no-create-repositories", false, "an ECR target's missing repositories are not created: their images fail")
	fs.BoolVar(&e.Settings.TagImmutable, "ecr-tag-immutability", false, "repositories created on ECR have immutable tags")
	fs.BoolVar(&e.Settings.ScanOnPush, "ecr-scan-on-push", false, "repositories created on ECR scan images on push")
	fs.StringVar(&e.Settings.Encryption, "ecr-encryption", "", "encryption of the repositories created on ECR: AES256 (default) or KMS")
	fs.StringVar(&e.Settings.KMSKey, "ecr-kms-key", "", "KMS key (ARN or id) of the repositories created with --ecr-encryption=KMS")
	fs.StringVar(&e.Settings.LifecyclePolicy, "ecr-lifecycle-policy", "", "lifecycle policy (JSON text) applied to the repositories created on ECR")
}

// Maker is the repository maker of these flags for the registries' keychains.
func (e *ECRFlags) Maker(k Keychains) (*ecrrepos.Maker, error) {
	return ecrrepos.New(ecrrepos.Options{Registries: k, Settings: e.Settings, Refuse: e.NoCreate})
}

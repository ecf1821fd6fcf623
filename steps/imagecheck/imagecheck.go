// Package imagecheck verifies the Image API metadata of a migration: every
// ImageStreamTag points at the expected digest and at the target registry's
// reference (TARGET/ns/stream@digest), and its Image exists. It talks to the
// cluster through package imageapi (client-go); its verdicts are
// verify.Check values, which link no Kubernetes.
package imagecheck

import (
	"context"
	"fmt"

	"github.com/regmigrate/regmigrate/steps/imageapi"
	"github.com/regmigrate/regmigrate/steps/par"
	"github.com/regmigrate/regmigrate/steps/verify"
)

// DefaultJobs is the number of ImageStreamTags checked at once.
const DefaultJobs = 16

// Checker checks ImageStreamTags through one cluster's Image API.
type Checker struct {
	API  *imageapi.Client
	Jobs int // tags at once; 0 = DefaultJobs
}

// CheckTags checks every expectation, in order. Repositories that cannot be
// ImageStreams (deeper than namespace/name) pass unchecked: backfill
// reports them as skipped with the reason. Tags left unchecked when ctx
// ends fail with the context's error.
func (c Checker) CheckTags(ctx context.Context, expects []verify.TagExpect) []verify.Check {
	jobs := c.Jobs
	if jobs <= 0 {
		jobs = DefaultJobs
	}
	out := make([]verify.Check, len(expects))
	par.ForEach(ctx, jobs, len(expects), func(i int) { out[i] = c.checkTag(ctx, expects[i]) }, func(i int) {
		e := expects[i]
		out[i] = verify.Check{Target: e.Target.WithoutDigest().String(), Digest: e.Digest, Status: verify.Failed,
			Error: fmt.Sprintf("ImageStreamTag not checked: %v", ctx.Err())}
	})
	return out
}

func (c Checker) checkTag(ctx context.Context, e verify.TagExpect) verify.Check {
	t := e.Target
	v := verify.Check{Target: t.WithoutDigest().String(), Digest: e.Digest, Status: verify.Failed}
	ns, name, err := imageapi.StreamName(t.Repository)
	if err != nil {
		v.Status = verify.Passed // not an ImageStream; backfill reports it as skipped with the reason
		return v
	}
	want := t.Registry + "/" + ns + "/" + name + "@" + e.Digest
	tag, found, err := c.API.GetTag(ctx, ns, name, t.Tag)
	switch {
	case err != nil:
		v.Error = fmt.Sprintf("reading ImageStreamTag %s/%s:%s: %v", ns, name, t.Tag, err)
		return v
	case !found:
		v.Error = fmt.Sprintf("ImageStreamTag %s/%s:%s does not exist", ns, name, t.Tag)
		return v
	case tag.Digest != e.Digest:
		v.Got = tag.Digest
		v.Error = fmt.Sprintf("ImageStreamTag %s/%s:%s points at %s, expected %s", ns, name, t.Tag, tag.Digest, e.Digest)
		return v
	case tag.Reference != want:
		v.Error = fmt.Sprintf("ImageStreamTag %s/%s:%s references %s, expected %s", ns, name, t.Tag, tag.Reference, want)
		return v
	}
	ok, err := c.API.ImageExists(ctx, e.Digest)
	switch {
	case err != nil:
		v.Error = fmt.Sprintf("reading Image %s: %v", e.Digest, err)
		return v
	case !ok:
		v.Error = fmt.Sprintf("Image %s does not exist", e.Digest)
		return v
	}
	v.Status = verify.Passed
	return v
}

package verify

import (
	"context"
	"fmt"
	"sync"

	"github.com/regmigrate/regmigrate/steps/imageapi"
	"github.com/regmigrate/regmigrate/steps/imageref"
)

// TagExpect is one ImageStreamTag to check.
type TagExpect struct {
	Target imageref.Ref // TARGET/ns/stream:tag
	Digest string
}

// ImageAPI checks that every ImageStreamTag points at the expected digest
// and at the target registry's reference (TARGET/ns/stream@digest), and that
// the Image object exists. Repositories that cannot be ImageStreams
// (deeper than namespace/name) are not checked; backfill reports them.
func ImageAPI(ctx context.Context, api *imageapi.Client, expects []TagExpect, jobs int) []Check {
	if jobs <= 0 {
		jobs = DefaultJobs
	}
	out := make([]Check, len(expects))
	idx := make(chan int)
	var wg sync.WaitGroup
	for range min(jobs, max(len(expects), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				out[i] = checkTag(ctx, api, expects[i])
			}
		}()
	}
	for i := range expects {
		idx <- i
	}
	close(idx)
	wg.Wait()
	return out
}

func checkTag(ctx context.Context, api *imageapi.Client, e TagExpect) Check {
	t := e.Target
	c := Check{Target: t.WithoutDigest().String(), Digest: e.Digest, Status: Failed}
	ns, name, err := imageapi.StreamName(t.Repository)
	if err != nil {
		c.Status = Passed // not an ImageStream; backfill reports it as skipped with the reason
		return c
	}
	want := t.Registry + "/" + ns + "/" + name + "@" + e.Digest
	tag, found, err := api.GetTag(ctx, ns, name, t.Tag)
	switch {
	case err != nil:
		c.Error = fmt.Sprintf("reading ImageStreamTag %s/%s:%s: %v", ns, name, t.Tag, err)
		return c
	case !found:
		c.Error = fmt.Sprintf("ImageStreamTag %s/%s:%s does not exist", ns, name, t.Tag)
		return c
	case tag.Digest != e.Digest:
		c.Got = tag.Digest
		c.Error = fmt.Sprintf("ImageStreamTag %s/%s:%s points at %s, expected %s", ns, name, t.Tag, tag.Digest, e.Digest)
		return c
	case tag.Reference != want:
		c.Error = fmt.Sprintf("ImageStreamTag %s/%s:%s references %s, expected %s", ns, name, t.Tag, tag.Reference, want)
		return c
	}
	ok, err := api.ImageExists(ctx, e.Digest)
	if err != nil || !ok {
		c.Error = fmt.Sprintf("Image %s does not exist (%v)", e.Digest, err)
		return c
	}
	c.Status = Passed
	return c
}

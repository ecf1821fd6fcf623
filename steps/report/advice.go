package report

import "strings"

// rerun is how a run is finished: the same command into the same run
// directory, or the shard's retry on Argo; only what is left is done.
const rerun = "run again (regmigrate run --out RUN_DIR, or retry the shard in Argo): only what is left is done"

// advice maps what an error says to what to do, first match wins. Errors
// reach the report as text (mirror.json, verify.json and backfill.json
// are the steps' results), so this reads their words.
var advice = []struct {
	prefix bool // match at the start, else anywhere
	words  []string
	say    string
}{
	{true, []string{"verify: "}, "The target does not hold what the source has, or could not be read back. " +
		"Run again: the image is copied and verified again. If it fails again, check the target registry's storage and logs."},
	{true, []string{"backfill: "}, "The Image API metadata could not be written. Check that the cluster user or the Workflow's ServiceAccount " +
		"may get and create imagestreams and create imagestreammappings, then run again with the cluster (the copy is not redone)."},
	{true, []string{"image api: "}, "The ImageStreamTag does not point at the digest on the target. Run again with the cluster to backfill it again; " +
		"if it still differs, something else writes that tag."},
	{false, []string{"schema 1"}, "Registries no longer accept Docker schema 1 images: push the image again at the source with a current client, then run again."},
	{false, []string{"x509", "certificate", "tls:"}, "TLS failed. Give the registry's CA (--certs-dir DIR, with DIR/<host>/ca.crt), " +
		"or mark the registry insecure if it really speaks plain HTTP, then run again."},
	{false, []string{"401 unauthorized", "403 forbidden", "access denied", "unauthorized", "denied"}, "The registry refused the credentials. " +
		"Check --authfile or --auth (on Argo, the Workflow's Secret) for this registry and namespace: pull on the source, push on the target. Then run again."},
	{false, []string{"invalid digest", "its content has digest", "is longer than"}, "The source served content that does not match its digest: " +
		"its storage is damaged for this image. Repair or push the image again at the source; running again will not help."},
	{false, []string{"404 not found", "manifest unknown", "name unknown", "blob unknown", "not found", "no such repository"}, "The image is not on the source " +
		"(any more). If it was deleted after the plan, run again with --rediscover; if the name is wrong, fix the list."},
	{false, []string{"413", "quota", "no space", "insufficient storage", "507"}, "The target refused to store the upload (space or size limits). " +
		"Free space or raise the limit, then run again."},
	{false, []string{"context canceled"}, "The run was interrupted. Run again to finish: only what is left is copied."},
}

// Advice says what to do about a failed image.
func Advice(im Image) string {
	e := strings.ToLower(im.Error)
	for _, a := range advice {
		for _, w := range a.words {
			if (a.prefix && strings.HasPrefix(e, w)) || (!a.prefix && strings.Contains(e, w)) {
				return a.say
			}
		}
	}
	if im.Retryable {
		return "A transient failure (throttling, a 5xx, a reset or a stall) outlasted the retries: " + rerun +
			". If it keeps happening, raise --retries or --idle-timeout, or lower --max-per-registry."
	}
	return "Read the error and shards/<shard>/mirror.log, fix the cause, then " + rerun + "."
}

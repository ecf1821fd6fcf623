package workflows

import (
	"strconv"
	"strings"
)

// The step containers' arguments, rendered from the same flag names the
// step parsers (steps/stepcli/*cmd) bind; workflows_test.go parses them
// with those parsers. The scope, filters, strategy and verify mode are the
// Workflow's parameters (params.go), given to the steps as flags that may
// be empty (--namespace= means every namespace).

// flags accumulates --name=value arguments, leaving out unset values.
type flags []string

func (f *flags) str(name, v string) {
	if v != "" {
		*f = append(*f, "--"+name+"="+v)
	}
}

func (f *flags) num(name string, v int) {
	if v != 0 {
		*f = append(*f, "--"+name+"="+strconv.Itoa(v))
	}
}

func (f *flags) list(name string, v []string) { f.str(name, strings.Join(v, ",")) }

func (f *flags) boolean(name string, v bool) {
	if v {
		*f = append(*f, "--"+name)
	}
}

// common are the flags every step binds (stepcli.Common). Credentials are
// not among them: DOCKER_CONFIG points at the mounted Secret.
func (p Plan) common() flags {
	var f flags
	f.list("insecure", p.Insecure)
	f.num("jobs", p.Copy.Jobs)
	f.num("max-per-registry", p.Copy.MaxPerRegistry)
	f.num("retries", p.Copy.Retries)
	f.str("idle-timeout", p.Copy.IdleTimeout)
	f.list("keychain", p.Keychains)
	f.throttle(p)
	if len(p.CertFiles) > 0 {
		f.str("certs-dir", CertsDir)
	}
	f.str("log-format", "json")
	return f
}

func (p Plan) exportArgs() []string {
	f := p.common()
	f.str("from", globalParam(ParamSource))
	f.str("to", p.Target)
	for i, l := range p.Scope.Lists {
		f.str("images", inputPath(i, l.Name))
	}
	if r := p.Scope.Rules; r != nil {
		f.str("rules", inputPath(len(p.Scope.Lists), r.Name))
	}
	f.str("out", RunDir)
	f.str("include-namespace", globalParam(ParamIncludeNamespaces))
	f.str("exclude-namespace", globalParam(ParamExcludeNamespaces))
	f.str("repo-regex", globalParam(ParamRepoRegex))
	f.str("exclude-repo-regex", globalParam(ParamExcludeRepoRegex))
	f.str("tag-regex", globalParam(ParamTagRegex))
	f.str("exclude-tag-regex", globalParam(ParamExcludeTagRegex))
	f.num("shard-size", p.Shards.Size)
	f.num("min-shard-size", p.Shards.MinSize)
	f.num("max-shards", p.Shards.Max)
	f.str("migration", p.Name)
	f.str("strategy", globalParam(ParamStrategy))
	f.hub(p.Hub)
	p.layoutFlags(&f, false) // a target layout is created (or a source read) here, before any shard
	return f
}

func (p Plan) mirrorArgs() []string {
	f := p.common()
	f.str("shard-dir", ShardDir)
	f.str("strategy", globalParam(ParamStrategy))
	f.list("platform", p.Copy.Platforms)
	f.boolean("no-referrers", p.Copy.NoReferrers)
	f.boolean("no-attachments", p.Copy.NoAttachments)
	f.boolean("no-create-repositories", p.ECR.NoCreate)
	f.boolean("ecr-tag-immutability", p.ECR.TagImmutable)
	f.boolean("ecr-scan-on-push", p.ECR.ScanOnPush)
	f.str("ecr-encryption", p.ECR.Encryption)
	f.str("ecr-kms-key", p.ECR.KMSKey)
	f.str("ecr-lifecycle-policy", p.ECR.LifecyclePolicy)
	p.layoutFlags(&f, true)
	return f
}

// cluster are the cluster flags backfill-shard and verify share
// (clusterflags.Flags). No --kubeconfig: in a pod the ServiceAccount is the
// credential.
func (f *flags) cluster(b *Backfill) {
	f.str("image-api", b.ImageAPI)
	if b.QPS != 0 {
		f.str("qps", strconv.FormatFloat(float64(b.QPS), 'g', -1, 32))
	}
	f.num("burst", b.Burst)
}

func (p Plan) backfillArgs() []string {
	f := p.common()
	f.str("shard-dir", ShardDir)
	f.str("strategy", globalParam(ParamStrategy))
	if p.Backfill != nil {
		f.cluster(p.Backfill)
	}
	return f
}

// verifyShardArgs: with a cluster, verify also checks the ImageStreamTags
// backfill wrote, through the same Image API.
func (p Plan) verifyShardArgs() []string {
	f := p.common()
	f.str("shard-dir", ShardDir)
	f.str("mode", "{{inputs.parameters."+ParamVerifyMode+"}}")
	if p.writesLayout() {
		p.layoutFlags(&f, true)
	}
	if p.Backfill != nil {
		f.boolean("check-image-api", true)
		f.cluster(p.Backfill)
	}
	return f
}

func (p Plan) reportArgs() []string {
	var f flags
	f.str("run-dir", RunDir)
	f.str("started", "{{workflow.creationTimestamp.RFC3339}}")
	f.str("log-format", "json")
	return f
}

// switchModeArgs: the switch-mode step cuts over (mode record and workload
// images) once verify's report in the run directory passes; it writes
// switch.json and switch.diff next to the report.
// checkArgs: the decommission gate, on the legacy registry of the run's
// report.
func (p Plan) checkArgs() []string {
	var f flags
	f.str("run-dir", RunDir)
	f.boolean("check", true)
	f.boolean("check-exit-zero", true)
	return f
}

func (p Plan) switchModeArgs() []string {
	var f flags
	f.str("run-dir", RunDir)
	f.str("migration", p.Name)
	f.boolean("confirm", true)
	return f
}

// Package contract is the interface between the generator and the step
// binaries: step names, flag names, artifact paths and exit codes. Both sides
// import it so that they cannot drift apart.
package contract

import (
	"regexp"
	"runtime/debug"
)

// Step names, also the names of the binaries in steps/cmd.
const (
	StepExport     = "export"
	StepMirror     = "mirror-shard"
	StepVerify     = "verify"
	StepBackfill   = "backfill-shard"
	StepSwitchMode = "switch-mode"
)

// Exit codes. Argo's retryStrategy retries only ExitRetryable.
const (
	ExitOK        = 0  // everything in scope done and verified
	ExitFailed    = 1  // at least one image failed for a reason a retry will not fix
	ExitUsage     = 2  // bad flags or input: fix the command or the file
	ExitRetryable = 75 // only transient failures (429, 5xx, resets): run again (EX_TEMPFAIL)
)

// Artifact paths inside a run directory (local) or the workflow's artifacts.
const (
	ImagesFile  = "images.txt"  // ns/repo:tag, one a line: the scope
	DigestsFile = "digests.txt" // ns/repo:tag sha256:..., as the runbook's IMAGE_DIGEST_FILE
	ShardsFile  = "shards.json" // the shard plan
	ExportFile  = "export.json" // export's result: counts and input errors
	ScopeFile   = "scope.json"  // what the run was asked to migrate (report.Scope)
	LockFile    = ".regmigrate.lock"
	RunsDir     = "runs" // runs/<id>/: each invocation's report and log
	ReportJSON  = "report.json"
	ReportMD    = "report.md"
	ReportHTML  = "report.html"  // the audit report to look at: self-contained, printable
	RunFile     = "run.json"     // the migration and how its latest run was started
	HistoryFile = "history.json" // every run of this run directory, one entry each
	SwitchFile  = "switch.json"  // the cutover record (switch-mode)
	SwitchDiff  = "switch.diff"  // the cutover's readable account
	// ApprovalFile is the cutover's approval record: the decision and who
	// took it (package approval).
	ApprovalFile = "approval.json"
	ShardsDir    = "shards"

	ShardImages   = "images.txt"  // the shard's scope
	ShardMapping  = "mapping.txt" // SRC@DIGEST=DST lines: the shard's plan
	MirrorLog     = "mirror.log"  // "Copied SRC -> DST@DIGEST" lines
	MirrorResult  = "mirror.json"
	VerifyResult  = "verify.json"
	BackfillJSON  = "backfill.json"
	MetadataDir   = "metadata"
	ShardIDsParam = "shard-ids.json" // the small JSON list of shard IDs Argo fans out over
)

// Strategies (the runbook's scenarios), for mirror-shard and
// backfill-shard alike.
const (
	// StrategyCopy: images are copied; metadata is read from the target.
	StrategyCopy = "copy"
	// StrategyReuseStorage: the new registry serves the legacy storage;
	// nothing is copied, metadata is read from the legacy registry.
	StrategyReuseStorage = "reuse-storage"
)

// Image statuses in results and the report.
const (
	StatusCopied  = "copied"
	StatusSkipped = "skipped"
	StatusFailed  = "failed"
	StatusPlanned = "planned" // dry run
)

// Version is the version being built: set with -X at link time (make
// build), else the module version the go command stamped into the binary
// (`go install github.com/regmigrate/regmigrate/generator/cmd/regmigrate@v1.2.3`
// says v1.2.3), else "dev". The generator uses it as the default tag of
// the step images when it is a release (IsRelease).
var Version = "dev"

func init() {
	if bi, ok := debug.ReadBuildInfo(); ok {
		Version = versionOf(Version, bi.Main.Version)
	}
}

// versionOf is the version of a binary linked with version linked (-X)
// whose main module has the version the go command stamped ("(devel)"
// or "" when built inside its own checkout without a tag).
func versionOf(linked, module string) string {
	if linked != "dev" || module == "" || module == "(devel)" {
		return linked
	}
	return module
}

// releaseVersion is a released version's tag: v1.2.3, or a pre-release
// v1.2.3-rc.1 (also alpha.N, beta.N).
var releaseVersion = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-(alpha|beta|rc)\.[0-9]+)?$`)

// IsRelease reports whether v names a release, whose step images are
// published under that tag. "dev" (a plain go build), a commit hash and
// `git describe` output past a tag (v1.2.3-4-gabc1234, v1.2.3-dirty) are
// development builds: no image was ever published with their tag.
func IsRelease(v string) bool { return releaseVersion.MatchString(v) }

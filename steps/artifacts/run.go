package artifacts

import (
	"regexp"
	"strings"
	"time"

	"github.com/regmigrate/regmigrate/steps/contract"
)

// Run is run.json: the migration a run directory belongs to and how its
// latest run was started. `regmigrate run` writes it when it starts, the
// export step on Argo; the aggregate reads it for the report and the run
// history.
type Run struct {
	// Migration is the spec's metadata.name (empty without a spec).
	Migration string `json:"migration,omitempty"`
	// Version is regmigrate's.
	Version string `json:"version"`
	// Command is how the run was started (RedactArgs applied: credentials
	// are never flags, and anything that looks like one is replaced).
	Command []string `json:"command,omitempty"`
	// Spec is the migration spec the run used (YAML, the flags merged in),
	// when a spec file was given. It names credential files, never holds
	// a secret.
	Spec     string    `json:"spec,omitempty"`
	Source   string    `json:"source"`
	Target   string    `json:"target"`
	Strategy string    `json:"strategy"`
	DryRun   bool      `json:"dryRun,omitempty"`
	Started  time.Time `json:"started"`
}

// WriteRun writes run.json into the run directory.
func WriteRun(dir Dir, r Run) error { return WriteJSON(dir.Path(contract.RunFile), r) }

// ReadRun reads run.json (fs.ErrNotExist when the run did not record it:
// a run directory from before run.json).
func ReadRun(dir Dir) (Run, error) {
	var r Run
	err := ReadJSON(dir.Path(contract.RunFile), &r)
	return r, err
}

// Redacted replaces a secret's value in a recorded command.
const Redacted = "REDACTED"

var (
	secretFlag = regexp.MustCompile(`(?i)^--?[a-z0-9-]*(password|passwd|token|secret|credential)[a-z0-9-]*$`)
	userinfo   = regexp.MustCompile(`://[^/@\s]+@`)
)

// RedactArgs returns args with the values of flags that name a secret
// (--password, --token, --registry-secret...; "--flag=value" or "--flag
// value") and the user:password of URLs replaced by REDACTED. regmigrate
// takes no secret as a flag; this keeps a mistyped one out of run.json.
func RedactArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := userinfo.ReplaceAllString(args[i], "://"+Redacted+"@")
		name, _, hasValue := strings.Cut(a, "=")
		switch {
		case !secretFlag.MatchString(name):
		case hasValue:
			a = name + "=" + Redacted
		case i+1 < len(args) && !strings.HasPrefix(args[i+1], "-"):
			out = append(out, a)
			a = Redacted
			i++
		}
		out = append(out, a)
	}
	return out
}

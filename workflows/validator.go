package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
)

// ValidatorBinary is the binary that runs Argo's validator for Validate:
// generator/cmd/regmigrate-argo-validate, built and installed beside
// regmigrate. Validate looks for it in $REGMIGRATE_ARGO_VALIDATE (a path),
// then beside the running executable, then on PATH.
const ValidatorBinary = "regmigrate-argo-validate"

// ValidatorEnv names the path of ValidatorBinary when it is installed
// elsewhere than beside regmigrate or on PATH (a libexec directory).
const ValidatorEnv = "REGMIGRATE_ARGO_VALIDATE"

// A Validator is Argo's validation of one object against templates:
// argovalidate.Validate.
type Validator func(obj any, templates ...*wfv1.WorkflowTemplate) error

var inProcess atomic.Pointer[Validator]

// ErrValidatorUnavailable is in the error of a Validate that could not run
// Argo's validator (ValidatorBinary missing, failing or answering nonsense),
// as opposed to one whose object Argo found invalid.
var ErrValidatorUnavailable = errors.New("Argo's validator did not run")

// UseValidator makes Validate call f in this process instead of
// ValidatorBinary: for that binary itself, and for tests that link Argo's
// validator anyway.
func UseValidator(f Validator) { inProcess.Store(&f) }

// validationRequest is what Validate writes to ValidatorBinary's standard
// input: one object and the templates it resolves references against.
type validationRequest struct {
	Kind      string                   `json:"kind"`
	Object    json.RawMessage          `json:"object"`
	Templates []*wfv1.WorkflowTemplate `json:"templates,omitempty"`
}

// validationResponse is what ValidatorBinary writes to its standard output.
type validationResponse struct {
	Error string `json:"error,omitempty"` // Argo's verdict; empty when valid
}

func kindOf(obj any) (string, error) {
	switch obj.(type) {
	case *wfv1.Workflow:
		return "Workflow", nil
	case *wfv1.CronWorkflow:
		return "CronWorkflow", nil
	case *wfv1.WorkflowTemplate:
		return "WorkflowTemplate", nil
	case *wfv1.ClusterWorkflowTemplate:
		return clusterKind, nil
	default:
		return "", fmt.Errorf("cannot validate %T: want a Workflow, CronWorkflow, WorkflowTemplate or ClusterWorkflowTemplate", obj)
	}
}

// newObject is an empty object of a kind Validate takes (Lint's
// documents, ValidatorBinary's requests), or nil for any other kind.
func newObject(kind string) interface{ GetName() string } {
	switch kind {
	case "Workflow":
		return &wfv1.Workflow{}
	case "CronWorkflow":
		return &wfv1.CronWorkflow{}
	case "WorkflowTemplate":
		return &wfv1.WorkflowTemplate{}
	case clusterKind:
		return &wfv1.ClusterWorkflowTemplate{}
	}
	return nil
}

func validateOutOfProcess(obj any, templates []*wfv1.WorkflowTemplate) error {
	kind, err := kindOf(obj)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encoding the %s for Argo's validator: %w", kind, err)
	}
	req, err := json.Marshal(validationRequest{Kind: kind, Object: raw, Templates: templates})
	if err != nil {
		return fmt.Errorf("encoding the %s for Argo's validator: %w", kind, err)
	}
	path, err := validatorPath()
	if err != nil {
		return err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(req), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s: %v: %s", ErrValidatorUnavailable, path, err, strings.TrimSpace(stderr.String()))
	}
	var res validationResponse
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return fmt.Errorf("%w: %s: unreadable answer %q: %v (is it the one built with this regmigrate?)", ErrValidatorUnavailable, path, truncate(stdout.String(), 200), err)
	}
	if res.Error != "" {
		return errors.New(res.Error)
	}
	return nil
}

// validatorPath finds ValidatorBinary.
func validatorPath() (string, error) {
	if p := os.Getenv(ValidatorEnv); p != "" {
		if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			return "", fmt.Errorf("%w: $%s=%s is not a file (the %s binary): unset it to look beside regmigrate and on PATH", ErrValidatorUnavailable, ValidatorEnv, p, ValidatorBinary)
		}
		return p, nil
	}
	var beside string
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			beside = filepath.Join(filepath.Dir(exe), ValidatorBinary)
			if fi, err := os.Stat(beside); err == nil && !fi.IsDir() {
				return beside, nil
			}
		}
	}
	if p, err := exec.LookPath(ValidatorBinary); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: it is the %s binary, installed with regmigrate, and it is neither beside it (%s) nor on PATH: "+
		"install both (make build puts them in bin/; go install github.com/regmigrate/regmigrate/generator/cmd/...@VERSION), "+
		"or name it with $%s", ErrValidatorUnavailable, ValidatorBinary, beside, ValidatorEnv)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// ServeValidation is ValidatorBinary: it reads one request from r,
// validates its object with f and writes the verdict to w. The error is
// for a request it cannot read or an answer it cannot write, not for an
// invalid object (that is the verdict).
func ServeValidation(r io.Reader, w io.Writer, f Validator) error {
	var req validationRequest
	if err := json.NewDecoder(r).Decode(&req); err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}
	obj := newObject(req.Kind)
	if obj == nil {
		return fmt.Errorf("reading the request: kind %q: want Workflow, CronWorkflow, WorkflowTemplate or ClusterWorkflowTemplate", req.Kind)
	}
	if err := json.Unmarshal(req.Object, obj); err != nil {
		return fmt.Errorf("reading the request's %s: %w", req.Kind, err)
	}
	var res validationResponse
	if err := f(obj, req.Templates...); err != nil {
		res.Error = err.Error()
	}
	return json.NewEncoder(w).Encode(res)
}

package workflows

import (
	"fmt"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/regmigrate/regmigrate/steps/contract"
)

// The Workflows' parameters: the scope (the source registry and the
// filters), the strategy and the verify mode, with the plan's values as
// defaults. Every object has them (`argo submit -p tag-regex=... FILE`);
// a Workflow from the template sets only those it changes (FromTemplate),
// as `argo submit --from workflowtemplate/NAME -p ...` and the UI's
// Submit form do. The steps read them as {{workflow.parameters.NAME}}.
const (
	ParamSource            = "source"
	ParamIncludeNamespaces = "include-namespaces"
	ParamExcludeNamespaces = "exclude-namespaces"
	ParamRepoRegex         = "repo-regex"
	ParamExcludeRepoRegex  = "exclude-repo-regex"
	ParamTagRegex          = "tag-regex"
	ParamExcludeTagRegex   = "exclude-tag-regex"
	ParamStrategy          = "strategy"
	ParamVerifyMode        = "verify-mode"
)

// Parameters are the parameters' names, in the order the objects list them.
var Parameters = []string{
	ParamSource, ParamIncludeNamespaces, ParamExcludeNamespaces, ParamRepoRegex, ParamExcludeRepoRegex,
	ParamTagRegex, ParamExcludeTagRegex, ParamStrategy, ParamVerifyMode,
}

// The verify step's modes (steps/verify's Mode*): the cutover verifies in
// full whatever the parameter says.
const (
	verifyAuto   = "auto"
	verifyFull   = "full"
	verifyDigest = "digest"
)

// VerifyModes and Strategies are the values the parameters take (their
// enum: Argo refuses others when a Workflow is submitted).
var (
	VerifyModes = []string{verifyAuto, verifyFull, verifyDigest}
	Strategies  = []string{contract.StrategyCopy, contract.StrategyReuseStorage}
)

// parameters are the Workflow's arguments: every parameter with the
// plan's value.
func (p Plan) parameters() []wfv1.Parameter {
	s := p.Scope
	strategy, mode := p.Strategy, p.VerifyMode
	if strategy == "" {
		strategy = contract.StrategyCopy
	}
	if mode == "" {
		mode = verifyAuto
	}
	param := func(name, value, desc string, enum ...string) wfv1.Parameter {
		par := wfv1.Parameter{Name: name, Value: wfv1.AnyStringPtr(value), Description: wfv1.AnyStringPtr(desc)}
		for _, e := range enum {
			par.Enum = append(par.Enum, *wfv1.AnyStringPtr(e))
		}
		return par
	}
	return []wfv1.Parameter{
		param(ParamSource, p.Source, "the legacy registry, HOST[:PORT][/NAMESPACE]; its catalog is the scope unless the template carries image lists"),
		param(ParamIncludeNamespaces, strings.Join(s.IncludeNamespaces, ","), "namespaces to migrate, comma-separated (empty: every one)"),
		param(ParamExcludeNamespaces, strings.Join(s.ExcludeNamespaces, ","), "namespaces to leave out, comma-separated"),
		param(ParamRepoRegex, s.RepoRegex, "repositories (ns/name) to migrate: a regular expression (empty: every one)"),
		param(ParamExcludeRepoRegex, s.ExcludeRepoRegex, "repositories to leave out: a regular expression"),
		param(ParamTagRegex, s.TagRegex, "tags to migrate: a regular expression (empty: every one)"),
		param(ParamExcludeTagRegex, s.ExcludeTagRegex, "tags to leave out: a regular expression"),
		param(ParamStrategy, strategy, "copy (the registries do not share storage) or reuse-storage (the new registry serves the legacy storage: nothing is copied)", Strategies...),
		param(ParamVerifyMode, mode, "auto (deep checks of what the run copied), full (deep checks of everything; the cutover always verifies in full) or digest", VerifyModes...),
	}
}

// globalParam is a reference to a Workflow parameter.
func globalParam(name string) string { return fmt.Sprintf("{{workflow.parameters.%s}}", name) }

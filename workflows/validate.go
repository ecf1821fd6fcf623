package workflows

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Validate runs Argo's own validation on a Workflow, CronWorkflow,
// WorkflowTemplate or ClusterWorkflowTemplate, offline (lint mode:
// arguments may be left for submit). A workflowTemplateRef or templateRef
// resolves to one of templates (the templates it will run against, as
// `argo lint --offline` takes them from the files it is given); any other
// is an error. A ClusterWorkflowTemplate is among templates as
// AsTemplate gives it (Kind ClusterWorkflowTemplate), and only a
// reference with clusterScope resolves to it. obj is left as it is.
//
// Argo's validator is not linked into this package's importers: it runs
// in the regmigrate-argo-validate binary (see ValidatorBinary), unless
// UseValidator gave an in-process one. It is safe for concurrent use.
func Validate(obj any, templates ...*wfv1.WorkflowTemplate) error {
	if f := inProcess.Load(); f != nil {
		return (*f)(obj, templates...)
	}
	return validateOutOfProcess(obj, templates)
}

// clusterKind is the Kind of a ClusterWorkflowTemplate.
const clusterKind = "ClusterWorkflowTemplate"

// AsTemplate is a ClusterWorkflowTemplate as Validate and Lint take it
// among their templates: the same fields, Kind ClusterWorkflowTemplate.
func AsTemplate(c *wfv1.ClusterWorkflowTemplate) *wfv1.WorkflowTemplate {
	c = c.DeepCopy()
	return &wfv1.WorkflowTemplate{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: clusterKind},
		ObjectMeta: c.ObjectMeta,
		Spec:       c.Spec,
	}
}

// Templates decodes the WorkflowTemplates and ClusterWorkflowTemplates
// (as AsTemplate gives them) among the YAML documents of data, for
// Validate and Lint to resolve references against; what is not one, or
// cannot be read, is left for Lint to say.
func Templates(data []byte) []*wfv1.WorkflowTemplate {
	var out []*wfv1.WorkflowTemplate
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if err != nil {
			return out
		}
		var meta struct{ APIVersion, Kind string }
		if yaml.Unmarshal(doc, &meta) != nil || (meta.Kind != "WorkflowTemplate" && meta.Kind != clusterKind) || meta.APIVersion != "argoproj.io/v1alpha1" {
			continue
		}
		t := &wfv1.WorkflowTemplate{}
		if yaml.Unmarshal(doc, t) == nil {
			out = append(out, t)
		}
	}
}

// Linted is what Lint found in a file.
type Linted struct {
	// Checked names each Argo object validated: "Workflow acp-to-registry-v2-*".
	Checked []string
	// Skipped says, for each document that is not an Argo object (a
	// ConfigMap, a Secret beside the Workflow), that it was left alone:
	// "document 2: ConfigMap registry-mode (v1): not an Argo object, skipped".
	Skipped []string
}

// Lint decodes every YAML document of data and validates each Workflow,
// CronWorkflow, WorkflowTemplate and ClusterWorkflowTemplate (unknown
// fields are errors).
// Documents of other API groups are skipped and said so in Skipped; an
// argoproj.io object of another kind, a document that is not a
// Kubernetes object, or a file without any Argo object is an error.
// Errors name the file (name), the document and the object's kind and
// name. References (workflowTemplateRef, templateRef) resolve to the
// templates of data and of templates.
func Lint(name string, data []byte, templates ...*wfv1.WorkflowTemplate) (Linted, error) {
	templates = append(Templates(data), templates...)
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var res Linted
	var errs []error
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 || onlyComments(doc) {
			continue
		}
		var meta struct {
			APIVersion, Kind string
			Metadata         struct{ Name, GenerateName string }
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			errs = append(errs, fmt.Errorf("%s (document %d): %w", name, i, err))
			continue
		}
		if meta.APIVersion == "" || meta.Kind == "" {
			errs = append(errs, fmt.Errorf("%s (document %d): not a Kubernetes object (no apiVersion and kind)", name, i))
			continue
		}
		if group, _, _ := strings.Cut(meta.APIVersion, "/"); group != "argoproj.io" {
			objName := meta.Metadata.Name
			if objName == "" {
				objName = meta.Metadata.GenerateName + "*"
			}
			res.Skipped = append(res.Skipped, fmt.Sprintf("document %d: %s %s (%s): not an Argo object, skipped", i, meta.Kind, objName, meta.APIVersion))
			continue
		}
		checked, err := lintDoc(doc, templates)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (document %d): %w", name, i, err))
			continue
		}
		res.Checked = append(res.Checked, checked)
	}
	if len(res.Checked) == 0 && len(errs) == 0 {
		return res, fmt.Errorf("%s: no Workflow, CronWorkflow, WorkflowTemplate or ClusterWorkflowTemplate in it", name)
	}
	return res, errors.Join(errs...)
}

// onlyComments: a document of comment lines (a file's header) is empty.
func onlyComments(doc []byte) bool {
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}

// lintDoc validates one argoproj.io document and names it.
func lintDoc(doc []byte, templates []*wfv1.WorkflowTemplate) (string, error) {
	var meta struct{ APIVersion, Kind string }
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return "", err
	}
	obj := newObject(meta.Kind)
	if obj == nil {
		return "", fmt.Errorf("kind %q: lint validates Workflow, CronWorkflow, WorkflowTemplate and ClusterWorkflowTemplate", meta.Kind)
	}
	if meta.APIVersion != "argoproj.io/v1alpha1" {
		return "", fmt.Errorf("%s: apiVersion %q, want argoproj.io/v1alpha1", meta.Kind, meta.APIVersion)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return "", fmt.Errorf("%s: %w", meta.Kind, err)
	}
	if err := Validate(obj, templates...); err != nil {
		return "", fmt.Errorf("%s %s: %w", meta.Kind, objName(obj), err)
	}
	return meta.Kind + " " + objName(obj), nil
}

func objName(obj any) string {
	if o, ok := obj.(interface{ GetGenerateName() string }); ok && o.GetGenerateName() != "" {
		if n := obj.(interface{ GetName() string }).GetName(); n == "" {
			return o.GetGenerateName() + "*"
		}
	}
	return obj.(interface{ GetName() string }).GetName()
}

// YAML renders an object as the YAML a person (or kubectl) reads.
func YAML(obj any) ([]byte, error) { return yaml.Marshal(obj) }

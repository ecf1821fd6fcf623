package workflows

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/templateresolution"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// validating serializes Argo's validator: it counts its placeholders in a
// package-level generator without a lock (workflow/validate's
// placeholderGenerator, v3.7), so two validations at once race.
var validating sync.Mutex

// Validate runs Argo's own validation on a Workflow, CronWorkflow or
// WorkflowTemplate, offline (lint mode: arguments may be left for submit;
// no templateRef can be resolved since no cluster is asked). It is safe
// for concurrent use.
func Validate(obj any) error {
	validating.Lock()
	defer validating.Unlock()
	wt, cwt := offlineTemplates{}, &templateresolution.NullClusterWorkflowTemplateGetter{}
	switch o := obj.(type) {
	case *wfv1.Workflow:
		return validate.ValidateWorkflow(wt, cwt, o, nil, validate.ValidateOpts{Lint: true})
	case *wfv1.CronWorkflow:
		return validate.ValidateCronWorkflow(context.Background(), wt, cwt, o, nil)
	case *wfv1.WorkflowTemplate:
		return validate.ValidateWorkflowTemplate(wt, cwt, o, nil, validate.ValidateOpts{Lint: true})
	default:
		return fmt.Errorf("cannot validate %T: want a Workflow, CronWorkflow or WorkflowTemplate", obj)
	}
}

// offlineTemplates resolves no WorkflowTemplate: there is no cluster.
type offlineTemplates struct{}

func (offlineTemplates) Get(name string) (*wfv1.WorkflowTemplate, error) {
	return nil, fmt.Errorf("workflowtemplates.argoproj.io %q: not resolvable offline", name)
}

// Lint decodes every YAML document of data (a Workflow, CronWorkflow or
// WorkflowTemplate; unknown fields are errors) and validates each. Errors
// name the file (name) and the document's kind and name.
func Lint(name string, data []byte) error {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var errs []error
	n := 0
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		n++
		if err := lintDoc(doc); err != nil {
			errs = append(errs, fmt.Errorf("%s (document %d): %w", name, i, err))
		}
	}
	if n == 0 && len(errs) == 0 {
		return fmt.Errorf("%s: no Workflow, CronWorkflow or WorkflowTemplate in it", name)
	}
	return errors.Join(errs...)
}

func lintDoc(doc []byte) error {
	var meta struct{ APIVersion, Kind string }
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return err
	}
	var obj interface{ GetName() string }
	switch meta.Kind {
	case "Workflow":
		obj = &wfv1.Workflow{}
	case "CronWorkflow":
		obj = &wfv1.CronWorkflow{}
	case "WorkflowTemplate":
		obj = &wfv1.WorkflowTemplate{}
	default:
		return fmt.Errorf("kind %q: want Workflow, CronWorkflow or WorkflowTemplate", meta.Kind)
	}
	if meta.APIVersion != "argoproj.io/v1alpha1" {
		return fmt.Errorf("%s: apiVersion %q, want argoproj.io/v1alpha1", meta.Kind, meta.APIVersion)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return fmt.Errorf("%s: %w", meta.Kind, err)
	}
	if err := Validate(obj); err != nil {
		return fmt.Errorf("%s %s: %w", meta.Kind, objName(obj), err)
	}
	return nil
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

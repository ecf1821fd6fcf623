// Package argovalidate runs Argo's own validator (workflow/validate) on
// the objects regmigrate generates and lints.
//
// Argo's validator brings in client-go's typed clients for every API
// group, the artifact drivers and their SDKs: about 470 packages, 20 MB of
// binary and 15 MiB of resident memory in every process that links it,
// whatever command it runs. So the regmigrate binary does not link it:
// workflows.Validate hands each object to the small
// regmigrate-argo-validate binary beside it, which is this package behind
// workflows.ServeValidation. Tests that validate in process call
// workflows.UseValidator(argovalidate.Validate).
package argovalidate

import (
	"context"
	"fmt"
	"sync"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
)

// validating serializes Argo's validator: it counts its placeholders in a
// package-level generator without a lock (workflow/validate's
// placeholderGenerator, v3.7), so two validations at once race.
var validating sync.Mutex

// clusterKind is the Kind of a ClusterWorkflowTemplate, and of a
// WorkflowTemplate that stands for one among the templates
// (workflows.AsTemplate).
const clusterKind = "ClusterWorkflowTemplate"

// Validate runs Argo's validation on a Workflow, CronWorkflow,
// WorkflowTemplate or ClusterWorkflowTemplate, offline (lint mode:
// arguments may be left for submit), with workflows.Validate's contract:
// a workflowTemplateRef or templateRef resolves to one of templates (a
// ClusterWorkflowTemplate among them as workflows.AsTemplate gives it, and
// only for a reference with clusterScope); any other is an error. obj is
// left as it is: a copy is validated. It is safe for concurrent use.
func Validate(obj any, templates ...*wfv1.WorkflowTemplate) error {
	validating.Lock()
	defer validating.Unlock()
	wt, cwt := offlineTemplates(templates), offlineClusterTemplates(templates)
	switch o := obj.(type) {
	case *wfv1.Workflow:
		return validate.ValidateWorkflow(wt, cwt, o.DeepCopy(), nil, validate.ValidateOpts{Lint: true})
	case *wfv1.CronWorkflow:
		return validate.ValidateCronWorkflow(context.Background(), wt, cwt, o.DeepCopy(), nil)
	case *wfv1.WorkflowTemplate:
		return validate.ValidateWorkflowTemplate(wt, cwt, o.DeepCopy(), nil, validate.ValidateOpts{Lint: true})
	case *wfv1.ClusterWorkflowTemplate:
		return validate.ValidateClusterWorkflowTemplate(wt, cwt, o.DeepCopy(), nil, validate.ValidateOpts{Lint: true})
	default:
		return fmt.Errorf("cannot validate %T: want a Workflow, CronWorkflow, WorkflowTemplate or ClusterWorkflowTemplate", obj)
	}
}

// offlineTemplates resolves the WorkflowTemplates it holds: there is no
// cluster to ask.
type offlineTemplates []*wfv1.WorkflowTemplate

func (ts offlineTemplates) Get(name string) (*wfv1.WorkflowTemplate, error) {
	for _, t := range ts {
		if t.Name == name && t.Kind != clusterKind {
			return t.DeepCopy(), nil
		}
	}
	return nil, fmt.Errorf("workflowtemplates.argoproj.io %q: not among the WorkflowTemplates given (lint the file that holds it with this one)", name)
}

// offlineClusterTemplates resolves the ClusterWorkflowTemplates among
// what it holds (workflows.AsTemplate).
type offlineClusterTemplates []*wfv1.WorkflowTemplate

func (ts offlineClusterTemplates) Get(name string) (*wfv1.ClusterWorkflowTemplate, error) {
	for _, t := range ts {
		if t.Name == name && t.Kind == clusterKind {
			t = t.DeepCopy()
			return &wfv1.ClusterWorkflowTemplate{TypeMeta: t.TypeMeta, ObjectMeta: t.ObjectMeta, Spec: t.Spec}, nil
		}
	}
	return nil, fmt.Errorf("clusterworkflowtemplates.argoproj.io %q: not among the ClusterWorkflowTemplates given (lint the file that holds it with this one)", name)
}

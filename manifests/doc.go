// Package manifests holds regmigrate's kustomize install manifests: base/
// (the regmigrate namespace, the ServiceAccount the generated Workflows run
// as, least-privilege RBAC for the Image API steps (backfill, verify's
// ImageStreamTag check), switch-mode and Argo's executor (and the
// Workflows' resource steps, which read, suspend and resume the delta
// CronWorkflow), an example artifact repository, and an example
// migration's pipeline: its WorkflowTemplate and its delta CronWorkflow,
// suspended) and one overlay per platform setting the
// Image API group (overlays/acp: image.alauda.io, overlays/openshift:
// image.openshift.io).
//
//	kubectl apply -k manifests/overlays/acp
//
// No Secret is part of them: the registry credentials and the artifact
// repository's keys are created by hand and referenced by name.
package manifests

import "embed"

// FS is the kustomize tree (base/ and overlays/), for a command that renders
// or applies it without the source checkout.
//
//go:embed base overlays
var FS embed.FS

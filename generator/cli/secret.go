package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/regmigrate/regmigrate/generator/spec"
	"github.com/regmigrate/regmigrate/steps/credentials"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/workflows"
)

var secretsGVR = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// Labels and annotation of the Secret submit --create-secret creates.
const (
	labelManagedBy       = "app.kubernetes.io/managed-by"
	labelMigration       = "regmigrate.io/migration"
	annotationRegistries = "regmigrate.io/registries" // the config.json's keys: what it holds credentials for (no secret)
)

// pendingSecret stands for the Secret's generated name while the object is
// validated before anything is created.
const pendingSecret = "registry-auth-pending"

// registryCredentials resolves the spec's credential files into the
// content of a kubernetes.io/dockerconfigjson Secret, now, on this
// machine: ${ENV} in auth.json from getenv, credential helpers for the
// migration's registries. Errors carry no secret.
func registryCredentials(ctx context.Context, a spec.Auth, p workflows.Plan, getenv func(string) string) (credentials.DockerConfig, error) {
	var hosts []string
	for _, r := range []string{p.Source, p.Target} {
		if r == "" {
			continue
		}
		loc, err := imageref.ParseLocation(r)
		if err != nil {
			return credentials.DockerConfig{}, err
		}
		hosts = append(hosts, loc.Registry)
	}
	return credentials.NewDockerConfig(ctx, credentials.Options{
		AuthFile: a.AuthFile, AuthJSON: a.AuthJSON, DockerConfig: a.DockerConfig, Getenv: getenv,
	}, hosts)
}

// createSecret creates the credentials Secret in ns with a generated name
// (migration-registry-auth-XXXXX) and returns that name. The content is
// sent to the apiserver and nowhere else.
func createSecret(ctx context.Context, dyn dynamic.Interface, ns, migration string, dc credentials.DockerConfig, certs map[string][]byte) (string, error) {
	s := &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: migration + "-registry-auth-",
			Labels:       map[string]string{labelManagedBy: "regmigrate", labelMigration: migration},
			Annotations:  map[string]string{annotationRegistries: strings.Join(dc.Keys, ",")},
		},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: dc.JSON},
	}
	maps.Copy(s.Data, certs)
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(s)
	if err != nil {
		return "", err
	}
	out, err := dyn.Resource(secretsGVR).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("creating the credentials Secret in namespace %s: %w", ns, err)
	}
	return out.GetName(), nil
}

// ownSecret makes the created object the Secret's owner, so that deleting
// the Workflow (CronWorkflow, WorkflowTemplate) deletes its credentials.
func ownSecret(ctx context.Context, dyn dynamic.Interface, ns, name string, owner *unstructured.Unstructured) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": []metav1.OwnerReference{{
		APIVersion: owner.GetAPIVersion(), Kind: owner.GetKind(), Name: owner.GetName(), UID: owner.GetUID(),
	}}}})
	if err != nil {
		return err
	}
	_, err = dyn.Resource(secretsGVR).Namespace(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// deleteSecret removes a Secret whose Workflow was not created; it runs
// even when ctx has ended (an interrupted submit leaves nothing behind).
func deleteSecret(ctx context.Context, dyn dynamic.Interface, ns, name string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return dyn.Resource(secretsGVR).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{})
}

// secretCerts reads auth.certsDir's files into the credentials Secret's
// keys (workflows.CertKey).
func secretCerts(dir string, files []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(files))
	for _, rel := range files {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return nil, fmt.Errorf("auth.certsDir: %w", err)
		}
		out[workflows.CertKey(rel)] = b
	}
	return out, nil
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/regmigrate/regmigrate/steps/credentials"
)

type submitFlags struct {
	generateFlags
	createSecret                bool
	argoKubeconfig, argoContext string
	uiURL                       string
	watch                       bool
	pollEvery                   time.Duration
}

const submitLong = `submit builds the same object as generate (the same flags, the same
validation with Argo's validator) and creates it in the cluster where Argo runs
(--argo-kubeconfig, else $KUBECONFIG, else ~/.kube/config), in the namespace
-n gives (else the kubeconfig's). It prints what it created and, with
--argo-ui, the link to it; --watch follows the Workflow until it ends.

The registries' credentials reach the pods only through a Secret: a spec that
names credential files needs --create-secret (submit builds a
kubernetes.io/dockerconfigjson Secret from them, owned by the created object,
deleted with it) or --secret NAME (an existing Secret). With --from-template
the Workflow (or CronWorkflow) runs the migration's WorkflowTemplate, which
must be installed already and which names the Secret: neither flag is given.

Exit codes: 0 created (with --watch: the Workflow Succeeded), 1 the Workflow
failed (--watch) or the cluster refused it, 2 a mistake in the command or the
spec.`

func newSubmitCmd(env Env) *cobra.Command {
	var f submitFlags
	c := &cobra.Command{
		Use:   "submit",
		Short: "Create the generated Workflow (or CronWorkflow, WorkflowTemplate) in the cluster where Argo runs; print its name and UI link",
		Long:  submitLong,
		Example: `  regmigrate submit -f migration.yaml --create-secret -n regmigrate
  regmigrate submit -f migration.yaml --secret registry-auth -n regmigrate --watch
  regmigrate submit -f migration.yaml --create-secret -n regmigrate -o name   # workflow.argoproj.io/NAME, secret/NAME
  regmigrate submit -f migration.yaml --cron '0 */6 * * *' --argo-kubeconfig ~/.kube/config
  regmigrate submit -f migration.yaml --template --create-secret -n regmigrate     # install the pipeline
  regmigrate submit -f migration.yaml --from-template --param tag-regex='^v2\.' --watch
  regmigrate submit -f migration.yaml --from-template --cutover`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runSubmit(c, env, &f) },
	}
	f.bindGenerate(c)
	fs := c.Flags()
	fs.BoolVar(&f.createSecret, "create-secret", false, "create a kubernetes.io/dockerconfigjson Secret from the spec's credential files (auth.authFile, auth.imageMigratorAuth, auth.dockerConfig; ${ENV} and credential helpers resolved now) in the Workflow's namespace, owned by the created object")
	fs.StringVar(&f.argoKubeconfig, "argo-kubeconfig", "", "kubeconfig `FILE` of the cluster where Argo runs (default: $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&f.argoContext, "argo-context", "", "`CONTEXT` in --argo-kubeconfig")
	fs.StringVar(&f.uiURL, "argo-ui", "", "base `URL` of the Argo UI, for the printed link")
	fs.BoolVar(&f.watch, "watch", false, "follow the Workflow until it ends; exit 0 only if it Succeeded")
	fs.DurationVar(&f.pollEvery, "watch-interval", 2*time.Second, "how often (`DURATION`) --watch reads the Workflow's status")
	bindOutput(c, &f.output, "json and yaml: the object as created; name: KIND.argoproj.io/NAME and secret/NAME", outputJSON, outputYAML, outputName)
	setGroup(fs, groupArgo, "create-secret", "argo-kubeconfig", "argo-context", "argo-ui", "watch", "watch-interval")
	return c
}

func runSubmit(c *cobra.Command, env Env, f *submitFlags) error {
	ctx := c.Context()
	if err := f.output.check(); err != nil {
		return err
	}
	g, err := prepare(c, &f.generateFlags, true, f.createSecret)
	if err != nil {
		return err
	}
	if f.template && f.clusterScope && f.createSecret {
		return usageError(errors.New("--create-secret makes a Secret in one namespace, and a ClusterWorkflowTemplate runs in any: create the Secret in each namespace that runs it and name it with --secret"))
	}
	if f.createSecret {
		g.plan.CredentialsSecret = pendingSecret // validated now; named once created
	}
	obj, err := g.object()
	if err != nil {
		return err
	}
	var dc credentials.DockerConfig
	if f.createSecret {
		if dc, err = registryCredentials(ctx, g.migration.Auth, g.plan, env.Getenv); err != nil {
			return usageError(fmt.Errorf("--create-secret: %w", err))
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if f.argoKubeconfig != "" {
		rules.ExplicitPath = f.argoKubeconfig
	} else if kc := env.Getenv("KUBECONFIG"); kc != "" {
		rules.Precedence = strings.Split(kc, ":")
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.argoContext})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return usageError(fmt.Errorf("loading the kubeconfig of the Argo cluster: %w", err))
	}
	ns, _, err := cc.Namespace()
	if err != nil || ns == "" {
		ns = "default"
	}
	if f.namespace != "" {
		ns = f.namespace
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if f.fromTemplate {
		if err := templateInstalled(ctx, dyn, ns, templateRef(obj), f.clusterScope); err != nil {
			return err
		}
	}
	secret := ""
	if f.createSecret {
		certs, err := secretCerts(g.migration.Auth.CertsDir, g.plan.CertFiles)
		if err != nil {
			return usageError(err)
		}
		if secret, err = createSecret(ctx, dyn, ns, g.plan.Name, dc, certs); err != nil {
			return err
		}
		g.plan.CredentialsSecret = secret
		if obj, err = g.object(); err != nil {
			return errors.Join(err, removeSecret(ctx, dyn, ns, secret))
		}
	}
	created, resource, err := create(ctx, dyn, ns, obj)
	if err != nil {
		err = fmt.Errorf("creating the %s in namespace %s: %w", resource, ns, err)
		if secret != "" {
			err = errors.Join(err, removeSecret(ctx, dyn, ns, secret))
		}
		return err
	}
	w := f.output.readable(env)
	if created.GetNamespace() == "" {
		fmt.Fprintf(w, "%s.argoproj.io/%s created (cluster-scoped)\n", resource, created.GetName())
	} else {
		fmt.Fprintf(w, "%s.argoproj.io/%s created in namespace %s\n", resource, created.GetName(), ns)
	}
	if secret != "" {
		if err := ownSecret(ctx, dyn, ns, secret, created); err != nil {
			return fmt.Errorf("the %s %s was created, but its credentials Secret %s could not be given to it as its owner (delete the Secret with it): %w",
				resource, created.GetName(), secret, err)
		}
		fmt.Fprintf(w, "secret/%s created in namespace %s with credentials for %s (deleted with %s %s)\n",
			secret, ns, strings.Join(dc.Keys, ", "), resource, created.GetName())
	}
	if f.uiURL != "" {
		path := "workflows"
		switch resource {
		case "cronworkflow":
			path = "cron-workflows"
		case "workflowtemplate":
			path = "workflow-templates"
		case "clusterworkflowtemplate":
			path = "cluster-workflow-templates"
		}
		if created.GetNamespace() == "" {
			fmt.Fprintf(w, "%s/%s/%s\n", strings.TrimSuffix(f.uiURL, "/"), path, created.GetName())
		} else {
			fmt.Fprintf(w, "%s/%s/%s/%s\n", strings.TrimSuffix(f.uiURL, "/"), path, ns, created.GetName())
		}
	}
	switch f.output.format {
	case outputName:
		fmt.Fprintf(env.Stdout, "%s.argoproj.io/%s\n", resource, created.GetName())
		if secret != "" {
			fmt.Fprintf(env.Stdout, "secret/%s\n", secret)
		}
	case outputJSON, outputYAML:
		if err := f.output.print(env.Stdout, created.Object); err != nil {
			return err
		}
	}
	if !f.watch || resource != "workflow" {
		return nil
	}
	return watch(ctx, w, dyn, ns, created.GetName(), f.pollEvery)
}

// templateInstalled checks, before a Workflow that runs the migration's
// WorkflowTemplate (its ClusterWorkflowTemplate: cluster) is created, that
// the template is there: otherwise the Workflow would only fail in the
// controller.
func templateInstalled(ctx context.Context, dyn dynamic.Interface, ns, name string, cluster bool) error {
	if cluster {
		gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "clusterworkflowtemplates"}
		if _, err := dyn.Resource(gvr).Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return usageError(fmt.Errorf("--from-template --cluster-scope: no ClusterWorkflowTemplate %s: install it first with `regmigrate submit -f SPEC --template --cluster-scope --secret NAME` "+
				"or `kubectl apply` of the output of `regmigrate generate -f SPEC --template --cluster-scope`", name))
		}
		return nil // any other answer: the controller will say
	}
	gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflowtemplates"}
	_, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return usageError(fmt.Errorf("--from-template: no WorkflowTemplate %s in namespace %s: install it first with `regmigrate submit -f SPEC --template` "+
			"or `kubectl apply -k` of a kustomization holding the output of `regmigrate generate -f SPEC --template`", name, ns))
	}
	return nil // any other answer: the controller will say
}

// templateRef is the name of the template a Workflow or CronWorkflow
// runs (the migration's name, defaulted when the spec gives none).
func templateRef(obj any) string {
	u, err := toUnstructured(obj)
	if err != nil {
		return ""
	}
	name, _, _ := unstructured.NestedString(u.Object, "spec", "workflowTemplateRef", "name")
	if name == "" {
		name, _, _ = unstructured.NestedString(u.Object, "spec", "workflowSpec", "workflowTemplateRef", "name")
	}
	return name
}

// removeSecret deletes the Secret of an object that was not created, and
// says so if it cannot.
func removeSecret(ctx context.Context, dyn dynamic.Interface, ns, name string) error {
	if err := deleteSecret(ctx, dyn, ns, name); err != nil {
		return fmt.Errorf("the credentials Secret %s in namespace %s is left behind (delete it): %w", name, ns, err)
	}
	return nil
}

// watch prints the Workflow's phase (and its progress) as it changes,
// until it ends.
func watch(ctx context.Context, w io.Writer, dyn dynamic.Interface, ns, name string, every time.Duration) error {
	gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"}
	last := ""
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		u, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("watching %s: %w", name, err)
		}
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		progress, _, _ := unstructured.NestedString(u.Object, "status", "progress")
		if now := phase + " " + progress; now != last && phase != "" {
			fmt.Fprintf(w, "%s %s %s\n", name, phase, progress)
			last = now
		}
		switch phase {
		case "Succeeded":
			return nil
		case "Failed", "Error":
			msg, _, _ := unstructured.NestedString(u.Object, "status", "message")
			return &ExitError{Code: 1, Err: fmt.Errorf("workflow %s ended %s: %s", name, phase, msg)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// toUnstructured turns a typed object into its JSON form.
func toUnstructured(obj any) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	return u, nil
}

// create turns the typed object into JSON and creates it.
func create(ctx context.Context, dyn dynamic.Interface, ns string, obj any) (*unstructured.Unstructured, string, error) {
	u, err := toUnstructured(obj)
	if err != nil {
		return nil, "", err
	}
	kind := strings.ToLower(u.GetKind())
	if u.GetAPIVersion() == "" {
		u.SetAPIVersion("argoproj.io/v1alpha1")
	}
	gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: kind + "s"}
	if kind == "clusterworkflowtemplate" {
		out, err := dyn.Resource(gvr).Create(ctx, u, metav1.CreateOptions{})
		return out, kind, err
	}
	out, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
	return out, kind, err
}

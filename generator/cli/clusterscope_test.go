package cli_test

import (
	"strings"
	"testing"
)

// TestGenerateClusterScope: --template --cluster-scope prints the
// pipeline as a ClusterWorkflowTemplate (no namespace), --from-template
// --cluster-scope what runs it (clusterScope: true); each lints against
// the ClusterWorkflowTemplate's file, and not against the namespaced
// template's.
func TestGenerateClusterScope(t *testing.T) {
	spec := migrationYAML(t)
	base := []string{"generate", "-f", spec, "--namespace-for-workflow", "migration"}
	code, tmpl, stderr := runCLI(t, append(base, "--template", "--cluster-scope", "--secret", "registry-auth", "--image-tag", "v9.9.9")...)
	if code != 0 {
		t.Fatalf("--template --cluster-scope: exit %d: %s", code, stderr)
	}
	for _, w := range []string{"kind: ClusterWorkflowTemplate\n", "  name: acp-to-registry-v2\n", "name: cutover\n", "secretName: registry-auth", "--namespace={{workflow.namespace}}"} {
		if !strings.Contains(tmpl, w) {
			t.Errorf("the ClusterWorkflowTemplate lacks %q", w)
		}
	}
	if strings.Contains(tmpl, "namespace: migration") {
		t.Error("the ClusterWorkflowTemplate names a namespace")
	}
	clusterFile := write(t, "clusterworkflowtemplate.yaml", tmpl)
	_, nsTmpl, _ := runCLI(t, append(base, "--template", "--secret", "registry-auth", "--image-tag", "v9.9.9")...)
	nsFile := write(t, "workflowtemplate.yaml", nsTmpl)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"run", nil, "entrypoint: main"},
		{"cron", []string{"--cron", "0 */6 * * *"}, "kind: CronWorkflow"},
		{"cutover", []string{"--cutover"}, "entrypoint: cutover"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, append(append(base, "--from-template", "--cluster-scope"), tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, w := range []string{tc.want, "workflowTemplateRef:\n", "clusterScope: true\n", "name: acp-to-registry-v2\n", "namespace: migration"} {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			file := write(t, tc.name+".yaml", out)
			if code, lintOut, lintErr := runCLI(t, "lint", clusterFile, file); code != 0 || strings.Count(lintOut, ": ok") != 2 {
				t.Errorf("lint with the ClusterWorkflowTemplate: exit %d\n%s%s", code, lintOut, lintErr)
			}
			if code, _, lintErr := runCLI(t, "lint", nsFile, file); code != 2 || !strings.Contains(lintErr, "clusterworkflowtemplates.argoproj.io \"acp-to-registry-v2\"") {
				t.Errorf("lint with only the namespaced template: exit %d %s: want 2, the ClusterWorkflowTemplate not found", code, lintErr)
			}
		})
	}
}

func TestClusterScopeUsageErrors(t *testing.T) {
	spec := migrationYAML(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"generate", "-f", spec, "--secret", "x", "--image-tag", "v1", "--cluster-scope"}, "--cluster-scope goes with --template (print the ClusterWorkflowTemplate) or --from-template (run it)"},
		{[]string{"generate", "-f", spec, "--secret", "x", "--image-tag", "v1", "--cron", "@daily", "--cluster-scope"}, "--cluster-scope goes with --template"},
		{[]string{"submit", "-f", spec, "--image-tag", "v1", "--template", "--cluster-scope", "--create-secret", "--argo-kubeconfig", "/no/such/kubeconfig"},
			"--create-secret makes a Secret in one namespace, and a ClusterWorkflowTemplate runs in any"},
	} {
		code, out, stderr := runCLI(t, tc.args...)
		if code != 2 || out != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2, nothing printed and a message about %q", tc.args, code, out, stderr, tc.want)
		}
	}
}

// Package argoe2e runs regmigrate's generated Argo objects end to end on a
// real single-node Kubernetes with the real Argo Workflows controller
// (tests/cluster): the migration Workflow submitted with `regmigrate
// submit` from a spec with local image lists and an auth.json
// (--create-secret), a failing shard retried with `argo retry`, the
// workflow archive and the audit bundle in S3, the delta-sync
// CronWorkflow; the pipeline installed as a WorkflowTemplate with its delta
// CronWorkflow in one `kubectl apply -k`, the cutover from it holding the
// migration's mutex while a manual run and a delta wait, the deltas
// suspended by the cutover and resumed by the rollback; step and Workflow
// deadlines, TTL, podGC, resources and the PriorityClass on real pods;
// notifications received by a webhook for a success and a failure, the
// custom metrics scraped from the controller's /metrics against the runs'
// counts, and a cutover rejected at its approval leaving the cluster
// untouched; a Workflow run from the migration's ClusterWorkflowTemplate
// whose failed shard is retried through the Argo Server's HTTP API as the
// UI's node RETRY does; and
// what the step pods use (TestStepsFitTheirDefaultResources measures the
// step binaries on a 500-image shard without the node).
//
// The tests carry the build tag e2e, so `go test ./...` does not run them:
//
//	make e2e     # go test -tags e2e -count=1 -timeout 45m ./tests/argoe2e/...
//	go test -tags e2e -count=1 -v ./tests/argoe2e/ -run 'TestArgo/4-'   # setup, then one scenario (by its t.Run name)
//
// They need root (network namespaces, iptables, mounts) and the Debian
// packages tests/cluster.Preflight names; a machine that cannot run the node
// fails the test saying why. The Kubernetes and Argo binaries are built once
// into a cache folder outside the repository (~20 min cold on 2 cores).
package argoe2e

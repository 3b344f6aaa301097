// Package rollout holds the rules of deployment jobs, shared by the API
// front and the engine: what makes a job definition valid and which
// certificate each of its resources gets (Match), how a Strategy is read and
// numbers the workers into waves, which status a job or worker may move to
// (transitions.go), which resources an uploaded successor certificate is
// deployed to by itself (PlanRenewal), what a job would change before it runs
// (Preview), and how a resource's served certificate is observed (Observe).
//
// It is not the API: it reads no request parameters and chooses no error
// codes (its errors are types the API maps). It is not the engine: it runs
// no deployment, holds no lease and touches no target (Observe and Preview
// only make TLS handshakes). It writes to the store only to record an
// observation; creating and changing jobs is left to its callers.
package rollout

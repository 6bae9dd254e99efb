// Package diag is the logic behind `herald diag`: it inspects a cluster running Herald and
// reports what is wrong, how bad it is and how to fix it, with a health score.
//
// The package has two halves. Gather lists, once, every object the checks read (CRDs through
// discovery, Herald's pods and heartbeat Leases, Nodes, Services, EndpointSlices, Events, the
// metallb.io resources, and the workloads of other load-balancer implementations) into a
// Cluster. Run is a pure function of that Cluster: each check looks at the listed objects and
// returns Findings, so every check is tested on constructed objects without an API server.
//
// Check IDs, severities and the JSON form of a Report are a stable interface documented in
// docs/diag.md: scripts parse `herald diag --json`, so a field is never renamed or removed
// within apiVersion herald.dev/diag/v1.
package diag

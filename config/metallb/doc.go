// Package metallb holds Herald's Go types for the metallb.io API group, field-compatible with
// MetalLB's published CRDs so existing MetalLB objects apply unchanged, and the clientset,
// listers and informers generated from them (see hack/generate-k8s.sh).
package metallb

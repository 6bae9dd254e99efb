package ipam

import "fmt"

// Reason names the rule behind a refusal. Reasons are stable CamelCase constants with low
// cardinality (never an IP or a name), so they can be used as Event reasons, condition reasons
// and metric labels.
type Reason string

// Refusal reasons for Services.
const (
	ReasonInvalidIP           Reason = "InvalidIP"
	ReasonWrongFamily         Reason = "WrongFamily"
	ReasonTooManyIPs          Reason = "TooManyIPs"
	ReasonMissingFamily       Reason = "MissingFamily"
	ReasonNotInPool           Reason = "NotInPool"
	ReasonBuggyIP             Reason = "BuggyIP"
	ReasonDifferentPools      Reason = "DifferentPools"
	ReasonNotInRequestedPool  Reason = "NotInRequestedPool"
	ReasonUnknownPool         Reason = "UnknownPool"
	ReasonPoolUnusable        Reason = "PoolUnusable"
	ReasonNoPools             Reason = "NoPools"
	ReasonNoAutoAssignPool    Reason = "NoAutoAssignPool"
	ReasonNamespaceNotAllowed Reason = "NamespaceNotAllowed"
	ReasonServiceNotAllowed   Reason = "ServiceNotAllowed"
	ReasonNoPoolForFamily     Reason = "NoPoolForFamily"
	ReasonPoolExhausted       Reason = "PoolExhausted"
	ReasonIPInUse             Reason = "IPInUse"
	ReasonSharingKeyMismatch  Reason = "SharingKeyMismatch"
	ReasonTrafficPolicyMix    Reason = "TrafficPolicyMismatch"
	ReasonSelectorMismatch    Reason = "SelectorMismatch"
	ReasonPortConflict        Reason = "PortConflict"
	ReasonInvalidService      Reason = "InvalidService"
)

// Problems reported for pools by SetPools.
const (
	ReasonInvalidPool Reason = "InvalidPool"
	ReasonPoolOverlap Reason = "PoolOverlap"
)

// Error is a refusal: the rule that refused (Reason), a complete human-readable Message, and the
// objects involved, so callers can put it in an Event or a condition unchanged.
type Error struct {
	Reason  Reason
	Message string
	// IP is the address concerned, if any.
	IP string
	// Pool is the pool concerned, if any.
	Pool string
	// OtherService is the Service that holds what was asked for, if any.
	OtherService *ServiceKey
	// OtherPool is the pool that wins an overlap, for ReasonPoolOverlap.
	OtherPool string
}

func (e *Error) Error() string { return e.Message }

func refuse(reason Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

package framework

import (
	"errors"
	"fmt"
	"strings"
)

// Code is the outcome of a plugin call.
type Code int

// The codes a plugin may return. Their order matters: a higher code wins when statuses merge.
const (
	// Success means the plugin accepts the node (or the stage ran without trouble).
	Success Code = iota
	// Unschedulable rejects the node for now; the node may qualify again when the cluster
	// changes (it becomes Ready, an endpoint lands on it).
	Unschedulable
	// UnschedulableAndUnresolvable rejects the node for a reason that nothing about the node
	// can fix, for example it has no interface the advertisement allows.
	UnschedulableAndUnresolvable
	// Skip tells the runtime that the plugin has nothing to say for this unit (PreFilter only):
	// its Filter or Score is not called for the unit.
	Skip
	// Error is an internal failure; it aborts the cycle, and the speaker keeps its last decision.
	Error
)

var codeNames = [...]string{"Success", "Unschedulable", "UnschedulableAndUnresolvable", "Skip", "Error"}

func (c Code) String() string {
	if c < 0 || int(c) >= len(codeNames) {
		return fmt.Sprintf("Code(%d)", int(c))
	}
	return codeNames[c]
}

// Status is what a plugin call returns. A nil *Status means Success.
//
// Reasons are stable, low-cardinality phrases ("node(s) not ready") that the diagnosis counts
// across nodes, so they never contain node names or IPs; Detail carries the specifics for
// `herald explain` ("Ready=False since 12:04:05").
type Status struct {
	code    Code
	reasons []string
	detail  string
	err     error
	plugin  string
}

// NewStatus returns a status with the code and reasons.
func NewStatus(code Code, reasons ...string) *Status {
	return &Status{code: code, reasons: reasons}
}

// AsStatus wraps an error in an Error status; a nil error gives nil (Success).
func AsStatus(err error) *Status {
	if err == nil {
		return nil
	}
	return &Status{code: Error, reasons: []string{err.Error()}, err: err}
}

// WithDetail attaches a per-node explanation and returns the status.
func (s *Status) WithDetail(format string, args ...any) *Status {
	if s == nil {
		return nil
	}
	s.detail = fmt.Sprintf(format, args...)
	return s
}

// WithPlugin records the plugin that produced the status and returns the status.
func (s *Status) WithPlugin(name string) *Status {
	if s == nil {
		return nil
	}
	s.plugin = name
	return s
}

// Code returns the status code; nil is Success.
func (s *Status) Code() Code {
	if s == nil {
		return Success
	}
	return s.code
}

// IsSuccess reports whether the status is Success.
func (s *Status) IsSuccess() bool { return s.Code() == Success }

// IsSkip reports whether the plugin asked to be skipped for this unit.
func (s *Status) IsSkip() bool { return s.Code() == Skip }

// IsRejected reports whether the node was rejected (either unschedulable code).
func (s *Status) IsRejected() bool {
	c := s.Code()
	return c == Unschedulable || c == UnschedulableAndUnresolvable
}

// Reasons returns the stable reasons.
func (s *Status) Reasons() []string {
	if s == nil {
		return nil
	}
	return s.reasons
}

// Detail returns the per-node explanation, if any.
func (s *Status) Detail() string {
	if s == nil {
		return ""
	}
	return s.detail
}

// Plugin returns the name of the plugin that produced the status.
func (s *Status) Plugin() string {
	if s == nil {
		return ""
	}
	return s.plugin
}

// Message joins the reasons (and the detail, when present) for humans.
func (s *Status) Message() string {
	if s == nil {
		return ""
	}
	msg := strings.Join(s.reasons, ", ")
	if s.detail != "" {
		if msg == "" {
			return s.detail
		}
		msg += ": " + s.detail
	}
	return msg
}

// AsError returns nil for Success and Skip, and an error describing the status otherwise.
func (s *Status) AsError() error {
	if s.IsSuccess() || s.IsSkip() {
		return nil
	}
	if s.err != nil {
		if s.plugin != "" {
			return fmt.Errorf("plugin %q: %w", s.plugin, s.err)
		}
		return s.err
	}
	if s.plugin != "" {
		return fmt.Errorf("plugin %q: %s", s.plugin, s.Message())
	}
	return errors.New(s.Message())
}

// Err returns the wrapped error of an Error status, if any.
func (s *Status) Err() error {
	if s == nil {
		return nil
	}
	return s.err
}

package framework

import (
	"errors"
	"sync"
)

// StateKey names a piece of per-cycle data; plugins use their own name or a constant of theirs.
type StateKey string

// StateData is per-cycle data a plugin stores in the CycleState, usually in PreFilter, and
// reads in Filter or Score.
type StateData interface {
	Clone() StateData
}

// ErrNotFound is returned by CycleState.Read for a key nobody wrote.
var ErrNotFound = errors.New("not found")

// CycleState carries per-cycle data between the stages of one cycle. It is safe for
// concurrent use because Filter and Score run in parallel across nodes.
type CycleState struct {
	snapshot *Snapshot
	mu       sync.RWMutex
	storage  map[StateKey]StateData
	// summary computes the cycle's one-line explanation (see Summary).
	summary func() string
}

// NewCycleState returns an empty state for a cycle over the snapshot.
func NewCycleState(snapshot *Snapshot) *CycleState {
	return &CycleState{snapshot: snapshot, storage: map[StateKey]StateData{}}
}

// Snapshot is the snapshot the cycle runs over.
func (c *CycleState) Snapshot() *Snapshot { return c.snapshot }

// Summary is the cycle's one-line explanation (its Diagnosis summary), for the Events and logs
// of a bind plugin. It is computed on each call, from the cycle's record: a cycle whose bind
// records nothing pays nothing for it. Empty when the cycle was not run by RunCycle and no
// SetSummary was made.
func (c *CycleState) Summary() string {
	if c.summary == nil {
		return ""
	}
	return c.summary()
}

// SetSummary sets what Summary computes. RunCycle sets it before Bind; a test that calls a
// bind plugin directly may set its own. Not safe to call while the cycle runs.
func (c *CycleState) SetSummary(summary func() string) { c.summary = summary }

// Read returns the data stored under key, or ErrNotFound.
func (c *CycleState) Read(key StateKey) (StateData, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if v, ok := c.storage[key]; ok {
		return v, nil
	}
	return nil, ErrNotFound
}

// Write stores data under key.
func (c *CycleState) Write(key StateKey, data StateData) {
	c.mu.Lock()
	c.storage[key] = data
	c.mu.Unlock()
}

// Delete removes key.
func (c *CycleState) Delete(key StateKey) {
	c.mu.Lock()
	delete(c.storage, key)
	c.mu.Unlock()
}

package announcers

import (
	"fmt"
	"sort"
)

// Table is the desired set as an announcer holds it: announcements by key and the generation.
// It implements the SetDesired and Apply semantics (replace, delta on a base generation,
// per-announcement rejection) so every announcer treats them alike. It is not safe for
// concurrent use; announcers guard it with their own lock.
type Table struct {
	generation uint64
	entries    map[string]Announcement
	validate   func(Announcement) error
}

// NewTable returns an empty table at generation 0. validate decides whether this announcer
// can announce an announcement; a rejected one is left out and reported in the result.
func NewTable(validate func(Announcement) error) *Table {
	if validate == nil {
		validate = func(Announcement) error { return nil }
	}
	return &Table{entries: map[string]Announcement{}, validate: validate}
}

// Generation is the generation of the last accepted SetDesired or Apply.
func (t *Table) Generation() uint64 { return t.generation }

// Len is the number of announcements.
func (t *Table) Len() int { return len(t.entries) }

// SetDesired replaces the whole set.
func (t *Table) SetDesired(set DesiredSet) ApplyResult {
	t.entries = make(map[string]Announcement, len(set.Announcements))
	t.generation = set.Generation
	return ApplyResult{Generation: t.generation, Rejected: t.upsert("announcements", set.Announcements)}
}

// Apply applies a delta; it fails, changing nothing, when d.BaseGeneration is not current.
func (t *Table) Apply(d Delta) (ApplyResult, error) {
	if d.BaseGeneration != t.generation {
		return ApplyResult{Generation: t.generation}, fmt.Errorf("delta from generation %d, announcer at %d: %w", d.BaseGeneration, t.generation, ErrOutOfSync)
	}
	for _, key := range d.Removes {
		delete(t.entries, key)
	}
	t.generation = d.Generation
	return ApplyResult{Generation: t.generation, Rejected: t.upsert("upserts", d.Upserts)}, nil
}

// Clear removes every announcement and returns how many there were.
func (t *Table) Clear() int {
	n := len(t.entries)
	t.entries = map[string]Announcement{}
	return n
}

// Announcements returns the set sorted by key.
func (t *Table) Announcements() []Announcement {
	keys := make([]string, 0, len(t.entries))
	for k := range t.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Announcement, len(keys))
	for i, k := range keys {
		out[i] = t.entries[k]
	}
	return out
}

func (t *Table) upsert(field string, as []Announcement) []Rejection {
	var rejected []Rejection
	for i, a := range as {
		if err := t.validate(a); err != nil {
			// A rejected upsert also drops the old value: keeping it would announce
			// something the host no longer wants.
			delete(t.entries, a.Key())
			rejected = append(rejected, Rejection{ID: a.Key(), Reason: fmt.Sprintf("%s[%d]: %v", field, i, err)})
			continue
		}
		t.entries[a.Key()] = a
	}
	return rejected
}

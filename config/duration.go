package config

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("15s"). Unlike
// metav1.Duration it never fails to decode: a malformed value is kept and reported by
// validation with its field path, together with every other error.
type Duration struct {
	time.Duration
	invalid string
}

// D returns a Duration of d.
func D(d time.Duration) Duration { return Duration{Duration: d} }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		d.Duration, d.invalid = 0, string(b)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.Duration, d.invalid = 0, s
		return nil
	}
	d.Duration, d.invalid = v, ""
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	if d.invalid != "" {
		return json.Marshal(d.invalid)
	}
	return json.Marshal(d.Duration.String())
}

// parseError returns why the written value is not a duration, or nil.
func (d Duration) parseError() error {
	if d.invalid == "" {
		return nil
	}
	if _, err := time.ParseDuration(d.invalid); err != nil {
		return err
	}
	return fmt.Errorf("not a duration string")
}

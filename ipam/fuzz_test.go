package ipam

import (
	"testing"
)

// maxMessage bounds any refusal message: user input is quoted shortened.
const maxMessage = 1024

// FuzzParseRange: any string parses or is refused with a short message; a parsed range is one
// family, ordered, free of special addresses, and reads back as itself.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{
		"192.0.2.0/24", "192.0.2.10-192.0.2.20", " 2001:db8::1 - 2001:db8::ff ", "2001:db8::/32",
		"192.0.2.7/24", "0.0.0.0/0", "::ffff:192.0.2.0/120", "192.0.2.1-2001:db8::1", "-", "/",
		"192.0.2.9-192.0.2.1", "fe80::1%eth0-fe80::2", "198.18.0.0/15",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRange(s)
		if err != nil {
			if len(err.Error()) > maxMessage {
				t.Fatalf("message of %d bytes for input of %d bytes", len(err.Error()), len(s))
			}
			return
		}
		if !r.first.IsValid() || r.first.Is4() != r.last.Is4() || r.last.Less(r.first) {
			t.Fatalf("%q parsed to %v", s, r)
		}
		if r.first.Zone() != "" || r.first.Is4In6() || r.last.Is4In6() {
			t.Fatalf("%q parsed to %v: zone or IPv4-mapped", s, r)
		}
		if err := checkSpecial(r); err != nil {
			t.Fatalf("%q parsed although %v", s, err)
		}
		back, err := parseRange(rangeSpelling(r))
		if err != nil || back != r {
			t.Fatalf("%q parsed to %v, which reads back as %v, %v", s, r, back, err)
		}
		if rangeSize(r, false) == 0 {
			t.Fatalf("%q parsed to an empty range", s)
		}
	})
}

// rangeSpelling writes r as an "a-b" range that parseRange accepts.
func rangeSpelling(r addrRange) string { return r.first.String() + "-" + r.last.String() }

package ipam

import (
	"fmt"
	"net/netip"
	"strconv"
	"unicode/utf8"
)

// specialBlocks are the addresses no pool may contain, with why: a load-balancer address
// there would never be reachable as one (or would break the node that announces it).
var specialBlocks = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/32"), "the unspecified address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback addresses"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local addresses"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast addresses"},
	{netip.MustParsePrefix("255.255.255.255/32"), "the broadcast address"},
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("::1/128"), "the loopback address"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped IPv6 addresses"},
	{netip.MustParsePrefix("fe80::/10"), "link-local addresses"},
	{netip.MustParsePrefix("ff00::/8"), "multicast addresses"},
}

// checkSpecial returns why r may not be used for load-balancer addresses, or nil.
func checkSpecial(r addrRange) error {
	for _, b := range specialBlocks {
		block := addrRange{first: b.prefix.Addr(), last: lastAddr(b.prefix)}
		if r.overlaps(block) {
			return fmt.Errorf("%s contains %s (%s), which cannot be load-balancer addresses", r, b.what, b.prefix)
		}
	}
	return nil
}

// maxQuoted is how much of a user's string a message quotes: enough to recognise it, never
// a whole 256 KiB annotation in an Event or a condition.
const maxQuoted = 64

// quote returns s quoted, shortened to maxQuoted bytes (on a rune boundary) with its length
// when longer.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("… (%d bytes)", len(s))
}

// short returns s shortened like quote, unquoted.
func short(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d bytes)", len(s))
}

package bgp

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseCommunity parses a standard community "65535:65282" (or a decimal uint32).
func ParseCommunity(s string) (uint32, error) {
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("community %q: want AA:NN", s)
		}
		return uint32(v), nil
	}
	a, err1 := strconv.ParseUint(hi, 10, 16)
	b, err2 := strconv.ParseUint(lo, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("community %q: want AA:NN with two 16-bit numbers", s)
	}
	return uint32(a)<<16 | uint32(b), nil
}

// ParseLargeCommunity parses "1:2:3" (optionally prefixed "large:").
func ParseLargeCommunity(s string) ([3]uint32, error) {
	parts := strings.Split(strings.TrimPrefix(s, "large:"), ":")
	if len(parts) != 3 {
		return [3]uint32{}, fmt.Errorf("large community %q: want ASN:N1:N2", s)
	}
	var out [3]uint32
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return [3]uint32{}, fmt.Errorf("large community %q: part %d is not a 32-bit number", s, i+1)
		}
		out[i] = uint32(v)
	}
	return out, nil
}

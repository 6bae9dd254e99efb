package spread

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/herald-lb/herald/framework"
)

func TestScoreRangeAndDeterminism(t *testing.T) {
	p := &Plugin{}
	counts := make([]int, framework.MaxNodeScore+1)
	ip := netip.MustParseAddr("192.0.2.0")
	const nodes, ips = 100, 256
	for i := 0; i < ips; i++ {
		unit := &framework.Unit{IP: ip}
		for n := 0; n < nodes; n++ {
			node := &framework.NodeInfo{Name: fmt.Sprintf("node-%d", n)}
			s, st := p.Score(context.Background(), nil, unit, node)
			if !st.IsSuccess() || s < framework.MinNodeScore || s > framework.MaxNodeScore {
				t.Fatalf("score %d (%v) out of range", s, st.Code())
			}
			if again, _ := p.Score(context.Background(), nil, &framework.Unit{IP: ip}, &framework.NodeInfo{Name: node.Name}); again != s {
				t.Fatalf("score of %s for %s changed between calls: %d then %d", node.Name, ip, s, again)
			}
			counts[s]++
		}
		ip = ip.Next()
	}
	// 25,600 samples over 101 values: about 253 each; a bad hash (names differing in their
	// last character) piles them up in a few values.
	for v, c := range counts {
		if c < 150 || c > 360 {
			t.Errorf("value %d drawn %d times of %d, want about %d", v, c, nodes*ips, nodes*ips/101)
		}
	}
}

func TestScaleBounds(t *testing.T) {
	for _, tt := range []struct {
		h    uint64
		want int64
	}{{0, 0}, {^uint64(0), 100}, {1 << 63, 50}} {
		if got := Scale(tt.h); got != tt.want {
			t.Errorf("Scale(%#x) = %d, want %d", tt.h, got, tt.want)
		}
	}
}

func TestHashDependsOnBothNames(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	if Hash("n1", a) == Hash("n1", b) || Hash("n1", a) == Hash("n2", a) {
		t.Fatal("hash ignores the node or the IP")
	}
}

// TestHashIsStable pins Spread's and the tie-break's values: speakers of two versions run side
// by side during an upgrade and must rank nodes alike, so neither hash may ever change.
func TestHashIsStable(t *testing.T) {
	for _, c := range []struct {
		node, ip       string
		spread, tieBrk uint64
	}{
		{"node-1", "192.0.2.10", 0xec85f4a8e3ca4b6f, 0xc763c2fb9786ea24},
		{"node-2", "192.0.2.10", 0x834b0806d874d758, 0xd3aa804878f55ca2},
		{"worker-a", "2001:db8::1", 0x80af22c4830794f7, 0xbc082b3e27b780d6},
	} {
		if got := Hash(c.node, netip.MustParseAddr(c.ip)); got != c.spread {
			t.Errorf("Hash(%s, %s) = %#x, want %#x", c.node, c.ip, got, c.spread)
		}
		if got := framework.TieBreakHash(c.node, c.ip); got != c.tieBrk {
			t.Errorf("TieBreakHash(%s, %s) = %#x, want %#x", c.node, c.ip, got, c.tieBrk)
		}
	}
}

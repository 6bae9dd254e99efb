package speaker

import "testing"

func TestLocalInterfacesSkipsLoopbackAndReadsPrefixes(t *testing.T) {
	itfs, err := LocalInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, itf := range itfs {
		if itf.Name == "lo" {
			t.Fatalf("loopback published: %+v", itf)
		}
		for _, p := range itf.Prefixes {
			if !p.IsValid() || p.Addr().Is4In6() {
				t.Fatalf("interface %s: bad prefix %v", itf.Name, p)
			}
		}
	}
}

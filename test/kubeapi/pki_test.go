package kubeapi

import (
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"
)

func TestServingCertificateCoversLoopbackAndLabGateways(t *testing.T) {
	keys, err := newPKI()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(keys.caPEM) {
		t.Fatal("CA PEM does not parse")
	}
	block, _ := pem.Decode(keys.servingCertPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		valid bool
	}{
		{"127.0.0.1", true},
		{"::1", true},
		{"localhost", true},
		{"203.0.113.1", true},
		{"203.0.113.254", true},
		{"198.51.100.1", false},
		{"192.0.2.1", false},
		{"example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cert.Verify(x509.VerifyOptions{DNSName: tt.name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			if (err == nil) != tt.valid {
				t.Fatalf("verify for %s: err=%v, want valid=%v", tt.name, err, tt.valid)
			}
		})
	}
}

func TestNamespacePrefixIsADNSLabelPrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"TestIntegrationFoo", "integrationfoo-"},
		{"TestIntegrationFoo/sub_case#01", "integrationfoo-sub-case-01-"},
		{"Test", "t-"},
		{"TestIntegrationAVeryLongNameThatGoesOnAndOnAndOnForeverAndEverAndEver", "integrationaverylongnamethatgoesonandonandonforeve-"},
	}
	for _, tt := range tests {
		if got := namespacePrefix(tt.in); got != tt.want {
			t.Errorf("namespacePrefix(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The token file quotes a group list, as kube-apiserver's CSV reader needs.
func TestTokenFile(t *testing.T) {
	got := tokenFile("adm", []string{"t1,system:node:a,uid-a,system:nodes", "t2,system:kube-proxy,uid-p", "t3,u,uid-u,g1,g2"})
	want := "adm,admin,admin-uid,system:masters\nt1,system:node:a,uid-a,system:nodes\nt2,system:kube-proxy,uid-p\nt3,u,uid-u,\"g1,g2\"\n"
	if got != want {
		t.Fatalf("tokenFile =\n%s\nwant\n%s", got, want)
	}
}

func TestMergeFlags(t *testing.T) {
	got := mergeFlags([]string{"--a=1", "--authorization-mode=RBAC", "--b"}, []string{"--authorization-mode=Node,RBAC", "--c=3"})
	want := []string{"--a=1", "--b", "--authorization-mode=Node,RBAC", "--c=3"}
	if !slices.Equal(got, want) {
		t.Fatalf("mergeFlags = %v, want %v", got, want)
	}
}

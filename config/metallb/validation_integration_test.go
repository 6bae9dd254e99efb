//go:build integration

package metallb_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const validationNamespace = "validation"

// object builds a metallb.io object in the validation namespace.
func object(apiVersion, kind, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "metallb.io/" + apiVersion,
		"kind":       kind,
		"metadata":   map[string]any{"name": name, "namespace": validationNamespace},
		"spec":       spec,
	}}
}

func pool(name string, addresses ...any) *unstructured.Unstructured {
	return object("v1beta1", "IPAddressPool", name, map[string]any{"addresses": addresses})
}

// peer builds a valid eBGP peer and applies changes to its spec.
func peer(apiVersion, name string, changes map[string]any) *unstructured.Unstructured {
	spec := map[string]any{"myASN": int64(64500), "peerASN": int64(64501), "peerAddress": "192.0.2.1"}
	for k, v := range changes {
		if v == nil {
			delete(spec, k)
			continue
		}
		spec[k] = v
	}
	return object(apiVersion, "BGPPeer", name, spec)
}

func bgpAdv(name string, spec map[string]any) *unstructured.Unstructured {
	return object("v1beta1", "BGPAdvertisement", name, spec)
}

func bfd(name string, spec map[string]any) *unstructured.Unstructured {
	return object("v1beta1", "BFDProfile", name, spec)
}

// TestIntegrationRejectsMalformedObjects checks that the API server itself (schema and CEL
// rules, no webhook) refuses malformed objects with a message naming the field and the reason.
func TestIntegrationRejectsMalformedObjects(t *testing.T) {
	c := setup(t, validationNamespace)
	tests := []struct {
		name   string
		obj    *unstructured.Unstructured
		badReq bool   // strict decoding errors are 400 BadRequest, not 422 Invalid
		field  string // must appear in the error
		reason string // must appear in the error
	}{
		{"bad CIDR", pool("bad-cidr", "192.0.2.0/33"), false,
			"spec.addresses[0]", "must be a CIDR"},
		{"not an address", pool("not-address", "192.0.2.0/24", "poolA"), false,
			"spec.addresses[1]", "must be a CIDR"},
		{"inverted range", pool("inverted", "192.0.2.20-192.0.2.10"), false,
			"spec.addresses[0]", "start must not be greater than its end"},
		{"mixed-family range", pool("mixed", "192.0.2.1-2001:db8::1"), false,
			"spec.addresses[0]", "same address family"},
		{"range with a bad end", pool("bad-end", "192.0.2.1-192.0.2.300"), false,
			"spec.addresses[0]", "two IP addresses separated by '-'"},
		// Special addresses: the CIDR rule sees every address a prefix contains; the range
		// rule sees the ends (the controller also refuses a range spanning them).
		{"loopback CIDR", pool("loopback", "192.0.2.0/24", "127.0.0.0/8"), false,
			"spec.addresses[1]", "must not contain unspecified, loopback"},
		{"CIDR around loopback", pool("around-loopback", "126.0.0.0/7"), false,
			"spec.addresses[0]", "must not contain unspecified, loopback"},
		{"everything", pool("everything", "0.0.0.0/0"), false,
			"spec.addresses[0]", "must not contain unspecified, loopback"},
		{"broadcast", pool("broadcast", "255.255.255.255/32"), false,
			"spec.addresses[0]", "must not contain unspecified, loopback"},
		{"IPv6 link-local", pool("v6-link-local", "fe80::/64"), false,
			"spec.addresses[0]", "must not contain unspecified, loopback"},
		{"IPv6 multicast", pool("v6-multicast", "ff02::/16"), false,
			"spec.addresses[0]", "must not contain unspecified, loopback"},
		{"multicast range", pool("multicast-range", "224.0.0.1-224.0.0.5"), false,
			"spec.addresses[0]", "must not start or end at an unspecified, loopback"},
		{"link-local range", pool("link-local-range", "169.254.0.1 - 169.254.0.9"), false,
			"spec.addresses[0]", "must not start or end at an unspecified, loopback"},
		{"IPv4-mapped IPv6 CIDR", pool("mapped", "::ffff:192.0.2.0/120"), false,
			"spec.addresses[0]", "must be a CIDR"},
		{"negative ASN", peer("v1beta2", "neg-asn", map[string]any{"myASN": int64(-1)}), false,
			"spec.myASN", "greater than or equal to 1"},
		{"ASN above 2^32-1", peer("v1beta2", "big-asn", map[string]any{"peerASN": int64(4294967296)}), false,
			"spec.peerASN", "less than or equal to 4294967295"},
		{"peerASN and dynamicASN", peer("v1beta2", "both-asn", map[string]any{"dynamicASN": "external"}), false,
			"spec.peerASN", "exactly one of peerASN or dynamicASN"},
		{"neither peerASN nor dynamicASN", peer("v1beta2", "no-asn", map[string]any{"peerASN": nil}), false,
			"spec.peerASN", "exactly one of peerASN or dynamicASN"},
		{"bad dynamicASN", peer("v1beta2", "dyn", map[string]any{"peerASN": nil, "dynamicASN": "sometimes"}), false,
			"spec.dynamicASN", "Unsupported value"},
		{"keepalive equal to hold time", peer("v1beta2", "keepalive", map[string]any{"holdTime": "90s", "keepaliveTime": "90s"}), false,
			"spec.keepaliveTime", "keepaliveTime must be lower than holdTime"},
		{"hold time 1s", peer("v1beta2", "hold1", map[string]any{"holdTime": "1s"}), false,
			"spec.holdTime", "must be 0s or at least 3s"},
		{"bad peerAddress", peer("v1beta2", "bad-addr", map[string]any{"peerAddress": "10.0.0.256"}), false,
			"spec.peerAddress", "must be a valid IP address"},
		{"bad sourceAddress", peer("v1beta2", "bad-src", map[string]any{"sourceAddress": "router"}), false,
			"spec.sourceAddress", "must be a valid IP address"},
		{"IPv6 routerID", peer("v1beta2", "bad-rid", map[string]any{"routerID": "2001:db8::1"}), false,
			"spec.routerID", "must be an IPv4 address"},
		{"peerPort 0 on v1beta1", peer("v1beta1", "port0", map[string]any{"peerPort": int64(0)}), false,
			"spec.peerPort", "greater than or equal to 1"},
		{"password and passwordSecret", peer("v1beta2", "pw", map[string]any{"password": "s3cret", "passwordSecret": map[string]any{"name": "bgp-auth"}}), false,
			"spec.password", "mutually exclusive"},
		{"ebgpMultiHop for iBGP", peer("v1beta2", "ibgp-mh", map[string]any{"peerASN": int64(64500), "ebgpMultiHop": true}), false,
			"spec.ebgpMultiHop", "only valid for eBGP"},
		{"unknown field", peer("v1beta1", "unknown", map[string]any{"holdtime": "90s"}), true,
			`unknown field "spec.holdtime"`, "strict decoding error"},
		{"aggregationLength 33", bgpAdv("agg33", map[string]any{"aggregationLength": int64(33)}), false,
			"spec.aggregationLength", "less than or equal to 32"},
		{"aggregationLengthV6 129", bgpAdv("agg129", map[string]any{"aggregationLengthV6": int64(129)}), false,
			"spec.aggregationLengthV6", "less than or equal to 128"},
		{"bad community", bgpAdv("community", map[string]any{"communities": []any{"65535:65282", "65536:1"}}), false,
			"spec.communities[1]", "must be a standard community"},
		{"bad large community", bgpAdv("large", map[string]any{"communities": []any{"large:1:2"}}), false,
			"spec.communities[0]", "must be a standard community"},
		{"detectMultiplier 1", bfd("mult1", map[string]any{"detectMultiplier": int64(1)}), false,
			"spec.detectMultiplier", "greater than or equal to 2"},
		{"receiveInterval 5ms", bfd("rx5", map[string]any{"receiveInterval": int64(5)}), false,
			"spec.receiveInterval", "greater than or equal to 10"},
		{"minimumTtl 255", bfd("ttl255", map[string]any{"minimumTtl": int64(255)}), false,
			"spec.minimumTtl", "less than or equal to 254"},
		{"interface name with a slash", object("v1beta1", "L2Advertisement", "ifname", map[string]any{"interfaces": []any{"eth0/1"}}), false,
			"spec.interfaces[0]", "should match"},
		{"community alias value", object("v1beta1", "Community", "alias", map[string]any{"communities": []any{map[string]any{"name": "no-export", "value": "no-export"}}}), false,
			"spec.communities[0].value", "must be a standard community"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			err := c.create(ctx, tt.obj)
			if err == nil {
				t.Fatalf("%s %s was accepted, want it rejected", tt.obj.GetKind(), tt.obj.GetName())
			}
			if tt.badReq && !apierrors.IsBadRequest(err) || !tt.badReq && !apierrors.IsInvalid(err) {
				t.Fatalf("error is %v (reason %s), want Invalid/BadRequest", err, apierrors.ReasonForError(err))
			}
			msg := err.Error()
			for _, want := range []string{tt.field, tt.reason} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
		})
	}
}

// TestIntegrationAcceptsEdgeCases guards against rules that reject valid MetalLB objects.
func TestIntegrationAcceptsEdgeCases(t *testing.T) {
	c := setup(t, validationNamespace)
	tests := []*unstructured.Unstructured{
		pool("ipv6", "2001:db8::/64", "2001:db8:1::10-2001:db8:1::20", "198.51.100.7/32"),
		pool("single-address-range", "198.51.100.5-198.51.100.5", "198.51.100.10 - 198.51.100.20"),
		pool("host-bits-cidr", "192.0.2.1/24"),
		peer("v1beta2", "dynamic-external-multihop", map[string]any{"peerASN": nil, "dynamicASN": "external", "ebgpMultiHop": true}),
		peer("v1beta2", "timers", map[string]any{"holdTime": "3s", "keepaliveTime": "1s", "connectTime": "10s", "routerID": "192.0.2.9", "sourceAddress": "2001:db8::2", "peerAddress": "2001:db8::1"}),
		peer("v1beta2", "no-hold", map[string]any{"holdTime": "0s", "keepaliveTime": "0s"}),
		peer("v1beta1", "secret", map[string]any{"passwordSecret": map[string]any{"name": "bgp-auth", "namespace": "metallb-system"}}),
		peer("v1beta2", "unnumbered", map[string]any{"peerAddress": nil, "interface": "eth1"}),
		bgpAdv("communities", map[string]any{"communities": []any{"65535:65282", "large:4294967295:1:2", "no-advertise"}, "aggregationLength": int64(24), "aggregationLengthV6": int64(0), "localPref": int64(100), "peers": []any{"router-peer"}}),
		bfd("bounds", map[string]any{"receiveInterval": int64(10), "transmitInterval": int64(60000), "detectMultiplier": int64(255), "echoInterval": int64(10), "minimumTtl": int64(1), "echoMode": true, "passiveMode": false}),
		object("v1beta1", "Community", "aliases", map[string]any{"communities": []any{map[string]any{"name": "no-advertise", "value": "65535:65282"}, map[string]any{"name": "big", "value": "large:1:2:3"}}}),
	}
	for _, obj := range tests {
		t.Run(fmt.Sprintf("%s/%s", obj.GetKind(), obj.GetName()), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if err := c.create(ctx, obj); err != nil {
				t.Fatalf("valid %s %s rejected: %v", obj.GetKind(), obj.GetName(), err)
			}
		})
	}
}

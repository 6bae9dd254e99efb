package announcers

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
)

// recorder is an Announcer that keeps what it was sent and answers with canned values, so
// the test can compare both directions of every call across a real go-plugin gRPC connection.
type recorder struct {
	mu     sync.Mutex
	config Config
	table  *Table
	status Status
	hub    EventHub
}

func newRecorder() *recorder {
	return &recorder{table: NewTable(func(a Announcement) error {
		if a.Prefix.Addr().Is6() {
			return errors.New("no IPv6 here")
		}
		return nil
	})}
}

func (r *recorder) Info(context.Context) (Info, error) {
	return Info{ProtocolVersion: ProtocolVersion, Kind: KindBGP, Version: "v9", Capabilities: []Capability{CapabilityIPv4, CapabilityBGP, CapabilityBFD}}, nil
}
func (r *recorder) Configure(_ context.Context, c Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.L2 != nil && c.L2.GratuitousCount > 100 {
		return fmt.Errorf("l2.gratuitousCount %d: %w", c.L2.GratuitousCount, ErrInvalid)
	}
	r.config = c
	return nil
}
func (r *recorder) SetDesired(_ context.Context, s DesiredSet) (ApplyResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.table.SetDesired(s), nil
}
func (r *recorder) Apply(_ context.Context, d Delta) (ApplyResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.table.Apply(d)
}
func (r *recorder) Status(context.Context) (Status, error) { return r.status, nil }
func (r *recorder) Events(ctx context.Context) (<-chan Event, error) {
	return r.hub.Subscribe(ctx), nil
}
func (r *recorder) Drain(context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.table.Clear(), nil
}

func dial(t *testing.T, impl Announcer) Announcer {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: &GRPCPlugin{Impl: impl}})
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	return raw.(Announcer)
}

func TestGRPCRoundTrip(t *testing.T) {
	ctx := t.Context()
	impl := newRecorder()
	a := dial(t, impl)

	info, err := a.Info(ctx)
	if err != nil || info.Kind != KindBGP || info.Version != "v9" || !info.Has(CapabilityBFD) || info.Has(CapabilityL2) || info.ProtocolVersion != ProtocolVersion {
		t.Fatalf("Info = %+v, %v", info, err)
	}

	cfg := Config{
		L2: &L2Config{RefreshInterval: 3 * time.Second, GratuitousCount: 4, GratuitousInterval: 50 * time.Millisecond, ConflictReportInterval: time.Minute},
		BGP: &BGPConfig{Peers: []BGPPeer{{
			Name: "tor", MyASN: 64500, PeerASN: 64501, DynamicASN: "", Address: "192.0.2.1", Port: 1179,
			SourceAddress: "192.0.2.10", RouterID: "192.0.2.10", HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second,
			ConnectTime: 5 * time.Second, EBGPMultiHop: true, Password: "s3cret", VRF: "red", Interface: "",
			EnableGracefulRestart: true, DisableMP: true, DualStackAddressFamily: true,
			BFD: &BFDProfile{Name: "fast", ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 200 * time.Millisecond,
				DetectMultiplier: 3, EchoInterval: 50 * time.Millisecond, EchoMode: true, PassiveMode: true, MinimumTTL: 254},
		}, {Name: "dyn", MyASN: 64500, DynamicASN: "external", Interface: "eth1"}}},
	}
	if err := a.Configure(ctx, cfg); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if !reflect.DeepEqual(impl.config, cfg) {
		t.Errorf("Configure sent\n%+v\nreceived\n%+v", cfg, impl.config)
	}
	if got := impl.config.BGP.Peers[0].Password.Reveal(); got != "s3cret" {
		t.Errorf("password crossed as %q", got)
	}
	bad := Config{L2: &L2Config{GratuitousCount: 1000}}
	if err := a.Configure(ctx, bad); err == nil {
		t.Errorf("Configure(%+v) succeeded, want an error", bad)
	}

	lp := uint32(150)
	set := DesiredSet{Generation: 7, Announcements: []Announcement{
		{Prefix: netip.MustParsePrefix("192.0.2.100/32"), Interfaces: []string{"eth0", "eth1"}},
		{ID: "svc-a/adv1", Prefix: netip.MustParsePrefix("198.51.100.7/32"), BGP: &BGPRoute{
			AggregationLength: 24, LocalPref: &lp, Communities: []string{"65535:65282"},
			LargeCommunities: []string{"1:2:3"}, ExtendedCommunities: []string{"route-target:65000:100"}, Peers: []string{"tor"}}},
		{ID: "v6", Prefix: netip.MustParsePrefix("2001:db8::7/128")},
	}}
	res, err := a.SetDesired(ctx, set)
	if err != nil {
		t.Fatalf("SetDesired: %v", err)
	}
	if res.Generation != 7 || len(res.Rejected) != 1 || res.Rejected[0].ID != "v6" {
		t.Errorf("SetDesired result = %+v, want generation 7 and v6 rejected", res)
	}
	if got, want := impl.table.Announcements(), set.Announcements[:2]; !reflect.DeepEqual(got, want) {
		t.Errorf("announcer holds\n%+v\nwant\n%+v", got, want)
	}

	if _, err := a.Apply(ctx, Delta{BaseGeneration: 6, Generation: 8}); !errors.Is(err, ErrOutOfSync) {
		t.Errorf("Apply on a stale base: err = %v, want ErrOutOfSync", err)
	}
	res, err = a.Apply(ctx, Delta{BaseGeneration: 7, Generation: 8, Removes: []string{"192.0.2.100/32"},
		Upserts: []Announcement{{Prefix: netip.MustParsePrefix("203.0.113.9/32")}}})
	if err != nil || res.Generation != 8 {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	var keys []string
	for _, an := range impl.table.Announcements() {
		keys = append(keys, an.Key())
	}
	if want := []string{"203.0.113.9/32", "svc-a/adv1"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("after Apply keys = %v, want %v", keys, want)
	}

	impl.status = Status{Generation: 8, Health: HealthDegraded, Message: "peer down",
		Announced: []AnnouncedPrefix{{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Peers: []string{"tor"}}},
		Peers:     []PeerStatus{{Name: "tor", Address: "192.0.2.1", State: SessionEstablished, BFDUp: true, Message: "up 3s"}}}
	st, err := a.Status(ctx)
	if err != nil || !reflect.DeepEqual(st, impl.status) {
		t.Errorf("Status = %+v, %v; want %+v", st, err, impl.status)
	}

	evCtx, cancel := context.WithCancel(ctx)
	events, err := a.Events(evCtx)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	want := Event{Time: time.Unix(0, 12345), Conflict: &Conflict{Address: netip.MustParseAddr("192.0.2.100"), Interface: "eth0", ForeignMAC: "02:00:00:00:00:99", Detail: "reply"}}
	deadline := time.After(5 * time.Second)
	for got := false; !got; {
		impl.hub.Publish(want) // until the stream is subscribed on the far side
		select {
		case e := <-events:
			if !reflect.DeepEqual(e, want) {
				t.Fatalf("event = %+v, want %+v", e, want)
			}
			got = true
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("no event within 5s")
		}
	}
	cancel()
	for range events { // the channel closes once the stream ends
	}

	n, err := a.Drain(ctx)
	if err != nil || n != 2 {
		t.Errorf("Drain = %d, %v; want 2", n, err)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	p := BGPPeer{Name: "tor", Password: "hunter2"}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		if s := fmt.Sprintf(format, p); strings.Contains(s, "hunter2") {
			t.Errorf("Sprintf(%q) leaks the password: %s", format, s)
		}
	}
}

// stuck is an Announcer whose Status never answers before its context ends.
type stuck struct{ *recorder }

func (stuck) Status(ctx context.Context) (Status, error) {
	<-ctx.Done()
	return Status{}, ctx.Err()
}

// A call without a deadline of its own gets the client's: an announcer that stops answering
// never holds its caller forever.
func TestGRPCClientBoundsCallsWithoutDeadline(t *testing.T) {
	ann := dial(t, stuck{newRecorder()})
	ann.(*grpcClient).timeout = 200 * time.Millisecond
	errc := make(chan error, 1)
	go func() {
		_, err := ann.Status(context.Background())
		errc <- err
	}()
	select {
	case err := <-errc:
		if !strings.Contains(fmt.Sprint(err), "DeadlineExceeded") {
			t.Fatalf("Status = %v, want DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Status without a deadline has not returned after 10s")
	}
	// A caller's own deadline is kept.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := ann.Status(ctx); !strings.Contains(fmt.Sprint(err), "DeadlineExceeded") {
		t.Fatalf("Status with the caller's deadline = %v", err)
	}
}

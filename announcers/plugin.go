package announcers

import (
	"context"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/herald-lb/herald/announcers/announcerv1"
)

// PluginName is the key of the announcer in the go-plugin plugin map.
const PluginName = "announcer"

// Handshake is shared by the host and every announcer. The magic cookie only keeps an announcer
// from being run by hand by mistake; it is not a security measure (the checksum is).
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "HERALD_ANNOUNCER_PLUGIN",
	MagicCookieValue: "8d1c4a7e-herald-announcer",
}

// PluginMap is the host's plugin map: the host dispenses PluginName to get an Announcer.
var PluginMap = map[string]plugin.Plugin{PluginName: &GRPCPlugin{}}

// GRPCPlugin carries an Announcer over go-plugin's gRPC transport. Impl is set on the
// announcer's side only.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Announcer
}

// GRPCServer registers the announcer service (announcer side).
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	announcerv1.RegisterAnnouncerServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns an Announcer that calls the announcer over conn (host side).
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return NewGRPCClient(conn), nil
}

// Serve runs impl as an announcer process; it returns when the host ends the plugin.
// Logs written to logger reach the host's log. Nothing may write to stdout before this.
func Serve(impl Announcer, logger hclog.Logger) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         map[string]plugin.Plugin{PluginName: &GRPCPlugin{Impl: impl}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          logger,
	})
}

// NewPluginLogger returns the logger an announcer process should use: JSON on stderr, which
// go-plugin parses and forwards into the host's structured log with levels kept.
func NewPluginLogger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.Trace,
		Output:     os.Stderr,
		JSONFormat: true,
	})
}

package announcers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/herald-lb/herald/announcers/announcerv1"
)

// eventBuffer bounds the events a slow host can leave queued on the client side.
const eventBuffer = 256

// DefaultCallTimeout bounds a call whose context has no deadline of its own: a caller that
// forgot one must not wait forever on an announcer that stopped answering.
const DefaultCallTimeout = 30 * time.Second

// grpcClient is the host's Announcer: every call goes to the announcer process.
type grpcClient struct {
	rpc pb.AnnouncerClient
	// timeout bounds calls whose context has no deadline (not the event stream).
	timeout time.Duration
}

// NewGRPCClient returns an Announcer that calls the announcer service over conn. Every call
// but Events carries the caller's deadline, or DefaultCallTimeout when it has none.
func NewGRPCClient(conn grpc.ClientConnInterface) Announcer {
	return &grpcClient{rpc: pb.NewAnnouncerClient(conn), timeout: DefaultCallTimeout}
}

// bound gives ctx the client's timeout when it has no deadline.
func (c *grpcClient) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}

func (c *grpcClient) Info(ctx context.Context) (Info, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.rpc.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		return Info{}, fromStatus("info", err)
	}
	return infoFromProto(resp), nil
}

func (c *grpcClient) Configure(ctx context.Context, cfg Config) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	_, err := c.rpc.Configure(ctx, configToProto(cfg))
	return fromStatus("configure", err)
}

func (c *grpcClient) SetDesired(ctx context.Context, set DesiredSet) (ApplyResult, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.rpc.SetDesired(ctx, &pb.SetDesiredRequest{Generation: set.Generation, Announcements: announcementsToProto(set.Announcements)})
	if err != nil {
		return ApplyResult{}, fromStatus("set desired", err)
	}
	return resultFromProto(resp), nil
}

func (c *grpcClient) Apply(ctx context.Context, d Delta) (ApplyResult, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.rpc.Apply(ctx, &pb.ApplyRequest{
		BaseGeneration: d.BaseGeneration, Generation: d.Generation,
		Upserts: announcementsToProto(d.Upserts), Removes: d.Removes,
	})
	if err != nil {
		return ApplyResult{}, fromStatus("apply", err)
	}
	return resultFromProto(resp), nil
}

func (c *grpcClient) Status(ctx context.Context) (Status, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.rpc.Status(ctx, &pb.StatusRequest{})
	if err != nil {
		return Status{}, fromStatus("status", err)
	}
	return statusFromProto(resp), nil
}

func (c *grpcClient) Events(ctx context.Context) (<-chan Event, error) {
	stream, err := c.rpc.Events(ctx, &pb.EventsRequest{})
	if err != nil {
		return nil, fromStatus("events", err)
	}
	out := make(chan Event, eventBuffer)
	go func() {
		defer close(out)
		for {
			e, err := stream.Recv()
			if err != nil {
				return
			}
			select {
			case out <- eventFromProto(e):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (c *grpcClient) Drain(ctx context.Context) (int, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.rpc.Drain(ctx, &pb.DrainRequest{})
	if err != nil {
		return 0, fromStatus("drain", err)
	}
	return int(resp.GetWithdrawn()), nil
}

// fromStatus turns a gRPC status back into the errors of this package.
func fromStatus(call string, err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok && s.Code() == codes.FailedPrecondition {
		return fmt.Errorf("%s: %s: %w", call, s.Message(), ErrOutOfSync)
	}
	return fmt.Errorf("%s: %w", call, err)
}

// grpcServer serves an Announcer implementation (announcer side).
type grpcServer struct {
	pb.UnimplementedAnnouncerServer
	impl Announcer
}

func (s *grpcServer) Info(ctx context.Context, _ *pb.InfoRequest) (*pb.InfoResponse, error) {
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return infoToProto(info), nil
}

func (s *grpcServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	if err := s.impl.Configure(ctx, configFromProto(req)); err != nil {
		return nil, toStatus(err)
	}
	return &pb.ConfigureResponse{}, nil
}

func (s *grpcServer) SetDesired(ctx context.Context, req *pb.SetDesiredRequest) (*pb.ApplyResponse, error) {
	as, rejected := announcementsFromProto(req.GetAnnouncements())
	res, err := s.impl.SetDesired(ctx, DesiredSet{Generation: req.GetGeneration(), Announcements: as})
	if err != nil {
		return nil, toStatus(err)
	}
	res.Rejected = append(rejected, res.Rejected...)
	return resultToProto(res), nil
}

func (s *grpcServer) Apply(ctx context.Context, req *pb.ApplyRequest) (*pb.ApplyResponse, error) {
	as, rejected := announcementsFromProto(req.GetUpserts())
	res, err := s.impl.Apply(ctx, Delta{
		BaseGeneration: req.GetBaseGeneration(), Generation: req.GetGeneration(),
		Upserts: as, Removes: req.GetRemoves(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	res.Rejected = append(rejected, res.Rejected...)
	return resultToProto(res), nil
}

func (s *grpcServer) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	st, err := s.impl.Status(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return statusToProto(st), nil
}

func (s *grpcServer) Events(_ *pb.EventsRequest, stream grpc.ServerStreamingServer[pb.Event]) error {
	events, err := s.impl.Events(stream.Context())
	if err != nil {
		return toStatus(err)
	}
	for e := range events {
		if err := stream.Send(eventToProto(e)); err != nil {
			return err
		}
	}
	return nil
}

func (s *grpcServer) Drain(ctx context.Context, _ *pb.DrainRequest) (*pb.DrainResponse, error) {
	n, err := s.impl.Drain(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DrainResponse{Withdrawn: uint32(n)}, nil
}

// ErrInvalid marks an error caused by bad input (e.g. a bad configuration); it crosses the
// wire as INVALID_ARGUMENT.
var ErrInvalid = errors.New("invalid")

func toStatus(err error) error {
	switch {
	case errors.Is(err, ErrOutOfSync):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

package l2

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/hashicorp/go-hclog"
	"github.com/vishvananda/netlink"
)

// Backoff for renewing a netlink subscription that ended (e.g. ENOBUFS when the socket
// overflowed under a storm of changes).
const (
	resubscribeMin = 100 * time.Millisecond
	resubscribeMax = 5 * time.Second
)

// doubling is a backoff from lo, doubling up to hi, without jitter: one engine's retries
// need no spreading, and tests can tell its steps.
func doubling(lo, hi time.Duration) *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{InitialInterval: lo, Multiplier: 2, MaxInterval: hi}
	b.Reset()
	return b
}

// watchKernel calls changed after every link or address notification from the kernel until
// ctx is done. The notification's content is not used: the engine re-reads the interfaces,
// so a lost or reordered message cannot leave it with a wrong picture. A subscription that
// ends is renewed with backoff, and changed is called then too, since changes may have been
// missed meanwhile.
func watchKernel(ctx context.Context, log hclog.Logger, changed func()) {
	retry := doubling(resubscribeMin, resubscribeMax)
	for {
		start := time.Now()
		err := subscribe(ctx, changed)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > resubscribeMax {
			retry.Reset()
		}
		wait := retry.NextBackOff()
		log.Warn("netlink subscription ended, renewing", "error", err, "in", wait)
		changed()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// subscribe listens to link and address changes until ctx is done or the subscription ends.
func subscribe(ctx context.Context, changed func()) error {
	done := make(chan struct{})
	links := make(chan netlink.LinkUpdate, 64)
	addrs := make(chan netlink.AddrUpdate, 64)
	errc := make(chan error, 1)
	onError := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	defer func() {
		close(done)
		// The library's readers may be blocked sending to us; let them finish and close.
		go func() {
			for range links {
			}
		}()
		go func() {
			for range addrs {
			}
		}()
	}()
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{ErrorCallback: onError}); err != nil {
		close(links) // neither was handed to the library
		close(addrs)
		return err
	}
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{ErrorCallback: onError}); err != nil {
		close(addrs) // never handed to the library
		return err
	}
	for {
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case _, ok = <-links:
		case _, ok = <-addrs:
		}
		if !ok {
			select {
			case err := <-errc:
				return err
			default:
				return errors.New("netlink subscription closed")
			}
		}
		changed()
	}
}

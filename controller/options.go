package controller

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultLoadBalancerClass is the spec.loadBalancerClass Herald handles besides Services with
// no class.
const DefaultLoadBalancerClass = "herald.dev/herald"

// DefaultMetricsBindAddress is MetalLB's controller metrics port, so existing scrape
// configurations keep working.
const DefaultMetricsBindAddress = ":7472"

// Options configures the controller.
type Options struct {
	// Namespace is Herald's own: it holds the leader-election Lease.
	Namespace string
	// ConfigNamespace holds the IPAddressPools (and the rest of the metallb.io
	// configuration); empty means Namespace. Pools in other namespaces are ignored and
	// reported (a Warning Event on each).
	ConfigNamespace string
	// LoadBalancerClass is the spec.loadBalancerClass Herald owns.
	LoadBalancerClass string
	// HandleNoClass makes Herald own LoadBalancer Services without a loadBalancerClass.
	HandleNoClass bool
	// LeaseName and Identity are the leader-election Lease and this replica's name in it.
	LeaseName string
	Identity  string
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election as in
	// kube-controller-manager.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Workers is the number of Services reconciled in parallel. Deciding is serialised by the
	// allocator's lock; what runs in parallel is waiting for the API server (a status update
	// and an annotation patch per new Service), so a burst of new Services gets its
	// addresses in a few round trips rather than one per Service.
	Workers int
	// PoolStatusInterval is how often pool usage is written to IPAddressPool status.
	PoolStatusInterval time.Duration
	// KubeAPIQPS and KubeAPIBurst limit the controller's requests to the API server. Each new
	// Service costs three (status, pool annotation, Event); at 50 QPS a few bursts of 100
	// Services in a row emptied the bucket and the last Service waited 2 s for its address.
	// The API server's priority and fairness protects it; this bound only stops a runaway.
	KubeAPIQPS   float32
	KubeAPIBurst int
	// MetricsBindAddress is the host:port serving /metrics, /healthz and /readyz; empty
	// disables them.
	MetricsBindAddress string
	// FastPathSecret names the Secret in Namespace that holds the speakers' shared fast-path
	// secret (key FastPathSecretKey): the controller creates it with random content when it
	// is missing and never changes an existing one. Empty leaves Secrets alone.
	FastPathSecret string

	// listener, set by tests, replaces MetricsBindAddress with an open socket.
	listener net.Listener
}

// DefaultOptions returns the options `herald controller` starts with.
func DefaultOptions() Options {
	host, _ := os.Hostname()
	return Options{
		Namespace:          "herald-system",
		LoadBalancerClass:  DefaultLoadBalancerClass,
		HandleNoClass:      true,
		LeaseName:          "herald-controller",
		Identity:           fmt.Sprintf("%s_%d", host, os.Getpid()),
		LeaseDuration:      15 * time.Second,
		RenewDeadline:      10 * time.Second,
		RetryPeriod:        2 * time.Second,
		Workers:            16,
		PoolStatusInterval: 10 * time.Second,
		KubeAPIQPS:         200,
		KubeAPIBurst:       400,
		MetricsBindAddress: DefaultMetricsBindAddress,
	}
}

// AddFlags binds the options to command-line flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "Herald's namespace: the leader-election Lease, and the IPAddressPools unless --config-namespace is set")
	fs.StringVar(&o.ConfigNamespace, "config-namespace", o.ConfigNamespace, "namespace of the metallb.io configuration (IPAddressPools); objects of its kinds elsewhere are ignored and reported (default: --namespace)")
	fs.StringVar(&o.LoadBalancerClass, "load-balancer-class", o.LoadBalancerClass, "spec.loadBalancerClass of the Services Herald handles")
	fs.BoolVar(&o.HandleNoClass, "handle-no-class", o.HandleNoClass, "also handle LoadBalancer Services without spec.loadBalancerClass")
	fs.StringVar(&o.LeaseName, "lease-name", o.LeaseName, "name of the leader-election Lease")
	fs.StringVar(&o.Identity, "identity", o.Identity, "this replica's identity in the leader-election Lease")
	fs.DurationVar(&o.LeaseDuration, "lease-duration", o.LeaseDuration, "how long a standby waits before taking over an unrenewed lease")
	fs.DurationVar(&o.RenewDeadline, "renew-deadline", o.RenewDeadline, "how long the leader retries renewing before it stops allocating")
	fs.DurationVar(&o.RetryPeriod, "retry-period", o.RetryPeriod, "interval between leader-election attempts")
	fs.IntVar(&o.Workers, "workers", o.Workers, "Services reconciled in parallel")
	fs.DurationVar(&o.PoolStatusInterval, "pool-status-interval", o.PoolStatusInterval, "how often pool usage is written to IPAddressPool status")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "requests per second to the API server")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "burst of requests to the API server")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "host:port serving /metrics, /healthz and /readyz; empty disables them")
	fs.StringVar(&o.FastPathSecret, "fast-path-secret", o.FastPathSecret, "Secret in --namespace holding the speakers' fast-path secret (key \""+FastPathSecretKey+"\"), created with random content when missing and never overwritten; empty disables")
}

// configNamespace is where the IPAddressPools are read.
func (o *Options) configNamespace() string {
	if o.ConfigNamespace != "" {
		return o.ConfigNamespace
	}
	return o.Namespace
}

// Validate reports every invalid option.
func (o *Options) Validate() error {
	var errs []error
	if o.Namespace == "" {
		errs = append(errs, errors.New("--namespace must not be empty"))
	}
	for _, msg := range validation.IsDNS1123Label(o.configNamespace()) {
		errs = append(errs, fmt.Errorf("--config-namespace %q: %s", o.configNamespace(), msg))
	}
	if o.LoadBalancerClass == "" && !o.HandleNoClass {
		errs = append(errs, errors.New("--load-balancer-class is empty and --handle-no-class is false: no Service would be handled"))
	}
	if o.LeaseName == "" || o.Identity == "" {
		errs = append(errs, errors.New("--lease-name and --identity must not be empty"))
	}
	if o.RetryPeriod <= 0 || o.RenewDeadline <= o.RetryPeriod || o.LeaseDuration <= o.RenewDeadline {
		errs = append(errs, fmt.Errorf("need 0 < --retry-period (%s) < --renew-deadline (%s) < --lease-duration (%s)", o.RetryPeriod, o.RenewDeadline, o.LeaseDuration))
	}
	if o.Workers < 1 {
		errs = append(errs, fmt.Errorf("--workers must be at least 1, is %d", o.Workers))
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-qps (%g) and --kube-api-burst (%d) must be positive", o.KubeAPIQPS, o.KubeAPIBurst))
	}
	if o.PoolStatusInterval <= 0 {
		errs = append(errs, fmt.Errorf("--pool-status-interval must be positive, is %s", o.PoolStatusInterval))
	}
	if o.MetricsBindAddress != "" {
		if _, _, err := net.SplitHostPort(o.MetricsBindAddress); err != nil {
			errs = append(errs, fmt.Errorf("--metrics-bind-address %q: want host:port: %w", o.MetricsBindAddress, err))
		}
	}
	if o.FastPathSecret != "" {
		for _, msg := range validation.IsDNS1123Subdomain(o.FastPathSecret) {
			errs = append(errs, fmt.Errorf("--fast-path-secret %q: %s", o.FastPathSecret, msg))
		}
	}
	return errors.Join(errs...)
}

// Package cluster runs a real Kubernetes cluster inside the network lab of package test/lab,
// so Herald's image, Helm chart and DaemonSet run on kubelets as they would in production:
//
//	root namespace   etcd and kube-apiserver (package test/kubeapi, Node authorizer, lease
//	                 endpoint reconciler, advertised at the lab gateway), kube-controller-
//	                 manager and kube-scheduler on loopback
//	node namespaces  per lab node, entered with `nsenter --net` (`ip netns exec` remounts
//	                 /sys and hides the cgroup mounts): containerd (Debian's, CRI), kubelet
//	                 (cgroupfs driver, its own cgroup root in every v1 hierarchy, root,
//	                 state and log directories) and kube-proxy (iptables); hostNetwork pods
//	                 live there, ordinary pods in namespaces the CNI bridge plugin attaches
//
// Addresses: nodes and the segment are the lab's (192.0.2.0/24); pods of node i get
// 198.18.(16+i).0/24 (a route in every other node leads there), Services 198.19.0.0/16
// (kubeapi.ServiceClusterIPRanges). Images are imported into every node's containerd: Herald's
// (`make image`) and the test bed's (its pod sandbox and an echo server), so nothing is pulled.
//
// Teardown (Cluster's cleanup, also on failure and when SIGINT or SIGTERM closes the lab)
// stops every process, unmounts what kubelet and containerd mounted, removes the cgroups, the
// pods' network namespaces and the host paths they created, and restores the sysctls kubelet
// changed.
package cluster

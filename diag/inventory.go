package diag

func (x *index) poolUsage() []PoolUsage {
	out := []PoolUsage{}
	for _, p := range x.pools {
		st := p.stats
		out = append(out, PoolUsage{
			Name: p.name, Size: st.Size, Used: st.Used, Free: st.Free,
			Exhausted: st.Usable && st.Size > 0 && st.Free == 0, Usable: st.Usable,
			Advertisements: append([]string{}, p.advs...),
		})
	}
	return out
}

func (x *index) serviceStates() []ServiceState {
	out := []ServiceState{}
	for _, s := range x.services {
		k := keyOf(s)
		st := ServiceState{
			Namespace: s.Namespace, Name: s.Name, Owned: x.owns(s), IPs: []string{}, Pool: x.svcPool[k],
			ExternalTrafficPolicy: "Cluster", ServingEndpoints: x.servingTotal(k), Announcers: []string{},
		}
		if s.Spec.LoadBalancerClass != nil {
			st.Class = *s.Spec.LoadBalancerClass
		}
		if isLocal(s) {
			st.ExternalTrafficPolicy = "Local"
		}
		for _, ip := range ingressIPs(s) {
			st.IPs = append(st.IPs, ip.String())
		}
		if !st.Owned && len(st.IPs) > 0 {
			st.Pool = x.poolOf(ingressIPs(s)[0])
		}
		if st.Owned && len(st.IPs) == 0 {
			st.Pending = true
			st.PendingReason, _ = x.pendingReason(s)
		}
		for _, a := range x.announcers[k] {
			name := string(a.mode) + "/" + a.node
			if !containsString(st.Announcers, name) {
				st.Announcers = append(st.Announcers, name)
			}
		}
		out = append(out, st)
	}
	return out
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (x *index) nodeStates() []NodeState {
	out := []NodeState{}
	for _, n := range x.nodes {
		st := NodeState{Name: n.Name, Ready: nodeReady(n), Excluded: excluded(n), Heartbeat: x.heartbeatState(n.Name), Interfaces: x.upInterfaces(n.Name)}
		if st.Interfaces == nil {
			st.Interfaces = []string{}
		}
		if p := x.speakerOn[n.Name]; p != nil {
			st.SpeakerPod, st.SpeakerReady = p.Name, podReady(p)
		}
		if hb := x.heartbeats[n.Name]; hb != nil {
			st.Draining = hb.Draining
		}
		out = append(out, st)
	}
	return out
}

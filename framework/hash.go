package framework

// FNV1aNodeIP is the 64-bit FNV-1a hash of node, "/" and ip (its text or its bytes), not yet
// finalized: the one hash of a node and an IP that TieBreakHash and the Spread plugin finish
// with a finalizer each. Written out, not hash/fnv, so the per-node hot path allocates no
// hash.Hash.
func FNV1aNodeIP[IP string | []byte](node string, ip IP) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for i := 0; i < len(node); i++ {
		h ^= uint64(node[i])
		h *= prime64
	}
	h ^= '/'
	h *= prime64
	for i := 0; i < len(ip); i++ {
		h ^= uint64(ip[i])
		h *= prime64
	}
	return h
}

// TieBreakHash is the FNV-64a hash of node + "/" + ip passed through MurmurHash3's 64-bit
// finalizer. Among nodes with equal total scores the one with the highest hash wins; the hash
// depends on nothing but the names, so every speaker agrees, and varies with the IP, so tied
// IPs spread over the nodes. The finalizer matters: FNV alone barely moves its high bits when
// only the last bytes differ, and comparing hashes looks at the high bits first, so without it
// most IPs of a /24 tie-break to the same node. Equal hashes keep the node that sorts first.
func TieBreakHash(node, ip string) uint64 { return fmix64(FNV1aNodeIP(node, ip)) }

// fmix64 is MurmurHash3's finalizer: every input bit affects every output bit.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

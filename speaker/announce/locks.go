package announce

import "sync"

// unitLocks are mutexes by unit key. An entry lives only while a caller holds or waits for
// it, so the map is bounded by the callers at work (the speaker's workers), not by every
// unit the speaker ever saw: with Services created and deleted all day, a map that kept one
// mutex per key it had seen grew without end.
type unitLocks struct {
	mu sync.Mutex
	m  map[string]*unitLock
}

type unitLock struct {
	mu sync.Mutex
	// refs counts the callers holding or waiting; guarded by unitLocks.mu.
	refs int
}

func (l *unitLocks) lock(key string) func() {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*unitLock{}
	}
	e := l.m[key]
	if e == nil {
		e = &unitLock{}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
}

// len is the number of keys in use.
func (l *unitLocks) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

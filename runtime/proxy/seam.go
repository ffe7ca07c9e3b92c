package proxy

import "time"

// The seam between the Proxy and its fast HTTP/1 server. The fast path
// (fastpath.go) reaches the Proxy only through the methods in this file and
// the ones named here, so that the two request paths share every rule and
// the fast path can be switched off (ServerOptions.DisableFastPath)
// without the Proxy noticing:
//
//   - intercepted: whether the Interceptor answers a request instead;
//   - route: the route and service pool of a path;
//   - pick and nextTry: the replica of a request's first try, and whether
//     and where another try follows;
//   - observe and observeFailure: passive health;
//   - emit: the request's record.

// intercepted reports whether the proxy's Interceptor answers requests
// with this method and path; the fast path hands them to net/http.
func (p *Proxy) intercepted(method, path string) bool {
	ic := p.icpt.Load()
	return ic != nil && (*ic).Intercepts(method, path)
}

// route returns the route of a request that arrived on port for path,
// its service's pool and the path to send upstream; a nil route when
// none matches.
func (p *Proxy) route(port int, path string) (*Route, *servicePool, string) {
	tb := p.tbl.Load()
	route, upPath := tb.router.MatchOn(port, path)
	if route == nil {
		return nil, nil, ""
	}
	return route, tb.pools[route.svc], upPath
}

// recordTime returns the start time of a request's record, or the zero
// time when the proxy keeps no records (and the clock need not be read).
func (p *Proxy) recordTime() (time.Time, bool) {
	if p.records == nil {
		return time.Time{}, false
	}
	return p.now(), true
}

// NewRequestID returns a new request ID, as the proxy makes for a request
// that arrives without X-Request-ID.
func (p *Proxy) NewRequestID() string { return p.ids.next() }

// appendRequestID appends a new request ID to b.
func (p *Proxy) appendRequestID(b []byte) []byte { return p.ids.appendNext(b) }

// copyBuffers is the pool of the buffers response bodies are copied with.
func (p *Proxy) copyBuffers() *BufferPool { return p.copyBufs }

// Package proxy is the data plane of a cell gateway: an HTTP reverse proxy
// with an embedded load balancer over the cell's replicas.
//
// It holds no Docker code. A controller tells it which replicas exist
// (SetUpstreams) and what state they are in (SetHealthy, SetDraining,
// Drain); the proxy routes each request by longest path prefix to a
// service, picks an available replica with the cell's balance policy (a
// Selector) and forwards the request over pooled keep-alive connections.
//
// # Hot path
//
// The replicas of a service are an immutable snapshot swapped atomically
// on change, and routes are compiled once, so a request takes no lock.
// Replica state (health, ejection, draining, in-flight and served counts)
// lives in atomic fields of Upstream. Request IDs come from a random prefix
// and a counter, trace IDs from the runtime's fast random source, and copy
// buffers from pools.
//
// # Server
//
// Proxy is an http.Handler, and Server serves it faster than http.Server
// does. The common request (HTTP/1.x, a plain origin-form path, no body,
// no upgrade) is read, forwarded and answered by the Server itself on the
// connection's goroutine: heads are parsed in place, the upstream request
// is written straight from the client's head, and the answer's head is
// parsed in place and relayed, with one allocation per request (the
// record's strings; none without records). Every other connection, and
// every request the proxy would answer with an error of its own, is
// handed with the bytes already read to an http.Server running the Proxy,
// for the rest of its life, so each behaviour has one implementation.
// net/http's per-request costs (a background read goroutine, a Request
// with its header map, a context, deadlines) were half the gateway's user
// CPU.
//
// A connection's first request must arrive within the header timeout of
// the accept, and a head handed to net/http keeps only the time left. A
// connection takes its buffers and parse space from a pool at its first
// byte and gives them back after a second without a request, so an idle
// connection costs a few KiB. On handed-off connections a framing watch
// follows the requests as net/http reads them, and the connection closes
// after a request with both Transfer-Encoding and Content-Length, or with
// Transfer-Encoding on HTTP/1.0 (RFC 9112 section 6.1), which net/http
// itself would keep open.
//
// # Transport
//
// Requests reach replicas over the proxy's own HTTP/1.1 transport rather
// than http.Transport, whose two goroutines per connection, allocations and
// surplus connections were the gateway's main cost. The request is written
// and the answer read on the request's goroutine, over a LIFO pool of
// keep-alive connections per replica, so there are never more connections
// than requests in flight. A pooled connection is looked at (a
// non-blocking peek at the socket) before it carries a request: anything
// waiting on it, an answer nobody asked for or the replica's close, drops
// it, so bytes a replica wrote past its answer never become another
// client's answer. A request on a reused connection that still fails
// before any answer is sent again on a new connection only when no byte of
// it was written or it is idempotent. Upgrade requests go through an
// http.Transport; CONNECT is refused with 405.
//
// # Retries
//
// A try that cannot connect, or whose connection broke before any byte of
// the request was written, is retried on another replica for any method:
// the replica cannot have acted on it. Once a byte was written the replica
// may have acted on the request even when no answer came, so a broken
// connection, a timeout or a 502, 503 or 504 answer lead to another try
// only for an idempotent request (GET, HEAD, OPTIONS, PUT, DELETE, or any
// request with an Idempotency-Key header), up to the route's retries.
// Bodies of up to MaxRetryBody bytes are buffered so they can be sent
// again; larger ones are streamed, and retried only when a connection
// could not be made before any of the body was read. The route's timeout
// bounds each try up to the response headers; the response body is then
// bounded only by the client, so long downloads, event streams and
// upgraded connections are not cut off.
//
// # Passive health
//
// As in Envoy's outlier detection, made safe for small pools (see
// Outlier): a replica that refuses a connection is ejected at once, and
// one whose tries break, reset or time out several times in a row after
// the request was sent; 5xx answers eject only when the cell asks. An
// ejection lasts a backoff that doubles with each ejection of a streak, up
// to a cap; a successful active health check ends it early when the
// replica was unhealthy, or when the ejection was for a refused
// connection. At most a share of a service's replicas (half by default)
// is ejected at once, and never the last available one. When fewer than
// half of a service's healthy replicas are available, the service is in
// panic mode and routes to the ejected ones too (Options.OnPanic).
//
// # Headers
//
// The proxy sends X-Request-ID (generating one when absent), a W3C
// traceparent (continuing a valid incoming trace with this hop's span ID,
// or starting a sampled one), X-Forwarded-For, -Proto and -Host, and drops
// hop-by-hop headers both ways. Responses of unknown length and event
// streams are flushed after every write; Upgrade requests (WebSocket) are
// proxied by hijacking the client connection. Hijacked connections are not
// tracked by http.Server.Shutdown: they end when either side closes.
//
// # Records
//
// Each request yields a RequestRecord, handed to Options.OnRequest by the
// goroutine of Run; a full queue drops records rather than delay requests.
//
// NewForward builds the same machinery for egress: every request on a
// listener goes to a fixed set of addresses, such as another cell's
// gateway.
package proxy

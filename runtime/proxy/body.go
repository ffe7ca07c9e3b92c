package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// MaxRetryBody is the largest request body the proxy buffers so that the
// request can be retried on another replica. Larger bodies, and bodies of
// unknown length that turn out larger, are streamed and not retried once
// the upstream has started reading them.
const MaxRetryBody = 1 << 20

// BufferPool recycles byte buffers of one size. It hands out pointers so
// that putting a buffer back does not allocate.
type BufferPool struct {
	size int
	pool sync.Pool
}

// NewBufferPool returns a pool of buffers of size bytes.
func NewBufferPool(size int) *BufferPool {
	p := &BufferPool{size: size}
	p.pool.New = func() any {
		b := make([]byte, size)
		return &b
	}
	return p
}

// Size returns the length of the pool's buffers.
func (p *BufferPool) Size() int { return p.size }

// Get returns a buffer of Size bytes.
func (p *BufferPool) Get() *[]byte { return p.pool.Get().(*[]byte) }

// Put returns a buffer to the pool. Buffers of another size are dropped.
func (p *BufferPool) Put(b *[]byte) {
	if b == nil || len(*b) != p.size {
		return
	}
	p.pool.Put(b)
}

// bodyPools holds request-body buffers in a few size classes, the largest
// one byte over MaxRetryBody so that reading a body of unknown length can
// tell "exactly the limit" from "more".
type bodyPools [3]*BufferPool

func newBodyPools() bodyPools {
	return bodyPools{NewBufferPool(16 << 10), NewBufferPool(128 << 10), NewBufferPool(MaxRetryBody + 1)}
}

func (ps *bodyPools) get(n int64) (*[]byte, *BufferPool) {
	for _, p := range ps {
		if n <= int64(p.size) {
			return p.Get(), p
		}
	}
	return nil, nil
}

// requestBody is a client request body prepared for one or more tries. A
// complete body is held in a pooled buffer and every try reads its own copy
// of it; otherwise the buffered head (if any) is followed by the rest of the
// client's stream, which only one try can consume.
type requestBody struct {
	data     []byte
	tail     io.Reader // nil when data is the whole body
	length   int64     // -1 when unknown
	buf      *[]byte
	pool     *BufferPool
	refs     atomic.Int32
	tailErr  atomic.Pointer[error]
	tailUsed atomic.Bool
}

// prepareBody reads a request body of up to MaxRetryBody bytes into a
// pooled buffer. It returns nil for a request without a body.
func (p *Proxy) prepareBody(r *http.Request) (*requestBody, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, nil
	}
	b := &requestBody{length: r.ContentLength}
	b.refs.Store(1)
	if r.ContentLength > MaxRetryBody {
		b.tail = r.Body
		return b, nil
	}
	want := r.ContentLength
	if want < 0 {
		want = MaxRetryBody + 1
	}
	b.buf, b.pool = p.bodies.get(want)
	n, err := io.ReadFull(r.Body, (*b.buf)[:want])
	switch {
	case err == nil && r.ContentLength < 0:
		// More than the limit: send what was read, then the rest.
		b.data = (*b.buf)[:n]
		b.tail = r.Body
	case err == nil:
		b.data = (*b.buf)[:n]
	case r.ContentLength < 0 && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
		b.data = (*b.buf)[:n]
		b.length = int64(n)
	default:
		b.release()
		return nil, fmt.Errorf("read request body: %w", err)
	}
	return b, nil
}

// complete reports whether the whole body is buffered, so any number of
// tries can send it.
func (b *requestBody) complete() bool { return b == nil || b.tail == nil }

// canReplay reports whether a new try can send the body after reader rd was
// given to a failed one. A streamed body can be sent again only when the
// failed try never read from it and never connected (so nothing is reading
// it in the background).
func (b *requestBody) canReplay(rd *bodyReader, connectFailed bool) bool {
	if b.complete() {
		return true
	}
	return connectFailed && rd != nil && !rd.touched()
}

// clientErr returns the error the client's stream returned, if any: such a
// failure is the client's, not the upstream's.
func (b *requestBody) clientErr() error {
	if b == nil {
		return nil
	}
	if e := b.tailErr.Load(); e != nil {
		return *e
	}
	return nil
}

// reader returns a reader of the body for one try. Its Close gives the
// shared buffer back once every reader and the owner are done with it.
func (b *requestBody) reader() *bodyReader {
	b.refs.Add(1)
	return &bodyReader{b: b}
}

// getBody lets the transport rewind the body for its own retries on a stale
// keep-alive connection.
func (b *requestBody) getBody() (io.ReadCloser, error) { return b.reader(), nil }

// release drops one reference; the last one returns the buffer to its pool.
func (b *requestBody) release() {
	if b.refs.Add(-1) == 0 && b.pool != nil {
		b.pool.Put(b.buf)
	}
}

// bodyReader is one try's view of a requestBody. Its mutex makes Close wait
// for a Read in progress, so a buffer is never read after it went back to
// the pool even when the transport closes from another goroutine.
type bodyReader struct {
	b      *requestBody
	mu     sync.Mutex
	off    int
	closed bool
	used   atomic.Bool
}

var errBodyClosed = errors.New("read on closed request body")

func (r *bodyReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, errBodyClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	r.used.Store(true)
	if r.off < len(r.b.data) {
		n := copy(p, r.b.data[r.off:])
		r.off += n
		return n, nil
	}
	if r.b.tail == nil {
		return 0, io.EOF
	}
	r.b.tailUsed.Store(true)
	n, err := r.b.tail.Read(p)
	if err != nil && err != io.EOF {
		r.b.tailErr.CompareAndSwap(nil, &err)
	}
	return n, err
}

// Close implements io.Closer. It never closes the client's stream: the
// server does that when the handler returns.
func (r *bodyReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		r.b.release()
	}
	return nil
}

// touched reports whether a try read anything from the body, or whether any
// try has consumed the client's stream.
func (r *bodyReader) touched() bool { return r.used.Load() || r.b.tailUsed.Load() }

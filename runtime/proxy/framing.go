package proxy

import (
	"bytes"
	"net/http"
	"sync/atomic"
)

// framingWatch follows the requests in the byte stream of a connection
// served by net/http, to find the ones after which RFC 9112 section 6.1
// requires the server to close the connection: a request with both
// Transfer-Encoding and Content-Length, and an HTTP/1.0 request with
// Transfer-Encoding (whose framing is faulty). The handler cannot tell
// such a request from a plain one, because net/http deletes the evidence
// before calling it: Content-Length when the body is chunked, and
// Transfer-Encoding, ignored, on HTTP/1.0. And net/http itself keeps the
// connection open. So the watch reads the same bytes net/http reads, in
// the same order, frames them into requests as net/http does (heads,
// Content-Length and chunked bodies, trailers) and remembers the first
// such request; the handler asks mustClose and answers with
// Connection: close.
//
// The watch only needs to agree with net/http on input net/http accepts.
// Where net/http refuses a request, it answers with an error and closes
// the connection itself, so the watch stops there, or may read on: nothing
// it concludes afterwards reaches a handler. It stops too once it found a
// request that must close the connection, and when told to (stop).
//
// feed is called by whichever goroutine reads the connection (net/http's
// reads, including its background read, are serialized); mustClose,
// closeHead and stop may be called from any goroutine at any time.
//
// net/http reads ahead: while it answers one request its buffer may hold
// the next ones, which the watch has then seen too. So mustClose may turn
// true while an earlier request of the connection is being answered;
// closeHead tells which request it was, counting from the first request
// fed.
type framingWatch struct {
	stopped atomic.Bool  // stop was called, or the watch gave up
	closing atomic.Bool  // mustClose
	closeAt atomic.Int64 // closeHead, set before closing

	// Owned by the goroutine calling feed.
	state    uint8
	skipCRLF uint8  // CR or LF bytes net/http still discards before the next head
	post     bool   // the current request is a POST
	digits   uint8  // hex digits of the current chunk-size line
	remain   uint64 // bytes left in a Content-Length body or chunk; chunk size being read
	n        int    // bytes of the current chunk-size line or trailer section
	lines    int    // complete lines of the current head
	lineLen  int    // bytes of the head's current line so far, LF excluded
	lineHead byte   // first byte of the head's current line
	heads    int    // complete request heads seen (for tests)
	buf      []byte // the current head, when it spans feeds
	fold     []byte // a folded Transfer-Encoding or Content-Length value
	cl0      []byte // the first Content-Length value, when folded
}

// States of a framingWatch.
const (
	fwHead        uint8 = iota // a request head
	fwBody                     // a Content-Length body: remain bytes left
	fwSize                     // a chunk-size line: hex digits
	fwSizeOWS                  // a chunk-size line: blanks after the digits
	fwExt                      // a chunk-size line: chunk extensions
	fwSizeLF                   // a chunk-size line: CR seen, LF due
	fwData                     // chunk data: remain bytes left
	fwDataCR                   // the CRLF after chunk data: CR due
	fwDataLF                   // the CRLF after chunk data: LF due
	fwTrailer                  // the trailer section: at a line's start
	fwTrailerCR                // the trailer section: the line so far is one CR
	fwTrailerLine              // the trailer section: in a non-empty line
	fwStopped                  // not watching any more
)

// Limits net/http puts on what it reads; past them it refuses the request
// and closes the connection, so the watch gives up.
const (
	// framingMaxHead bounds a request head. net/http reads up to
	// MaxHeaderBytes (the default, for Server's http.Server) plus 4096
	// bytes from the connection for one, and its 4 KiB buffer may hold up
	// to 4096 bytes of it already when it starts.
	framingMaxHead = http.DefaultMaxHeaderBytes + 8<<10
	// framingMaxChunkLine bounds a chunk-size line, CRLF included: net/http
	// wants it whole in its 4 KiB read buffer.
	framingMaxChunkLine = 4096
	// framingMaxTrailer bounds the trailer section: net/http wants its
	// final CRLF CRLF in its 4 KiB read buffer.
	framingMaxTrailer = 4096
	// framingKeepBuf is the largest head buffer kept for the next head.
	framingKeepBuf = 16 << 10
)

// feed is given every chunk of bytes read from the client, in order, as
// net/http reads them.
func (w *framingWatch) feed(p []byte) {
	if w.state == fwStopped {
		return
	}
	if w.stopped.Load() {
		w.halt()
		return
	}
	for len(p) > 0 {
		switch w.state {
		case fwStopped:
			return
		case fwHead:
			p = w.head(p)
		case fwBody:
			if uint64(len(p)) < w.remain {
				w.remain -= uint64(len(p))
				return
			}
			p = p[w.remain:]
			w.remain = 0
			w.endRequest()
		case fwData:
			if uint64(len(p)) < w.remain {
				w.remain -= uint64(len(p))
				return
			}
			p = p[w.remain:]
			w.remain = 0
			w.state = fwDataCR
		default:
			p = w.chunked(p)
		}
	}
}

// mustClose reports whether a request head seen so far had
// Transfer-Encoding together with Content-Length, or Transfer-Encoding on
// HTTP/1.0. Once true it stays true.
func (w *framingWatch) mustClose() bool { return w.closing.Load() }

// closeHead returns which request head, counting from 1 for the first one
// fed, made mustClose true; 0 while it is false.
func (w *framingWatch) closeHead() int {
	if !w.closing.Load() {
		return 0
	}
	return int(w.closeAt.Load())
}

// stop ends the watch for good, when the connection switched protocols or
// is closing: feed does nothing after it.
func (w *framingWatch) stop() { w.stopped.Store(true) }

// halt stops the watch from feed's goroutine and lets its buffers go.
func (w *framingWatch) halt() {
	w.stopped.Store(true)
	w.state = fwStopped
	w.buf, w.fold, w.cl0 = nil, nil, nil
}

// trigger records that the head just parsed must close the connection.
func (w *framingWatch) trigger() {
	w.closeAt.Store(int64(w.heads))
	w.closing.Store(true)
	w.halt()
}

// endRequest expects the next head. After a POST, net/http discards up to
// four CR or LF bytes before it (a tolerance for old clients).
func (w *framingWatch) endRequest() {
	w.state = fwHead
	w.skipCRLF = 0
	if w.post {
		w.skipCRLF = 4
	}
}

// head takes bytes of a request head from p and returns the rest of p.
// The head ends with its first empty line, LF or CRLF, as in net/textproto
// (a line of blanks is a continuation line, not an empty one).
func (w *framingWatch) head(p []byte) []byte {
	for w.skipCRLF > 0 && len(p) > 0 {
		if p[0] != '\r' && p[0] != '\n' {
			w.skipCRLF = 0
			break
		}
		p = p[1:]
		w.skipCRLF--
	}
	if len(p) == 0 {
		return nil
	}
	w.skipCRLF = 0
	end := -1
	for i := 0; i < len(p); {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			if w.lineLen == 0 {
				w.lineHead = p[i]
			}
			w.lineLen += len(p) - i
			break
		}
		first := w.lineHead
		if w.lineLen == 0 && j > 0 {
			first = p[i]
		}
		size := w.lineLen + j
		w.lineLen = 0
		i += j + 1
		if size == 0 || size == 1 && first == '\r' {
			if w.lines == 0 {
				// An empty request line: net/http answers 400.
				w.halt()
				return nil
			}
			end = i
			break
		}
		w.lines++
	}
	take := len(p)
	if end >= 0 {
		take = end
	}
	if len(w.buf)+take > framingMaxHead {
		w.halt()
		return nil
	}
	if end < 0 {
		w.buf = append(w.buf, p...)
		return nil
	}
	h := p[:end]
	if len(w.buf) > 0 {
		w.buf = append(w.buf, h...)
		h = w.buf
	}
	w.lines = 0
	w.parse(h)
	if w.state != fwStopped {
		if cap(w.buf) > framingKeepBuf {
			w.buf = nil
		} else {
			w.buf = w.buf[:0]
		}
	}
	return p[end:]
}

// parse reads a whole head, empty line included, and sets the state for
// what follows it, deciding the body's framing as net/http's server does.
func (w *framingWatch) parse(h []byte) {
	w.heads++
	line, h := fwLine(h)
	method, rest, ok1 := bytes.Cut(line, []byte{' '})
	uri, proto, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || !isToken(method) {
		w.halt() // 400
		return
	}
	major, minor, ok := fwVersion(proto)
	pri := major == 2 && minor == 0 && string(method) == "PRI" && string(uri) == "*"
	if !ok || major != 1 && !pri {
		w.halt() // 400 or 505
		return
	}
	w.post = string(method) == "POST"
	if len(h) > 0 && (h[0] == ' ' || h[0] == '\t') {
		w.halt() // a continuation line with nothing to continue: 400
		return
	}

	var (
		fields, te, cl int
		chunked        bool
		clv            []byte
	)
	for {
		line, h = fwLine(h)
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 || !isToken(line[:colon]) {
			w.halt() // 400
			return
		}
		fields++
		name := line[:colon]
		isTE := eqFold(name, "transfer-encoding")
		isCL := !isTE && eqFold(name, "content-length")
		// The value: net/textproto joins continuation lines to it with
		// one space each, every line trimmed of blanks.
		v := fwTrimRight(line[colon+1:])
		folded := len(h) > 0 && (h[0] == ' ' || h[0] == '\t')
		if folded {
			if isTE || isCL {
				w.fold = append(w.fold[:0], v...)
			}
			for len(h) > 0 && (h[0] == ' ' || h[0] == '\t') {
				var c []byte
				c, h = fwLine(h)
				if isTE || isCL {
					w.fold = append(w.fold, ' ')
					w.fold = append(w.fold, trimOWS(c)...)
				}
			}
			v = w.fold
		}
		switch {
		case isTE:
			te++
			if te == 1 {
				chunked = eqFold(fwTrimLeft(v), "chunked")
			}
		case isCL:
			cl++
			v = fwTrimSpace(v)
			if cl == 1 {
				if folded {
					w.cl0 = append(w.cl0[:0], v...)
					v = w.cl0
				}
				clv = v
			} else if !bytes.Equal(v, clv) {
				w.halt() // differing lengths: 400
				return
			}
		}
	}

	switch {
	case pri && fields == 0:
		// An HTTP/2 preface: net/http closes after the handler, unless
		// it hijacks the connection.
		w.halt()
	case te > 0 && major == 1 && minor == 0:
		w.trigger()
	case te > 0 && (te > 1 || !chunked):
		w.halt() // 501
	case te > 0 && cl > 0:
		w.trigger()
	case te > 0:
		w.state = fwSize
		w.n, w.digits, w.remain = 0, 0, 0
	case cl > 0 && len(clv) == 0:
		// An empty Content-Length: 400, or no body with
		// GODEBUG=httplaxcontentlength=1.
		w.endRequest()
	case cl > 0:
		n, ok := fwLength(clv)
		switch {
		case !ok:
			w.halt() // 400
		case n > 0:
			w.state = fwBody
			w.remain = n
		default:
			w.endRequest()
		}
	default:
		w.endRequest()
	}
}

// chunked follows the framing of a chunked body, as net/http's chunked
// reader and trailer reading accept it, until a state that skips bytes
// in bulk or the body's end; it returns the rest of p.
func (w *framingWatch) chunked(p []byte) []byte {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch w.state {
		case fwSize, fwSizeOWS, fwExt, fwSizeLF:
			if w.n++; w.n > framingMaxChunkLine {
				w.halt()
				return nil
			}
		case fwTrailer, fwTrailerCR, fwTrailerLine:
			if w.n++; w.n > framingMaxTrailer {
				w.halt()
				return nil
			}
		}
		switch w.state {
		case fwSize:
			if d, ok := fwHex(c); ok {
				if w.digits == 16 {
					w.halt() // chunk length too large
					return nil
				}
				w.remain = w.remain<<4 | uint64(d)
				w.digits++
				continue
			}
			switch {
			case w.digits == 0:
				w.halt()
				return nil
			case c == ';':
				w.state = fwExt
			case c == ' ' || c == '\t':
				// net/http trims blanks off the line's end before cutting
				// the extensions off: "5 ;x" has a bad length, "5 " not.
				w.state = fwSizeOWS
			case c == '\r':
				w.state = fwSizeLF
			default:
				w.halt()
				return nil
			}
		case fwSizeOWS:
			switch c {
			case ' ', '\t':
			case '\r':
				w.state = fwSizeLF
			default:
				w.halt()
				return nil
			}
		case fwExt:
			switch c {
			case '\r':
				w.state = fwSizeLF
			case '\n':
				w.halt() // a bare LF ends no chunk-size line
				return nil
			}
		case fwSizeLF:
			if c != '\n' {
				w.halt() // a CR inside the line
				return nil
			}
			w.n, w.digits = 0, 0
			if w.remain == 0 {
				w.state = fwTrailer
				continue
			}
			w.state = fwData
			return p[i+1:]
		case fwDataCR:
			if c != '\r' {
				w.halt()
				return nil
			}
			w.state = fwDataLF
		case fwDataLF:
			if c != '\n' {
				w.halt()
				return nil
			}
			w.state = fwSize
		case fwTrailer:
			switch c {
			case '\n':
				w.endRequest()
				return p[i+1:]
			case '\r':
				w.state = fwTrailerCR
			case ' ', '\t':
				if w.n == 1 {
					w.halt() // a continuation line first: net/http refuses it
					return nil
				}
				w.state = fwTrailerLine
			default:
				w.state = fwTrailerLine
			}
		case fwTrailerCR:
			if c == '\n' {
				w.endRequest()
				return p[i+1:]
			}
			w.state = fwTrailerLine
		case fwTrailerLine:
			if c == '\n' {
				w.state = fwTrailer
			}
		default:
			return p[i:]
		}
	}
	return nil
}

// fwLine cuts the first line off a head, without its LF and the CR before
// it, as bufio.Reader.ReadLine does.
func fwLine(h []byte) (line, rest []byte) {
	i := bytes.IndexByte(h, '\n')
	if i < 0 {
		return h, nil
	}
	line, rest = h[:i], h[i+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest
}

// fwVersion parses an HTTP version as http.ParseHTTPVersion does.
func fwVersion(v []byte) (major, minor int, ok bool) {
	if len(v) != len("HTTP/X.Y") || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return 0, 0, false
	}
	return int(v[5] - '0'), int(v[7] - '0'), true
}

// fwLength parses a Content-Length value as net/http does: decimal digits,
// leading zeros allowed, below 1<<63.
func fwLength(v []byte) (uint64, bool) {
	const limit = 1<<63 - 1
	if len(v) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' || n > limit/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
		if n > limit {
			return 0, false
		}
	}
	return n, true
}

// fwHex returns the value of a hex digit.
func fwHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// fwTrimLeft trims spaces and tabs from the start.
func fwTrimLeft(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// fwTrimRight trims spaces and tabs from the end.
func fwTrimRight(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// fwTrimSpace trims ASCII white space from both ends, as
// textproto.TrimBytes does.
func fwTrimSpace(b []byte) []byte {
	sp := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	for len(b) > 0 && sp(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && sp(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

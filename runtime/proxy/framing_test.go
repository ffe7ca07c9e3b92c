package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fwResult is what a framingWatch concluded from a stream.
type fwResult struct {
	Close     bool
	CloseHead int
	Heads     int
	Stopped   bool
}

func fwResultOf(w *framingWatch) fwResult {
	return fwResult{Close: w.mustClose(), CloseHead: w.closeHead(), Heads: w.heads, Stopped: w.stopped.Load()}
}

// fwFeed feeds data to a new watch in pieces of the given sizes (the last
// one takes what is left).
func fwFeed(data []byte, sizes func() int) fwResult {
	w := new(framingWatch)
	for len(data) > 0 {
		n := min(max(sizes(), 1), len(data))
		w.feed(data[:n])
		data = data[n:]
	}
	return fwResultOf(w)
}

// fwRandomSizes mixes short pieces, which split lines and CRLFs, with long
// ones.
func fwRandomSizes(seed uint64, total int) func() int {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func() int {
		if r.IntN(2) == 0 {
			return 1 + r.IntN(8)
		}
		return 1 + r.IntN(max(total/2, 1))
	}
}

// fwSplits runs data whole, byte by byte and in random pieces, and fails
// the test unless all agree; it returns the result of the whole run.
func fwSplits(t testing.TB, data []byte, seeds int) fwResult {
	t.Helper()
	whole := fwFeed(data, func() int { return len(data) })
	if got := fwFeed(data, func() int { return 1 }); !cmp.Equal(got, whole) {
		t.Errorf("byte by byte differs from whole (-whole +bytes):\n%s", cmp.Diff(whole, got))
	}
	for seed := range uint64(seeds) {
		if got := fwFeed(data, fwRandomSizes(seed, len(data))); !cmp.Equal(got, whole) {
			t.Errorf("random split (seed %d) differs from whole (-whole +split):\n%s", seed, cmp.Diff(whole, got))
		}
	}
	return whole
}

// fwReq builds a request head from its lines.
func fwReq(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

// fwOracle is how net/http frames a stream: how many requests it accepts
// and reads whole, with their bodies, and where they end; and which
// request, if any, it accepts though RFC 9112 section 6.1 wants the
// connection closed after it, with where its head ends.
type fwOracle struct {
	Accepted, AcceptedEnd int
	Trigger, TriggerEnd   int
}

type fwCounting struct {
	r io.Reader
	n int
}

func (c *fwCounting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// fwNetHTTP frames data with net/http's own request reading, as its
// server does: a 4 KiB bufio.Reader, CR and LF bytes discarded after a
// POST, the versions and header names the server refuses, and each body
// read to its end. The presence of Transfer-Encoding and Content-Length,
// which http.ReadRequest hides, comes from net/textproto reading the same
// head again.
func fwNetHTTP(data []byte) fwOracle {
	var o fwOracle
	cr := &fwCounting{r: bytes.NewReader(data)}
	br := bufio.NewReaderSize(cr, 4096)
	pos := func() int { return cr.n - br.Buffered() }
	post := false
	for {
		if post {
			peek, _ := br.Peek(4)
			k := 0
			for k < len(peek) && (peek[k] == '\r' || peek[k] == '\n') {
				k++
			}
			_, _ = br.Discard(k)
		}
		start := pos()
		req, err := http.ReadRequest(br)
		if err != nil {
			return o
		}
		end := pos()
		tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(data[start:end])))
		if _, err := tp.ReadLine(); err != nil {
			panic(err)
		}
		raw, err := tp.ReadMIMEHeader()
		if err != nil {
			panic(fmt.Sprintf("reading an accepted head again: %v", err))
		}
		if !(req.ProtoMajor == 1 || req.ProtoMajor == 2 && req.ProtoMinor == 0 && req.Method == "PRI" && req.RequestURI == "*") {
			return o // 505
		}
		if req.Method == "PRI" && len(raw) == 0 {
			return o // an HTTP/2 preface: closed after the handler
		}
		for k := range raw {
			if !fwTestToken(k) {
				return o // 400
			}
		}
		_, te := raw["Transfer-Encoding"]
		_, cl := raw["Content-Length"]
		if te && (cl || !req.ProtoAtLeast(1, 1)) {
			o.Trigger, o.TriggerEnd = o.Accepted+1, end
			return o
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return o
		}
		o.Accepted++
		o.AcceptedEnd = pos()
		post = req.Method == "POST"
	}
}

func fwTestToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)
		if !ok {
			return false
		}
	}
	return true
}

// fwCheckNetHTTP feeds data byte by byte and checks the watch against
// net/http: it counts the heads of the requests net/http accepts at the
// same places, does not give up before their end, and asks for the
// connection to close exactly at the end of the head of the request
// net/http accepts with ambiguous framing.
func fwCheckNetHTTP(t testing.TB, data []byte) {
	t.Helper()
	o := fwNetHTTP(data)
	w := new(framingWatch)
	headsAt := make([]int, len(data)+1)
	stopAt := -1
	for i := range data {
		w.feed(data[i : i+1])
		headsAt[i+1] = w.heads
		if stopAt < 0 && w.stopped.Load() {
			stopAt = i + 1
		}
	}
	if o.Trigger > 0 {
		if got := w.closeHead(); got != o.Trigger || stopAt != o.TriggerEnd {
			t.Errorf("net/http accepts ambiguous request %d, head ending at %d; watch: closeHead %d, stopped at %d", o.Trigger, o.TriggerEnd, got, stopAt)
		}
		if headsAt[o.TriggerEnd] != o.Trigger {
			t.Errorf("watch counts %d heads at %d, net/http %d", headsAt[o.TriggerEnd], o.TriggerEnd, o.Trigger)
		}
		return
	}
	if stopAt >= 0 && stopAt <= o.AcceptedEnd {
		t.Errorf("watch stopped at %d, inside the %d requests net/http accepts (up to %d)", stopAt, o.Accepted, o.AcceptedEnd)
	}
	if w.mustClose() && w.closeHead() <= o.Accepted {
		t.Errorf("watch asks to close after request %d, which net/http accepts as unambiguous", w.closeHead())
	}
	if headsAt[o.AcceptedEnd] != o.Accepted {
		t.Errorf("watch counts %d heads at %d, net/http %d requests", headsAt[o.AcceptedEnd], o.AcceptedEnd, o.Accepted)
	}
}

type fwCase struct {
	name     string
	in       string
	want     fwResult
	noOracle bool // net/http's server refuses what http.ReadRequest takes
}

func fwCases() []fwCase {
	get := fwReq("GET / HTTP/1.1", "Host: a")
	teCL := fwReq("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 5") + "0\r\n\r\n"
	hidden := fwReq("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 5")
	chunked := "A;name=\"v\";flag\r\n0123456789\r\n3 \t\r\nabc\r\n000000000000000F\r\n0123456789abcde\r\n0;last\r\nX-Sum: 1\r\nx-other:  2 \r\n\r\n"
	long := strings.Repeat("x", 4092) // "3;"+long+CRLF: a 4096-byte chunk-size line
	return []fwCase{
		{name: "pipelined GETs", in: get + fwReq("GET /b HTTP/1.1", "Host: a", "Accept: */*") + get,
			want: fwResult{Heads: 3}},
		{name: "CL body holding a TE+CL head",
			in:   fwReq("POST / HTTP/1.1", "Host: a", fmt.Sprintf("Content-Length: %d", len(hidden))) + hidden + get,
			want: fwResult{Heads: 2}},
		{name: "big CL body of TE+CL heads",
			in:   fwReq("PUT / HTTP/1.1", "Host: a", fmt.Sprintf("Content-Length: %d", 3000*len(teCL))) + strings.Repeat(teCL, 3000) + get,
			want: fwResult{Heads: 2}},
		{name: "chunked body with extensions and trailers, then GET",
			in:   fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + chunked + get,
			want: fwResult{Heads: 2}},
		{name: "chunk data holding a TE+CL head",
			in:   fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(hidden), hidden) + get,
			want: fwResult{Heads: 2}},
		{name: "TE and CL", in: teCL + get,
			want: fwResult{Close: true, CloseHead: 1, Heads: 1, Stopped: true}},
		{name: "CL and TE", in: fwReq("POST / HTTP/1.1", "Host: a", "Content-Length: 3", "Transfer-Encoding: chunked") + "0\r\n\r\n",
			want: fwResult{Close: true, CloseHead: 1, Heads: 1, Stopped: true}},
		{name: "TE on HTTP/1.0", in: fwReq("POST / HTTP/1.0", "Connection: keep-alive", "Transfer-Encoding: chunked") + "0\r\n\r\n",
			want: fwResult{Close: true, CloseHead: 1, Heads: 1, Stopped: true}},
		{name: "TE and CL on HTTP/1.0", in: fwReq("POST / HTTP/1.0", "Transfer-Encoding: chunked", "Content-Length: 5") + "0\r\n\r\n",
			want: fwResult{Close: true, CloseHead: 1, Heads: 1, Stopped: true}},
		{name: "unknown TE on HTTP/1.0", in: fwReq("GET / HTTP/1.0", "Transfer-Encoding: gzip"),
			want: fwResult{Close: true, CloseHead: 1, Heads: 1, Stopped: true}},
		{name: "TE and CL after a chunked request",
			in:   fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + chunked + teCL,
			want: fwResult{Close: true, CloseHead: 2, Heads: 2, Stopped: true}},
		{name: "TE and CL after GETs and a CL body",
			in:   get + fwReq("POST / HTTP/1.1", "Host: a", "Content-Length: 5") + "order" + teCL,
			want: fwResult{Close: true, CloseHead: 3, Heads: 3, Stopped: true}},
		{name: "names in mixed case",
			in:   fwReq("POST / HTTP/1.1", "hOST: a", "tRANSFER-eNCODING: ChUnKeD", "cOnTeNt-LeNgTh: 3") + "0\r\n\r\n",
			want: fwResult{Close: true, CloseHead: 1, Heads: 1, Stopped: true}},
		{name: "chunked in upper case",
			in:   fwReq("POST / HTTP/1.1", "Host: a", "TRANSFER-ENCODING: CHUNKED") + "0\r\n\r\n" + get,
			want: fwResult{Heads: 2}},
		{name: "TE gzip, chunked", in: fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip, chunked", "Content-Length: 3") + "abc",
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "two TE fields", in: fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked") + "0\r\n\r\n",
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "folded TE and CL", in: fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding:", " chunked", "Content-Length: 3") + "0\r\n\r\n",
			want: fwResult{Close: true, CloseHead: 1, Heads: 1, Stopped: true}},
		{name: "TE folded onto a blank line", in: fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", " ", "Content-Length: 3") + "0\r\n\r\n",
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "folded CL", in: fwReq("POST / HTTP/1.1", "Host: a", "Content-Length:", " 5", "\t", "Content-Length: 5 ") + "hello" + teCL,
			want: fwResult{Close: true, CloseHead: 2, Heads: 2, Stopped: true}},
		{name: "bare LF line ends", in: "GET / HTTP/1.1\nHost: a\n\nPOST / HTTP/1.1\nHost: a\r\nContent-Length: 3\n\nabc" + get,
			want: fwResult{Heads: 3}},
		{name: "CRLF after a POST", in: fwReq("POST / HTTP/1.1", "Host: a", "Content-Length: 1") + "x\r\n" + teCL,
			want: fwResult{Close: true, CloseHead: 2, Heads: 2, Stopped: true}},
		{name: "four CR or LF after a POST", in: fwReq("POST / HTTP/1.1", "Host: a") + "\r\n\n\r" + get,
			want: fwResult{Heads: 2}},
		{name: "five CR or LF after a POST", in: fwReq("POST / HTTP/1.1", "Host: a") + "\r\n\n\r\n" + get,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "CRLF after a GET", in: get + "\r\n" + get,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "bare LF in a chunk-size line", in: fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "3\nabc\r\n0\r\n\r\n" + teCL,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "CR inside a chunk-size line", in: fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "3;a\rb\r\nabc\r\n0\r\n\r\n" + teCL,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "blank before a chunk extension", in: fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "3 ;a\r\nabc\r\n0\r\n\r\n" + teCL,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "seventeen hex digits", in: fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "00000000000000003\r\nabc\r\n0\r\n\r\n" + teCL,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "chunk data without CRLF", in: fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "3\r\nabcd\r\n0\r\n\r\n" + teCL,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "longest chunk-size line", in: fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "3;" + long + "\r\nabc\r\n0\r\n\r\n" + teCL,
			want: fwResult{Close: true, CloseHead: 2, Heads: 2, Stopped: true}},
		{name: "chunk-size line too long", in: fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "3;x" + long + "\r\nabc\r\n0\r\n\r\n" + teCL,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "longest trailer", in: fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "0\r\nX:" + long[:4090] + "\r\n\r\n" + teCL,
			want: fwResult{Close: true, CloseHead: 2, Heads: 2, Stopped: true}},
		{name: "trailer too long", in: fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "0\r\nX:" + long[:4091] + "\r\n\r\n" + teCL,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "trailer starting with a blank", in: fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "0\r\n X: y\r\n\r\n" + teCL,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "equal CLs", in: fwReq("POST / HTTP/1.1", "Host: a", "Content-Length: 3", "Content-Length:  3") + "abc" + teCL,
			want: fwResult{Close: true, CloseHead: 2, Heads: 2, Stopped: true}},
		{name: "differing CLs", in: fwReq("POST / HTTP/1.1", "Host: a", "Content-Length: 3", "Content-Length: 03") + "abc" + get,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "CL with leading zeros", in: fwReq("POST / HTTP/1.1", "Host: a", "Content-Length: 00000000000000000000003") + "abc" + teCL,
			want: fwResult{Close: true, CloseHead: 2, Heads: 2, Stopped: true}},
		{name: "signed CL", in: fwReq("POST / HTTP/1.1", "Host: a", "Content-Length: +3") + "abc" + get,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "CL too large", in: fwReq("POST / HTTP/1.1", "Host: a", "Content-Length: 9223372036854775808") + "abc",
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "empty CL", in: fwReq("POST / HTTP/1.1", "Host: a", "Content-Length: ") + get,
			want: fwResult{Heads: 2}},
		{name: "space before a colon", in: fwReq("POST / HTTP/1.1", "Host: a", "Content-Length : 3") + "abc" + get,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "first field line folded", in: "GET / HTTP/1.1\r\n X: y\r\nHost: a\r\n\r\n" + get,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "blank line continues a field", in: "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n \r\n\t\r\n\r\n" + get,
			want: fwResult{Heads: 2}},
		{name: "lone CR line", in: "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n" + get,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "HTTP/1.2 with TE and CL", in: fwReq("POST / HTTP/1.2", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 3") + "0\r\n\r\n",
			want: fwResult{Close: true, CloseHead: 1, Heads: 1, Stopped: true}},
		{name: "HTTP/2.0", in: fwReq("GET / HTTP/2.0", "Host: a") + get,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "HTTP/2 preface", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "malformed request line", in: "GET /  HTTP/1.1\r\nHost: a\r\n\r\n" + get,
			want: fwResult{Heads: 1, Stopped: true}},
		{name: "overlong head", in: fwReq("GET / HTTP/1.1", "Host: a", "X: "+strings.Repeat("y", framingMaxHead)) + teCL,
			want: fwResult{Stopped: true}, noOracle: true},
		{name: "long head", in: fwReq("GET / HTTP/1.1", "Host: a", "X: "+strings.Repeat("y", 1<<20-40)) + teCL,
			want: fwResult{Close: true, CloseHead: 2, Heads: 2, Stopped: true}},
		{name: "HTTP/1.0 GETs", in: fwReq("GET / HTTP/1.0", "Connection: keep-alive") + fwReq("GET / HTTP/1.0"),
			want: fwResult{Heads: 2}},
		{name: "partial head", in: get + "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n",
			want: fwResult{Heads: 1}},
	}
}

func TestFramingWatch(t *testing.T) {
	for _, tt := range fwCases() {
		t.Run(tt.name, func(t *testing.T) {
			seeds := 20
			if len(tt.in) > 64<<10 {
				seeds = 3
			}
			got := fwSplits(t, []byte(tt.in), seeds)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if !tt.noOracle {
				fwCheckNetHTTP(t, []byte(tt.in))
			}
		})
	}
}

func TestFramingWatchStop(t *testing.T) {
	w := new(framingWatch)
	w.feed([]byte(fwReq("GET / HTTP/1.1", "Host: a")))
	w.stop()
	w.feed([]byte(fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 5")))
	if got, want := fwResultOf(w), (fwResult{Heads: 1, Stopped: true}); got != want {
		t.Errorf("after stop: %+v, want %+v", got, want)
	}

	w = new(framingWatch)
	w.feed([]byte(fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 5")))
	w.stop()
	w.feed([]byte("0\r\n\r\n" + fwReq("GET / HTTP/1.1", "Host: a")))
	if got, want := fwResultOf(w), (fwResult{Close: true, CloseHead: 1, Heads: 1, Stopped: true}); got != want {
		t.Errorf("stop after mustClose: %+v, want %+v", got, want)
	}
}

// TestFramingWatchAskedWhileFed: the handler asks, and may stop the watch,
// while net/http's background read feeds it (run with -race).
func TestFramingWatchAskedWhileFed(t *testing.T) {
	stream := []byte(strings.Repeat(fwReq("GET / HTTP/1.1", "Host: a"), 200) +
		fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 5"))
	w := new(framingWatch)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range stream {
			w.feed(stream[i : i+1])
		}
	}()
	for w.closeHead() == 0 && !w.stopped.Load() {
	}
	w.stop()
	<-done
	if got := w.closeHead(); got != 201 {
		t.Errorf("closeHead %d, want 201", got)
	}
}

func TestFramingWatchDoesNotAllocate(t *testing.T) {
	stream := []byte(fwReq("GET / HTTP/1.1", "Host: a") +
		fwReq("POST / HTTP/1.1", "Host: a", "Content-Length: 5") + "hello\r\n" +
		fwReq("PUT / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "5;x\r\nhello\r\n0\r\nX: y\r\n\r\n" +
		fwReq("PATCH / HTTP/1.1", "Host: a", "Content-Length:", " 0"))
	w := new(framingWatch)
	half := len(stream) / 2
	allocs := testing.AllocsPerRun(100, func() {
		w.feed(stream) // heads whole in one read
		w.feed(stream[:half])
		w.feed(stream[half:]) // a head across reads, in the buffer kept
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run, want 0", allocs)
	}
	if got, want := fwResultOf(w), (fwResult{Heads: 4 * 2 * 101}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestFramingWatchSkipsBodiesInBulk(t *testing.T) {
	// A 1 TiB body, declared and chunked: skipping costs nothing per byte.
	const size = 1 << 40
	w := new(framingWatch)
	w.feed([]byte(fwReq("POST / HTTP/1.1", "Host: a", fmt.Sprintf("Content-Length: %d", size))))
	page := make([]byte, 1<<20)
	w.feed(page)
	w.remain -= size - 2<<20 // as if fed
	w.feed(page)
	w.feed([]byte(fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + fmt.Sprintf("%x\r\n", size)))
	w.feed(page)
	if w.state != fwData || w.remain != size-1<<20 {
		t.Fatalf("state %d, %d chunk bytes left", w.state, w.remain)
	}
	w.remain = 1
	w.feed([]byte("x\r\n0\r\n\r\n" + fwReq("GET / HTTP/1.1", "Transfer-Encoding: chunked", "Content-Length: 0")))
	if got, want := fwResultOf(w), (fwResult{Close: true, CloseHead: 3, Heads: 3, Stopped: true}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func FuzzFramingWatch(f *testing.F) {
	for _, tt := range fwCases() {
		if len(tt.in) < 16<<10 {
			f.Add([]byte(tt.in), uint64(len(tt.in)))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		whole := fwFeed(data, func() int { return len(data) })
		for i, sizes := range []func() int{
			func() int { return 1 },
			fwRandomSizes(seed, len(data)),
			fwRandomSizes(seed+1, 8),
		} {
			if got := fwFeed(data, sizes); got != whole {
				t.Fatalf("split %d: %+v, whole: %+v", i, got, whole)
			}
		}
		fwCheckNetHTTP(t, data)
	})
}

// fwConn feeds what net/http reads from a connection to a watch, and
// counts the requests its handler answered.
type fwConn struct {
	net.Conn
	w        framingWatch
	answered int // handler calls, which net/http makes one at a time
}

func (c *fwConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.feed(p[:n])
	return n, err
}

type fwListener struct{ net.Listener }

func (l fwListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &fwConn{Conn: c}, nil
}

type fwConnKey struct{}

// TestFramingWatchWithNetHTTP wires the watch under a real http.Server:
// the handler answers with Connection: close after the request the watch
// points at, not before, though net/http read the pipelined requests
// ahead.
func TestFramingWatchWithNetHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, fwConnKey{}, c)
		},
		Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			c := r.Context().Value(fwConnKey{}).(*fwConn)
			c.answered++
			if h := c.w.closeHead(); h != 0 && h <= c.answered {
				rw.Header().Set("Connection", "close")
			}
			_, _ = io.WriteString(rw, r.Method)
		}),
	}
	go func() { _ = srv.Serve(fwListener{ln}) }()
	t.Cleanup(func() { _ = srv.Close() })

	get := fwReq("GET / HTTP/1.1", "Host: a")
	chunked := fwReq("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "3;x\r\nabc\r\n0\r\nX: y\r\n\r\n"
	tests := []struct {
		name  string
		in    string
		close []bool // per answer: Connection: close
	}{
		{"plain", get + chunked + fwReq("PUT / HTTP/1.1", "Host: a", "Content-Length: 3") + "abc" + get,
			[]bool{false, false, false, false}},
		{"TE and CL third", get + chunked + fwReq("PUT / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 3") + "0\r\n\r\n" + get,
			[]bool{false, false, true}},
		{"TE on HTTP/1.0 second", get + fwReq("POST / HTTP/1.0", "Host: a", "Connection: keep-alive", "Transfer-Encoding: chunked") + get,
			[]bool{false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, tt.in); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			var got []bool
			for range len(tt.close) {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("answer %d: %v", len(got)+1, err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				got = append(got, resp.Close)
			}
			if diff := cmp.Diff(tt.close, got); diff != "" {
				t.Errorf("Connection: close per answer (-want +got):\n%s", diff)
			}
			if got[len(got)-1] {
				if n, err := br.Read(make([]byte, 1)); err != io.EOF {
					t.Errorf("after the closing answer: %d bytes, %v; want EOF", n, err)
				}
			}
		})
	}
}

// fwRandomStream builds a pipelined stream of requests from the pieces
// where framing goes wrong: Transfer-Encoding and Content-Length in all
// spellings, folded lines, bare LF, chunk extensions and trailers, bodies
// that look like heads, stray CR and LF, and now and then a flipped byte.
func fwRandomStream(r *rand.Rand) []byte {
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	mixCase := func(s string) string {
		b := []byte(s)
		for i, c := range b {
			if r.IntN(3) == 0 && 'a' <= c && c <= 'z' {
				b[i] = c - 'a' + 'A'
			}
		}
		return string(b)
	}
	var out strings.Builder
	eol := func() string {
		if r.IntN(8) == 0 {
			return "\n"
		}
		return "\r\n"
	}
	for range 1 + r.IntN(5) {
		method := pick("GET", "POST", "POST", "PUT", "GET", "POST", "PUT", "PRI")
		out.WriteString(method + " " + pick("/", "/x?y", "*") + " " + pick("HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/1.0", "HTTP/1.2", "HTTP/2.0") + eol())
		if r.IntN(20) > 0 {
			out.WriteString("Host: a" + eol())
		}
		var te, cl bool
		n := r.IntN(40)
		for range r.IntN(4) {
			switch r.IntN(7) {
			case 0, 1:
				te = true
				v := pick("chunked", "chunked", "chunked", "Chunked", "CHUNKED", "gzip, chunked", "", "identity")
				if r.IntN(4) == 0 {
					out.WriteString(mixCase("transfer-encoding") + ":" + eol() + " " + v + eol() + pick("", " "+eol()))
				} else {
					out.WriteString(mixCase("transfer-encoding") + ": " + v + pick("", " ", "\t") + eol())
				}
			case 2, 3:
				cl = true
				v := pick(fmt.Sprint(n), fmt.Sprint(n), fmt.Sprint(n), fmt.Sprint(n), "0"+fmt.Sprint(n), "+1", "", fmt.Sprint(n+1))
				if r.IntN(4) == 0 {
					out.WriteString(mixCase("content-length") + ":" + eol() + "\t" + v + eol())
				} else {
					out.WriteString(mixCase("content-length") + ":" + pick(" ", "", "  ") + v + pick("", " ") + eol())
				}
			default:
				out.WriteString(pick("X-A: b", "Accept: */*", "Trailer: X", "Connection: keep-alive", "X-A: b", "Accept: */*", "Connection: keep-alive", "Bad Name: x", " folded") + eol())
			}
		}
		out.WriteString(eol())
		switch {
		case te:
			for range r.IntN(3) {
				size := 1 + r.IntN(20)
				out.WriteString(fmt.Sprintf("%x", size) + pick("", "", ";a=b", " ", " ;a", ";"+strings.Repeat("e", r.IntN(40))) + pick("\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\n"))
				out.WriteString(strings.Repeat("d", size) + pick("\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\n", ""))
			}
			out.WriteString("0" + pick("", ";x") + "\r\n" + pick("", "", "X: y\r\n", "X: y\n", " X: y\r\n", "X: y\r\n z\r\n") + pick("\r\n", "\r\n", "\n"))
		case cl:
			body := strings.Repeat(pick("b", "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n"), 1+n)
			out.WriteString(body[:n])
		}
		if method == "POST" || r.IntN(8) == 0 {
			out.WriteString(strings.Repeat(pick("\r", "\n", "\r\n"), r.IntN(4)))
		}
	}
	b := []byte(out.String())
	if r.IntN(10) == 0 && len(b) > 0 {
		b[r.IntN(len(b))] = pick("\r", "\n", " ", ":", "0", "x")[0]
	}
	return b
}

// TestFramingWatchRandomStreams checks the watch against net/http, and
// against itself split differently, on generated streams.
func TestFramingWatchRandomStreams(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	closes, stops := 0, 0
	for i := range 5000 {
		data := fwRandomStream(r)
		res := fwSplits(t, data, 2)
		fwCheckNetHTTP(t, data)
		if t.Failed() {
			t.Fatalf("stream %d: %q", i, data)
		}
		if res.Close {
			closes++
		} else if res.Stopped {
			stops++
		}
	}
	t.Logf("%d streams closing, %d given up on", closes, stops)
}

func BenchmarkFramingWatch(b *testing.B) {
	head := fwReq("POST /api/orders?id=1 HTTP/1.1", "Host: shop.local", "User-Agent: bench/1.0",
		"Accept: application/json", "Content-Type: application/json", "Content-Length: 64",
		"Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	stream := []byte(strings.Repeat(head+strings.Repeat("j", 64), 64))
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	w := new(framingWatch)
	for b.Loop() {
		for p := stream; len(p) > 0; {
			n := min(len(p), 4096) // net/http's reads
			w.feed(p[:n])
			p = p[n:]
		}
	}
	if w.stopped.Load() {
		b.Fatal("stopped")
	}
}

package proxy

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
)

func TestHeadEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", -1},
		{"GET / HTTP/1.1\r\n", -1},
		{"GET / HTTP/1.1\r\n\r", -1},
		{"GET / HTTP/1.1\r\n\r\n", 18},
		{"GET / HTTP/1.1\r\n\r\nrest", 18},
		{"GET / HTTP/1.1\r\nA: b\r\n\r\n", 24},
		{"GET / HTTP/1.1\n\n", 16},
		{"GET / HTTP/1.1\nA: b\n\nx", 21},
	}
	for _, tt := range tests {
		if got := headEnd([]byte(tt.in)); got != tt.want {
			t.Errorf("headEnd(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestParseRequestFast(t *testing.T) {
	var h reqHead
	head := "GET /orders/7?x=1&y=%20 HTTP/1.1\r\n" +
		"Host: shop:8080\r\n" +
		"user-agent: curl/8\r\n" +
		"X-Request-Id: abc\r\n" +
		"X-Forwarded-For: 10.0.0.1\r\n" +
		"x-forwarded-for: 10.0.0.2\r\n" +
		"TE: trailers, deflate\r\n" +
		"Accept:  */*  \r\n" +
		"Connection: keep-alive\r\n" +
		"\r\n"
	if !parseRequest([]byte(head), &h) {
		t.Fatal("parseRequest refused a plain GET")
	}
	check := func(name, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	check("method", string(h.method), "GET")
	check("path", string(h.path), "/orders/7")
	check("query", string(h.query), "x=1&y=%20")
	check("host", string(h.host), "shop:8080")
	check("user agent", string(h.userAgent), "curl/8")
	check("request id", string(h.requestID), "abc")
	if !h.hasQuery || h.minor != 1 || h.forwardedFor != 2 || !h.teTrailers || h.closeConn {
		t.Errorf("hasQuery %v minor %d forwardedFor %d teTrailers %v closeConn %v", h.hasQuery, h.minor, h.forwardedFor, h.teTrailers, h.closeConn)
	}
	if got := string(h.fields[6].value); got != "*/*" {
		t.Errorf("Accept value = %q, want it trimmed", got)
	}
	if !h.idempotent() {
		t.Error("GET is idempotent")
	}
}

func TestParseRequestConnection(t *testing.T) {
	tests := []struct {
		head             string
		closeConn, keep0 bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false, false},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", true, false},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", true, false},
		{"GET / HTTP/1.0\r\nHost: a\r\n\r\n", true, false},
		{"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", false, true},
	}
	for _, tt := range tests {
		var h reqHead
		if !parseRequest([]byte(tt.head), &h) {
			t.Errorf("parseRequest(%q) refused", tt.head)
			continue
		}
		if h.closeConn != tt.closeConn || h.keepAlive10 != tt.keep0 {
			t.Errorf("parseRequest(%q): closeConn %v keepAlive10 %v, want %v %v", tt.head, h.closeConn, h.keepAlive10, tt.closeConn, tt.keep0)
		}
	}
}

// TestParseRequestHandsOff lists request shapes the fast path leaves to
// net/http.
func TestParseRequestHandsOff(t *testing.T) {
	const host = "Host: a\r\n"
	tests := map[string]string{
		"body":              "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\n",
		"chunked body":      "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n",
		"upgrade":           "GET / HTTP/1.1\r\n" + host + "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"expect":            "PUT / HTTP/1.1\r\n" + host + "Expect: 100-continue\r\n\r\n",
		"connect":           "CONNECT a:443 HTTP/1.1\r\n" + host + "\r\n",
		"asterisk":          "OPTIONS * HTTP/1.1\r\n" + host + "\r\n",
		"absolute form":     "GET http://a/ HTTP/1.1\r\n" + host + "\r\n",
		"escape in path":    "GET /a%2Fb HTTP/1.1\r\n" + host + "\r\n",
		"quote in path":     "GET /a\"b HTTP/1.1\r\n" + host + "\r\n",
		"fragment":          "GET /a?b#c HTTP/1.1\r\n" + host + "\r\n",
		"no host":           "GET / HTTP/1.1\r\n\r\n",
		"two hosts":         "GET / HTTP/1.1\r\n" + host + host + "\r\n",
		"odd host":          "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"http/2 preface":    "PRI * HTTP/2.0\r\n\r\n",
		"http/0.9":          "GET /\r\n\r\n",
		"bare LF":           "GET / HTTP/1.1\n" + host + "\n",
		"folded line":       "GET / HTTP/1.1\r\n" + host + "X: a\r\n b\r\n\r\n",
		"space before :":    "GET / HTTP/1.1\r\n" + host + "X : a\r\n\r\n",
		"control in value":  "GET / HTTP/1.1\r\n" + host + "X: a\x01b\r\n\r\n",
		"connection token":  "GET / HTTP/1.1\r\n" + host + "Connection: X-Secret\r\nX-Secret: 1\r\n\r\n",
		"two connections":   "GET / HTTP/1.1\r\n" + host + "Connection: close\r\nConnection: close\r\n\r\n",
		"trailer announced": "GET / HTTP/1.1\r\n" + host + "Trailer: X\r\n\r\n",
		"bad method":        "G(T / HTTP/1.1\r\n" + host + "\r\n",
		"too many fields":   "GET / HTTP/1.1\r\n" + host + strings.Repeat("X: y\r\n", maxFastHeaders) + "\r\n",
	}
	for name, head := range tests {
		var h reqHead
		if parseRequest([]byte(head), &h) {
			t.Errorf("%s: parseRequest accepted %q", name, head)
		}
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		head    string
		ok      bool
		status  int
		length  int64
		chunked bool
		close   bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", true, 200, 12, false, false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", true, 200, -1, true, false},
		{"HTTP/1.1 204\r\n\r\n", true, 204, -1, false, false},
		{"HTTP/1.1 599 Custom Thing\r\nConnection: close\r\n\r\n", true, 599, -1, false, true},
		{"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", true, 200, 1, false, true},
		{"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", true, 200, 1, false, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", true, 200, 1, false, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false, 0, 0, false, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, 0, 0, false, false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, 0, 0, false, false},
		{"HTTP/1.1 20 OK\r\n\r\n", false, 0, 0, false, false},
		{"HTTP/2 200 OK\r\n\r\n", false, 0, 0, false, false},
		{"HTTP/1.1 200OK\r\n\r\n", false, 0, 0, false, false},
	}
	for _, tt := range tests {
		var h respHead
		ok := parseResponse([]byte(tt.head), &h)
		if ok != tt.ok {
			t.Errorf("parseResponse(%q) = %v, want %v", tt.head, ok, tt.ok)
			continue
		}
		if ok && (h.status != tt.status || h.length != tt.length || h.chunked != tt.chunked || h.closeConn != tt.close) {
			t.Errorf("parseResponse(%q): status %d length %d chunked %v close %v", tt.head, h.status, h.length, h.chunked, h.closeConn)
		}
	}
}

func TestParseResponseConnectionTokens(t *testing.T) {
	var h respHead
	head := "HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nX-Kept: 2\r\n\r\n"
	if !parseResponse([]byte(head), &h) {
		t.Fatal("refused")
	}
	for _, f := range h.fields {
		if string(f.name) == "X-Hop" && !f.kind.hopByHop() {
			t.Error("a field named by Connection must not be forwarded")
		}
		if string(f.name) == "X-Kept" && f.kind.hopByHop() {
			t.Error("X-Kept dropped")
		}
	}
}

// FuzzParseRequest checks the fast request parser against net/http's: a
// head the fast path accepts must be one net/http accepts too, with the
// same method, path, query, host and field values.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD /a/b?c=d HTTP/1.0\r\nHost: x:1\r\nConnection: keep-alive\r\nX-A:  b \r\n\r\n",
		"DELETE /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nTE: trailers\r\n\r\n",
		"GET /?%zz HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := headEnd([]byte(s))
		if n < 0 {
			return
		}
		var h reqHead
		if !parseRequest([]byte(s[:n]), &h) {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(s[:n])))
		if err != nil {
			t.Fatalf("fast path accepted %q, net/http refused it: %v", s[:n], err)
		}
		if req.Method != string(h.method) || req.URL.Path != string(h.path) || req.URL.RawQuery != string(h.query) || req.Host != string(h.host) {
			t.Fatalf("%q: fast %q %q %q %q, net/http %q %q %q %q", s[:n], h.method, h.path, h.query, h.host,
				req.Method, req.URL.Path, req.URL.RawQuery, req.Host)
		}
		if req.URL.EscapedPath() != string(h.path) {
			t.Fatalf("%q: net/http would send path %q, the fast path %q", s[:n], req.URL.EscapedPath(), h.path)
		}
		if req.ContentLength != 0 || req.Body != http.NoBody && req.Body != nil && req.ContentLength != 0 {
			t.Fatalf("%q: net/http sees a body", s[:n])
		}
		if req.Close != h.closeConn {
			t.Fatalf("%q: close %v, net/http %v", s[:n], h.closeConn, req.Close)
		}
		for _, fl := range h.fields {
			if fl.kind == kHost || fl.kind == kConnection || fl.kind == kContentLength {
				continue // net/http moves or removes these
			}
			key := textproto.CanonicalMIMEHeaderKey(string(fl.name))
			found := false
			for _, v := range req.Header[key] {
				found = found || v == string(fl.value)
			}
			if !found {
				t.Fatalf("%q: field %s: %q not among net/http's %q", s[:n], key, fl.value, req.Header[key])
			}
		}
	})
}

// FuzzParseResponse checks the fast response parser against net/http's on
// the framing that matters for relaying: status, length and chunking.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := headEnd([]byte(s))
		if n < 0 {
			return
		}
		var h respHead
		if !parseResponse([]byte(s[:n]), &h) {
			return
		}
		req := &http.Request{Method: http.MethodGet}
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(s[:n])), req)
		if err != nil {
			t.Fatalf("fast path accepted %q, net/http refused it: %v", s[:n], err)
		}
		if resp.StatusCode != h.status {
			t.Fatalf("%q: status %d, net/http %d", s[:n], h.status, resp.StatusCode)
		}
		chunked := len(resp.TransferEncoding) > 0
		if !h.bodyless(false) && (chunked != h.chunked || !chunked && resp.ContentLength != h.length) {
			t.Fatalf("%q: length %d chunked %v, net/http %d %v", s[:n], h.length, h.chunked, resp.ContentLength, resp.TransferEncoding)
		}
		// A body without a length ends with the connection: net/http
		// marks that as Close, relay as a body that ends the connection.
		framed := h.chunked || h.length >= 0
		if !h.bodyless(false) && framed && resp.Close != h.closeConn && !bytes.Contains(bytes.ToLower([]byte(s[:n])), []byte("connection")) {
			t.Fatalf("%q: close %v, net/http %v", s[:n], h.closeConn, resp.Close)
		}
	})
}

// TestParseResponseChunkedHTTP10: HTTP/1.0 has no chunked coding. A
// Transfer-Encoding field in an HTTP/1.0 answer is ignored, as net/http
// ignores it, and the replica's connection is not used again (RFC 9112
// section 6.1), even when it asks to be kept.
func TestParseResponseChunkedHTTP10(t *testing.T) {
	for _, tt := range []struct {
		head   string
		length int64
	}{
		{"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", -1},
		{"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 5},
		{"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n", -1},
	} {
		var h respHead
		if !parseResponse([]byte(tt.head), &h) {
			t.Errorf("%q: refused", tt.head)
			continue
		}
		if h.chunked || h.length != tt.length || !h.closeConn {
			t.Errorf("%q: chunked %v length %d close %v, want not chunked, length %d, close", tt.head, h.chunked, h.length, h.closeConn, tt.length)
		}
	}
}

func TestParseResponseManyFields(t *testing.T) {
	var h respHead
	head := "HTTP/1.1 200 OK\r\n" + strings.Repeat("Set-Cookie: a=b\r\n", 3*maxFastHeaders) + "Content-Length: 0\r\n\r\n"
	if !parseResponse([]byte(head), &h) {
		t.Fatal("a response with many fields must still be relayed")
	}
	if len(h.fields) != 3*maxFastHeaders+1 || h.length != 0 {
		t.Errorf("fields %d length %d", len(h.fields), h.length)
	}
}

func TestParseNumbers(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "17": 17, "+1": -1, "-1": -1, "1 2": -1, "": -1, "1234567890123456789": -1} {
		n, ok := parseDecimal([]byte(in))
		if !ok {
			n = -1
		}
		if n != want {
			t.Errorf("parseDecimal(%q) = %d, want %d", in, n, want)
		}
	}
	for in, want := range map[string]int64{"0": 0, "1a": 26, "FF": 255, "0x1": -1, "+1": -1, "g": -1, "": -1} {
		n, ok := parseHex([]byte(in))
		if !ok {
			n = -1
		}
		if n != want {
			t.Errorf("parseHex(%q) = %d, want %d", in, n, want)
		}
	}
}
